/**
 * Opens the node's store as its configuration says (`store.kind`), behind the engine-neutral
 * contracts: the key-value engine (kv.ts) that the endpoint, subscription, cursor, match, deferred and
 * governance stores are built over, and the outbox (outbox/contract.ts).
 *
 * - `level` (the default): the LevelDB directory `<dataDir>/db`, held by this process alone (LevelDB's
 *   lock refuses a second one: ETHHOOK_ERR_STORE_LOCKED). It always answers while open: `store_up` 1.
 * - `postgres`: a pool on `store.url` (src/store/postgres/pool.ts), shared by the instances of a
 *   cluster (src/cluster/coordinator.ts decides which of them writes what), the pending migrations applied
 *   first under an advisory lock (a schema newer than this code is refused:
 *   ETHHOOK_ERR_STORE_SCHEMA_NEWER), then the PostgreSQL outbox, whose claims carry `owner` (the node's
 *   id, so a restarted node takes its own claims back at once). `store_up` follows the pool: 0 while
 *   operations fail with transient errors (they are retried meanwhile), 1 after the next success;
 *   `unreachable()` says why, for `/ready`.
 *
 * `pg` is the PostgreSQL pool (undefined on LevelDB), for the cluster's own tables. `close()` waits for the
 * outbox's queued writes, then closes the engine.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { StoreConfig } from '../config/schema.ts';
import type { Kv, KvKind } from './kv.ts';
import { openDb } from './level/db.ts';
import { LevelKv } from './level/kv.ts';
import { LevelOutbox } from './level/outbox/outbox.ts';
import { storeMetrics } from './metrics.ts';
import type { OutboxStore } from './outbox/contract.ts';
import type { PgPool } from './postgres/pool.ts';

export interface OpenedStore {
  readonly kind: KvKind;
  readonly kv: Kv;
  readonly outbox: OutboxStore;
  readonly pg?: PgPool;
  /** Why the store does not answer now (one line, for `/ready`), or undefined while it does. */
  unreachable(): string | undefined;
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /** The node's data directory: LevelDB's database is `<dataDir>/db`. */
  dataDir: string;
  /** The node's id: the owner of its claims on a shared outbox. */
  owner: string;
  /** PostgreSQL: how long a job `due` returned stays this instance's (postgres/outbox.ts; default 45 s). */
  claimMs?: number;
  /** PostgreSQL: how long a session may sit idle inside a transaction (pool.ts `idleInTransactionMs`). */
  idleInTransactionMs?: number;
  logger: Logger;
  registry: Registry;
}

export async function openStore(config: StoreConfig, options: OpenStoreOptions): Promise<OpenedStore> {
  return config.kind === 'postgres' ? openPostgres(config, options) : openLevel(options);
}

async function openLevel({ dataDir, registry }: OpenStoreOptions): Promise<OpenedStore> {
  const db = await openDb(join(dataDir, 'db'));
  const kv = new LevelKv(db);
  let outbox: LevelOutbox;
  try {
    outbox = await LevelOutbox.open(kv);
  } catch (err) {
    await db.close();
    throw err;
  }
  const up = storeMetrics(registry).up;
  up.set(1);
  return {
    kind: 'level',
    kv,
    outbox,
    unreachable: () => undefined,
    close: async () => {
      await outbox.idle();
      await db.close();
      up.set(0);
    },
  };
}

async function openPostgres(config: Extract<StoreConfig, { kind: 'postgres' }>, options: OpenStoreOptions): Promise<OpenedStore> {
  // Loaded only for a PostgreSQL store: a LevelDB node never loads the driver.
  const [{ openPgPool }, { migrate }, { PgKv }, { PgOutbox }] = await Promise.all([
    import('./postgres/pool.ts'),
    import('./postgres/migrate.ts'),
    import('./postgres/kv.ts'),
    import('./postgres/outbox.ts'),
  ]);
  const { url, poolSize, schema, statementTimeoutMs } = config;
  const logger = options.logger.child({ component: 'store' });
  const pool = await openPgPool({
    url,
    poolSize,
    schema,
    statementTimeoutMs,
    logger,
    registry: options.registry,
    ...(options.idleInTransactionMs !== undefined ? { idleInTransactionMs: options.idleInTransactionMs } : {}),
  });
  try {
    const applied = await migrate(pool);
    if (applied.length > 0) logger.info({ applied: applied.map((m) => `${m.version} ${m.name}`), schema }, 'store migrations applied');
    const kv = new PgKv(pool);
    const outbox = await PgOutbox.open(pool, kv, {
      owner: options.owner,
      ...(options.claimMs !== undefined ? { claimMs: options.claimMs } : {}),
    });
    logger.info({ target: pool.target, schema, poolSize }, 'PostgreSQL store open');
    return {
      kind: 'postgres',
      kv,
      outbox,
      pg: pool,
      unreachable: () => (pool.up() ? undefined : `store unreachable: ${pool.lastError?.message ?? 'PostgreSQL does not answer'}`),
      close: async () => {
        await outbox.idle();
        await outbox.close();
        await pool.close();
      },
    };
  } catch (err) {
    await pool.close();
    throw err;
  }
}
