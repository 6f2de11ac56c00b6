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

export function sublevel<V>(db: Db, name: string) {
  return db.sublevel<string, V>(name, { valueEncoding: 'json' });
}
