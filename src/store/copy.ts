/**
 * Moving a node's store from LevelDB to PostgreSQL (`ethhook store copy --from level:DIR --to
 * postgres:URL [--schema NAME]`): everything a stopped node's LevelDB store holds is written into a
 * PostgreSQL schema, which a node with `store: { kind: postgres }` then runs on.
 *
 * - The source is a STOPPED node's store: `levelStoreDir` takes the node's data directory (its store is
 *   `<dataDir>/db`) or that db directory itself. A running node holds LevelDB's lock: the copy is
 *   refused at once (ETHHOOK_ERR_STORE_LOCKED), never waited for.
 * - The target schema is migrated first (src/store/postgres/migrate.ts), as a node's start would.
 * - What is copied: every sublevel of the source, each in one of two ways (`LEVEL_SUBLEVELS`, the one
 *   list of them). The key-value spaces (endpoints, subscriptions and their by-endpoint index, chain
 *   cursors and reorg windows, match records and retraction counts, deferred jobs, attempt pages,
 *   governance state) go entry by entry through the Kv contract (src/store/kv.ts), engine to engine.
 *   The outbox goes through the engines' export and import: pending jobs with their attempt counts, due
 *   times and, for a held follower, the job it waits for; dead letters with their `supersededBy`; each
 *   as its JSON text as stored, so a job's body bytes do not change. A source with a sublevel not in the
 *   list (written by another ethhook version) is refused before anything is written, so nothing is left
 *   behind unnoticed.
 * - Webhook secrets stay sealed: the endpoint records are copied as they are, and their seal's
 *   additional data is the record identity, not the engine, so they open under the same master key. The
 *   node on PostgreSQL needs the key the LevelDB node had (ETHHOOK_MASTER_KEY, or its
 *   `<dataDir>/master.key`).
 * - Bounded memory: the source is read `pageSize` records at a time (default 1,000), each page written
 *   in one transaction. The tables are analyzed at the end, so that the node's first claims are
 *   planned with statistics that know how many jobs there are.
 * - Idempotent: key-value entries are upserted, jobs and dead letters inserted unless their id is there.
 *   The rule: copy into an empty schema, or one this copy already wrote; the source is stopped, so a
 *   second run writes the same rows (and finds every job and letter there: `new` 0). A schema a node
 *   has already run on is not a target: a job it delivered since would be copied back, and sent again.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { EthhookError, isEthhookError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/log.ts';
import type { Kv, KvOp } from './kv.ts';
import { openDb, type Db } from './level/db.ts';
import { LevelKv } from './level/kv.ts';
import { EXPORT_PAGE, LevelOutbox } from './level/outbox/outbox.ts';
import { PgKv } from './postgres/kv.ts';
import { migrate } from './postgres/migrate.ts';
import { PgOutbox } from './postgres/outbox.ts';
import { openPgPool } from './postgres/pool.ts';

/** Every sublevel of a LevelDB store (src/store/README.md) and how it is copied: as a key-value space, or by the outbox. */
export const LEVEL_SUBLEVELS: Readonly<Record<string, 'kv' | 'outbox'>> = {
  endpoints: 'kv',
  subscriptions: 'kv',
  'subscriptions-by-endpoint': 'kv',
  cursors: 'kv',
  matches: 'kv',
  'match-retractions': 'kv',
  'deferred-jobs': 'kv',
  attempts: 'kv',
  governance: 'kv',
  'master-key': 'kv',
  'outbox-jobs': 'outbox',
  'outbox-due': 'outbox',
  'outbox-held': 'outbox',
  'outbox-dead': 'outbox',
  'outbox-dead-by-time': 'outbox',
  'outbox-dead-by-endpoint': 'outbox',
};

const KV_SPACES = Object.keys(LEVEL_SUBLEVELS).filter((name) => LEVEL_SUBLEVELS[name] === 'kv');

const ANALYZE = 'ANALYZE kv, outbox_jobs, outbox_dead';

/** The owner the copy's PostgreSQL outbox writes in claims: it takes none. */
const COPY_OWNER = 'ethhook-store-copy';

export interface StoreCopyOptions {
  /** The LevelDB store's directory (`levelStoreDir`). */
  levelDir: string;
  url: string;
  /** The target schema (the pool's default when absent). */
  schema?: string;
  /** Records per read and per transaction (default 1,000). */
  pageSize?: number;
  /** How long PostgreSQL's transient errors are retried (the pool's default when absent). */
  retryForMs?: number;
  logger: Logger;
  registry: Registry;
  /** Told of each kind once it is copied (its name and summary), for a progress report. */
  onCopied?: (kind: string, copied: number | CopiedRecords) => void;
}

/** Jobs or dead letters copied: how many, how many of them held (jobs) or superseded (letters), how many were new to the target. */
export interface CopiedRecords {
  copied: number;
  held?: number;
  superseded?: number;
  new: number;
}

export interface StoreCopySummary {
  from: string;
  /** The target with its password masked. */
  to: string;
  schema: string;
  /** The migration versions applied to the target before the copy. */
  migrated: number[];
  /** Entries copied per key-value space. */
  kv: Record<string, number>;
  jobs: CopiedRecords;
  deadLetters: CopiedRecords;
  ms: number;
}

/** The LevelDB store in `dir`: `dir` itself when it is a LevelDB directory, else `<dir>/db` when that is one (a data dir); else undefined. */
export async function levelStoreDir(dir: string): Promise<string | undefined> {
  for (const candidate of [dir, join(dir, 'db')]) {
    if (await exists(join(candidate, 'CURRENT'))) return candidate;
  }
  return undefined;
}

