/**
 * The node's LevelDB database (npm `level`). One database directory per node; each concern keeps its
 * records in a sublevel of its own (`cursors`, `outbox-jobs`, `endpoints`, ...: src/store/README.md),
 * with JSON values. Writes that must land together (a block's jobs, a cursor move) go through one
 * `batch`; `BatchOp` is one operation of it, across sublevels.
 *
 * Memory: LevelDB maps every table file it has open into the process (up to 1,000 of them), and the
 * pages it reads stay in the node's RSS, as mapped-file pages (RssFile: the kernel's page cache, which
 * it can take back under pressure): under a backlog of a million jobs, 262 open tables were 289 MB of
 * it. At most `MAX_OPEN_FILES` files are open, LevelDB's smallest setting (it raises anything lower to
 * 74 and keeps 10 for itself), so at most 64 tables of ~2 MB each are mapped, and each open table's
 * index and filter blocks are bounded with them. In bench:e2e's 100,000-log backlog about 50 MB of the
 * node's RSS at its peak is such pages (`rss_peak_file_mb`, with the node binary's).
 *
 * Tables are not compressed (`compression: false`): most of what is written is delivery jobs that live
 * for seconds, written once to the log and once to a table, then read once by a compaction that drops
 * them. Snappy on each of those passes cost the node ~15% of its CPU per webhook in bench:e2e's backlog
 * (410/351 µs without, 482/418 with, two pairs of runs); the price is disk: a queued job's JSON (its
 * topics and data zero-padded hex) compresses ~5:1, so 20,000 jobs take 16.1 MB instead of 2.9 MB once
 * compacted, and a backlog of a million about 0.8 GB.
 *
 * Point reads of a few keys are answered on the spot (`readMany`, below): LevelDB's own synchronous
 * lookup instead of a turn in libuv's thread pool.
 */
import { mkdir } from 'node:fs/promises';
import { Level, type BatchOperation } from 'level';
import { EthhookError } from '../../runtime/errors.ts';

export type Db = Level<string, unknown>;

export type BatchOp = BatchOperation<Db, string, unknown>;

/** LevelDB's open files, its smallest setting: its table cache holds this many minus 10 tables (see the header). */
const MAX_OPEN_FILES = 74;

/**
 * Opens (creating it if needed) the database in `dir`. A directory another process holds open (LevelDB's
 * lock: a running node, or `chain reset-cursor` under way) is refused at once with
 * ETHHOOK_ERR_STORE_LOCKED naming the directory, never waited for.
 */
export async function openDb(dir: string): Promise<Db> {
  await mkdir(dir, { recursive: true });
  const db = new Level<string, unknown>(dir, { valueEncoding: 'json', maxOpenFiles: MAX_OPEN_FILES, compression: false });
  try {
    await db.open();
  } catch (err) {
    if ((err as { cause?: { code?: string } }).cause?.code === 'LEVEL_LOCKED') {
      throw new EthhookError(
        'ETHHOOK_ERR_STORE_LOCKED',
        `the store ${dir} is held by another process (a running node?): stop it, or give this node another node.dataDir`,
        { dbDir: dir },
        { cause: err },
      );
    }
    throw err;
  }
  return db;
}

/** Reads of at most this many keys are answered synchronously by `readMany`. */
export const SYNC_READ_MAX = 16;

/** What `readMany` needs of a database or a sublevel. */
interface PointReads {
  readonly status: string;
  getSync<K, V>(key: K, options: { valueEncoding?: string; snapshot?: unknown }): V | undefined;
  getMany<K, V>(keys: K[], options: { valueEncoding?: string }): Promise<Array<V | undefined>>;
  snapshot(): { close(): Promise<void> };
}

/**
 * `keys`' values as one `getMany` reads them (all from one snapshot of the database, undefined where
 * absent), read with `getSync` when there are at most SYNC_READ_MAX keys and the database is open. A
 * `getSync` is a lookup in LevelDB's memtables, block cache and mapped tables, microseconds, on the
 * calling thread; `getMany` waits for a thread of libuv's pool (4, shared with every write), and
 * while a backfill's and the deliveries' batches were being written a live block's reads waited
 * 5-14 ms there (bench:e2e's backfill phase). Several keys are read under one explicit snapshot, as
 * `getMany` reads them under an implicit one, so a batch landing meanwhile is seen whole or not at
 * all. `valueEncoding` as `getMany` takes it (the level's own when omitted).
 */
export function readMany<V>(level: PointReads, keys: readonly string[], valueEncoding?: 'buffer'): Promise<Array<V | undefined>> {
  if (keys.length === 0) return Promise.resolve([]);
  const options = valueEncoding === undefined ? {} : { valueEncoding };
  if (keys.length > SYNC_READ_MAX || level.status !== 'open') return level.getMany<string, V>(keys as string[], options);
  try {
    if (keys.length === 1) return Promise.resolve([level.getSync<string, V>(keys[0]!, options)]);
    const snapshot = level.snapshot();
    try {
      return Promise.resolve(keys.map((key) => level.getSync<string, V>(key, { ...options, snapshot })));
    } finally {
      // classic-level releases a snapshot within close() itself; the promise only reports it.
      void snapshot.close();
    }
  } catch (err) {
    return Promise.reject(err);
  }
}

export function sublevel<V>(db: Db, name: string) {
  return db.sublevel<string, V>(name, { valueEncoding: 'json' });
}
