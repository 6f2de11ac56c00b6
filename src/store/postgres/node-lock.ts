/**
 * One running node per PostgreSQL schema, as LevelDB's lock allows one process per directory: two
 * nodes on one schema would both ingest every chain and advance the same cursors. The lock is a
 * session-level advisory lock (a key derived from the schema, `ethhook:node:<schema>`) held on a
 * connection of its own for the node's life, outside the pool.
 *
 * `lockSchema` refuses at once (ETHHOOK_ERR_STORE_LOCKED naming the schema) when another session holds
 * it: a running node, never waited for. PostgreSQL drops a session's locks with its connection, so
 * when that connection is lost (the server restarting, a network cut) the lock is taken again on a new
 * one, every second until it is; if another node took it meanwhile, that is logged as an error each
 * time. `release()` unlocks and closes the connection.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { redactUrl } from '../../config/redact.ts';
import { EthhookError } from '../../runtime/errors.ts';

const RELOCK_EVERY_MS = 1_000;
const CONNECT_TIMEOUT_MS = 10_000;

export interface SchemaLock {
  /** Whether this node holds the lock now (false while it is being taken again). */
  held(): boolean;
  release(): Promise<void>;
}

/** The advisory lock key of the node lock (a signed bigint, as text). */
export function nodeLockKey(schema: string): string {
  return createHash('sha256').update(`ethhook:node:${schema}`).digest().readBigInt64BE(0).toString();
}

export async function lockSchema(url: string, schema: string, logger: Logger): Promise<SchemaLock> {
  const { default: driver } = await import('pg');
  const key = nodeLockKey(schema);
  const target = redactUrl(url);
  let client: InstanceType<typeof driver.Client> | undefined;
  let isHeld = false;
  let released = false;
  let timer: NodeJS.Timeout | undefined;

  /** A new connection tries the lock: true when taken; the connection is kept only then. */
  async function take(): Promise<boolean> {
    const next = new driver.Client({
      connectionString: url,
      application_name: 'ethhook-node-lock',
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    });
    next.on('error', () => undefined);
    await next.connect();
    try {
      const { rows } = await next.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [key]);
      if (rows[0]?.locked !== true) {
        await next.end();
        return false;
      }
    } catch (err) {
      await next.end().catch(() => undefined);
      throw err;
    }
    client = next;
    isHeld = true;
    next.on('end', () => lost(next));
    return true;
  }

  function lost(which: unknown): void {
    if (which !== client || released) return;
    isHeld = false;
    client = undefined;
    logger.warn({ store: target, schema }, "the store's node lock was lost with its connection; taking it again");
    schedule();
  }

  function schedule(): void {
    timer = setTimeout(() => {
      timer = undefined;
      if (released) return;
      take().then(
        (taken) => {
          if (released) return;
          if (taken) logger.info({ store: target, schema }, "the store's node lock is held again");
          else {
            logger.error(
              { store: target, schema },
              "another node holds this store's schema: two nodes on one schema would ingest the same chains",
            );
            schedule();
          }
        },
        () => schedule(),
      );
    }, RELOCK_EVERY_MS);
    timer.unref();
  }

  if (!(await take())) {
    throw new EthhookError(
      'ETHHOOK_ERR_STORE_LOCKED',
      `the store's schema ${schema} on ${target} is held by another running node: stop it, or give this node another store.schema`,
      { schema, store: target },
    );
  }
  return {
    held: () => isHeld,
    release: async () => {
      released = true;
      if (timer !== undefined) clearTimeout(timer);
      const held = client;
      client = undefined;
      isHeld = false;
      if (held === undefined) return;
      await held.query('SELECT pg_advisory_unlock($1)', [key]).catch(() => undefined);
      await held.end().catch(() => undefined);
    },
  };
}
