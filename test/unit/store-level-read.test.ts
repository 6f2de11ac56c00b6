// `readMany` (src/store/level/db.ts) on a real LevelDB directory: it answers what `getMany` answers, for
// any number of keys and either encoding, on the root and on a sublevel; a few keys are answered without
// a trip through libuv's thread pool; a database not open yet, or closed, is read (or refused) as
// `getMany` would.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Level } from 'level';
import { afterAll, describe, expect, it } from 'vitest';
import { openDb, readMany, sublevel, SYNC_READ_MAX, type Db } from '../../src/store/level/db.ts';

const dirs: string[] = [];
const dbs: Array<{ status: string; close(): Promise<void> }> = [];
async function freshDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ethhook-read-'));
  dirs.push(dir);
  return dir;
}
async function freshDb(): Promise<Db> {
  const db = await openDb(await freshDir());
  dbs.push(db);
  return db;
}
afterAll(async () => {
  for (const db of dbs) if (db.status === 'open') await db.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Whether `promise` has settled after a few microtask turns: a read through the thread pool has not. */
async function settledAtOnce(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return settled;
}

describe('readMany', () => {
  it('answers what getMany answers, for any keys, either encoding, on the root and on a sublevel', async () => {
    const db = await freshDb();
    const space = sublevel<{ n: number }>(db, 'space');
    const stored = Array.from({ length: 40 }, (_, i) => `k${i}`);
    await space.batch(stored.map((key, n) => ({ type: 'put' as const, key, value: { n } })));
    await db.put('root-key', { root: true });
    const key = fc.oneof(fc.constantFrom(...stored), fc.constantFrom('absent', 'k99', ''));
    await fc.assert(
      fc.asyncProperty(fc.array(key, { maxLength: SYNC_READ_MAX + 6 }), fc.boolean(), async (keys, raw) => {
        const expected = raw ? await space.getMany<string, Buffer>(keys, { valueEncoding: 'buffer' }) : await space.getMany(keys);
        const got = await (raw ? readMany<Buffer>(space, keys, 'buffer') : readMany<{ n: number }>(space, keys));
        expect(got).toEqual(expected);
      }),
      { numRuns: 150 },
    );
    expect(await readMany(db, ['root-key', 'absent'])).toEqual([{ root: true }, undefined]);
    expect(await readMany(db, [])).toEqual([]);
  });

  it('answers up to SYNC_READ_MAX keys at once, more through the thread pool', async () => {
    const db = await freshDb();
    const keys = Array.from({ length: SYNC_READ_MAX + 1 }, (_, i) => `k${i}`);
    await db.batch(keys.map((key) => ({ type: 'put' as const, key, value: key })));
    expect(await settledAtOnce(readMany(db, keys.slice(0, 1)))).toBe(true);
    expect(await settledAtOnce(readMany(db, keys.slice(0, SYNC_READ_MAX)))).toBe(true);
    expect(await settledAtOnce(readMany(db, keys))).toBe(false);
    expect(await settledAtOnce(db.getMany(keys.slice(0, 2)))).toBe(false);
  });

  it('reads a database still opening once it is open, and refuses a closed one as getMany does', async () => {
    const db = new Level<string, unknown>(await freshDir(), { valueEncoding: 'json' });
    dbs.push(db);
    await db.open();
    await db.put('a', 1);
    await db.close();
    void db.open();
    expect(db.status).toBe('opening');
    expect(await readMany(db, ['a', 'b'])).toEqual([1, undefined]);
    await db.close();
    await expect(readMany(db, ['a'])).rejects.toMatchObject({ code: 'LEVEL_DATABASE_NOT_OPEN' });
    await expect(db.getMany(['a'])).rejects.toMatchObject({ code: 'LEVEL_DATABASE_NOT_OPEN' });
  });
});