/** Copies the LevelDB store in `options.levelDir` into the PostgreSQL schema (see the header). */
export async function copyLevelToPostgres(options: StoreCopyOptions): Promise<StoreCopySummary> {
  const started = Date.now();
  const pageSize = options.pageSize ?? EXPORT_PAGE;
  const db = await openSource(options.levelDir);
  try {
    await checkSublevels(db);
    const pool = await openPgPool({
      url: options.url,
      ...(options.schema === undefined ? {} : { schema: options.schema }),
      ...(options.retryForMs === undefined ? {} : { retryForMs: options.retryForMs }),
      // The copy runs one statement at a time.
      poolSize: 1,
      logger: options.logger,
      registry: options.registry,
    });
    try {
      const migrated = (await migrate(pool)).map((m) => m.version);
      const source = new LevelKv(db);
      const target = new PgKv(pool);
      const kv: Record<string, number> = {};
      for (const space of KV_SPACES) {
        kv[space] = await copySpace(source, target, space, pageSize);
        options.onCopied?.(space, kv[space]);
      }
      const from = await LevelOutbox.open(source);
      const to = await PgOutbox.open(pool, target, { owner: COPY_OWNER });
      try {
        const jobs = await copyJobs(from, to, pageSize);
        options.onCopied?.('jobs', jobs);
        const deadLetters = await copyDeadLetters(from, to, pageSize);
        options.onCopied?.('dead letters', deadLetters);
        await pool.run('copy.analyze', (client) => client.query(ANALYZE));
        return {
          from: `level:${options.levelDir}`,
          to: `postgres:${pool.target}`,
          schema: pool.schema,
          migrated,
          kv,
          jobs,
          deadLetters,
          ms: Date.now() - started,
        };
      } finally {
        await to.close();
      }
    } finally {
      await pool.close();
    }
  } finally {
    await db.close();
  }
}

/** Every entry of `space`, `pageSize` puts per batch: engine to engine through the Kv contract. */
async function copySpace(from: Kv, to: Kv, space: string, pageSize: number): Promise<number> {
  let copied = 0;
  let ops: KvOp[] = [];
  for await (const [key, value] of from.space(space).scan()) {
    ops.push({ type: 'put', space, key, value });
    copied++;
    if (ops.length < pageSize) continue;
    await to.batch(ops);
    ops = [];
  }
  if (ops.length > 0) await to.batch(ops);
  return copied;
}

/**
 * Every record `pages` yields, a page per transaction through `load` (which answers how many were new
 * to the target); `marked` counts the held jobs or the superseded dead letters.
 */
async function copyPages<T>(
  pages: AsyncIterable<T[]>,
  load: (page: T[]) => Promise<number>,
  marked: (record: T) => boolean,
): Promise<{ copied: number; marked: number; new: number }> {
  const counts = { copied: 0, marked: 0, new: 0 };
  for await (const page of pages) {
    counts.new += await load(page);
    counts.copied += page.length;
    for (const r of page) if (marked(r)) counts.marked++;
  }
  return counts;
}

/** Every pending job. */
async function copyJobs(from: LevelOutbox, to: PgOutbox, pageSize: number): Promise<CopiedRecords> {
  const {
    copied,
    marked,
    new: fresh,
  } = await copyPages(
    from.exportJobs(pageSize),
    (page) => to.importJobs(page),
    (j) => j.heldBy !== undefined,
  );
  return { copied, held: marked, new: fresh };
}

/** Every dead letter. */
async function copyDeadLetters(from: LevelOutbox, to: PgOutbox, pageSize: number): Promise<CopiedRecords> {
  const {
    copied,
    marked,
    new: fresh,
  } = await copyPages(
    from.exportDeadLetters(pageSize),
    (page) => to.importDeadLetters(page),
    (l) => l.letter.supersededBy !== undefined,
  );
  return { copied, superseded: marked, new: fresh };
}

/** The source database; a store held by a running node is refused with what to do. */
async function openSource(dir: string): Promise<Db> {
  try {
    return await openDb(dir);
  } catch (err) {
    if (!isEthhookError(err, 'ETHHOOK_ERR_STORE_LOCKED')) throw err;
    throw new EthhookError(
      'ETHHOOK_ERR_STORE_LOCKED',
      `the LevelDB store ${dir} is held by a running node (LevelDB's lock): stop the node, then copy its store`,
      { dbDir: dir },
      { cause: err },
    );
  }
}

/** Refuses a store with a sublevel `LEVEL_SUBLEVELS` does not name (or a key outside every sublevel): it would not be copied. */
async function checkSublevels(db: Db): Promise<void> {
  const unknown: string[] = [];
  // One seek per sublevel: from a sublevel's first key, on past `!name"` (`"` follows the `!` closing its prefix).
  let from = '';
  for (;;) {
    const [key] = await db.keys({ gte: from, limit: 1 }).all();
    if (key === undefined) break;
    const name = /^!([^!]*)!/.exec(key)?.[1];
    if (name === undefined) {
      unknown.push(`a key outside every sublevel (${JSON.stringify(key.slice(0, 40))})`);
      break;
    }
    if (LEVEL_SUBLEVELS[name] === undefined) unknown.push(name);
    from = `!${name}"`;
  }
  if (unknown.length > 0) {
    throw new Error(
      `the LevelDB store holds what this ethhook does not know how to copy: ${unknown.join(', ')} (written by another version of ethhook?); nothing was copied`,
    );
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
