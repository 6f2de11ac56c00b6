/**
 * The node's LevelDB store (npm `level`). One database directory per node; each concern keeps its
 * records in a sublevel of its own (`cursors`, `outbox`, `endpoints`, ...), with JSON values.
 * Writes that must land together (a block's jobs, a cursor move) go through one `batch`.
 */
import { mkdir } from 'node:fs/promises';
import { Level } from 'level';

export type Db = Level<string, unknown>;

export async function openDb(dir: string): Promise<Db> {
  await mkdir(dir, { recursive: true });
  const db = new Level<string, unknown>(dir, { valueEncoding: 'json' });
  await db.open();
  return db;
}

export function sublevel<V>(db: Db, name: string) {
  return db.sublevel<string, V>(name, { valueEncoding: 'json' });
}
