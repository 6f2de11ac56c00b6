// CursorStore on a real LevelDB: position and reorg window survive a reopen; the window is trimmed; a
// block's logs are kept apart from it, read back one block at a time, and go with it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CursorStore } from '../../src/store/cursors.ts';
import { openDb } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const block = (number: number) => ({ number, hash: `h${number}` });
const logs = (number: number) => [{ n: number }, { n: number, i: 1 }];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ethhook-cursors-'));
  dirs.push(dir);
  return dir;
}

describe('CursorStore', () => {
  it('persists appends and retractions per chain, across a reopen, keeping the newest blocks', async () => {
    const dir = await tempDir();
    let db = await openDb(dir);
    let store = new CursorStore<ReturnType<typeof block>, { n: number }>(new LevelKv(db));
    expect(await store.load(1, 3)).toBeNull();
    for (let n = 10; n <= 15; n++) await store.append(1, block(n), logs(n), 10, 3);
    await store.append(2, block(100), logs(100), 100, 3);
    await store.retract(1, 15, 10);
    await db.close();

    db = await openDb(dir);
    store = new CursorStore(new LevelKv(db));
    expect(await store.load(1, 3)).toEqual({ next: 15, floor: 10, blocks: [block(13), block(14)] });
    expect(await store.load(2, 3)).toEqual({ next: 101, floor: 100, blocks: [block(100)] });
    // A smaller window on load drops the older blocks for good.
    expect((await store.load(1, 1))!.blocks).toEqual([block(14)]);
    expect((await store.load(1, 5))!.blocks).toEqual([block(14)]);
    await db.close();
  });

  it('loads blocks without their logs, reads the logs of a block of the window, and drops them with it', async () => {
    const db = await openDb(await tempDir());
    const store = new CursorStore<ReturnType<typeof block>, { n: number }>(new LevelKv(db));
    for (let n = 10; n <= 14; n++) await store.append(1, block(n), logs(n), 10, 3);
    await store.append(1, block(15), [], 10, 3);
    const loaded = await store.load(1, 3);
    expect(loaded!.blocks).toEqual([block(13), block(14), block(15)]);
    expect(JSON.stringify(loaded)).not.toContain('"n"');
    expect(await store.logs(1, 14)).toEqual(logs(14));
    expect(await store.logs(1, 15)).toEqual([]);
    // Out of the window on append, retracted, or trimmed on load: the logs are gone with the block.
    expect(await store.logs(1, 12)).toBeUndefined();
    await store.retract(1, 15, 10);
    expect(await store.logs(1, 15)).toBeUndefined();
    await store.load(1, 1);
    expect(await store.logs(1, 13)).toBeUndefined();
    expect(await store.logs(1, 14)).toEqual(logs(14));
    await db.close();
  });

  it('keeps the genesis hash per chain, and clear() forgets one chain only', async () => {
    const db = await openDb(await tempDir());
    const store = new CursorStore<ReturnType<typeof block>>(new LevelKv(db));
    await store.append(1, block(5), logs(5), 5, 3);
    await store.append(10, block(7), logs(7), 7, 3);
    await store.setGenesis(1, 'g1');
    await store.setGenesis(10, 'g10');
    expect(await store.genesis(1)).toBe('g1');
    await store.clear(1);
    expect(await store.load(1, 3)).toBeNull();
    expect(await store.logs(1, 5)).toBeUndefined();
    expect(await store.genesis(1)).toBeUndefined();
    expect(await store.load(10, 3)).toEqual({ next: 8, floor: 7, blocks: [block(7)] });
    expect(await store.logs(10, 7)).toEqual(logs(7));
    expect(await store.genesis(10)).toBe('g10');
    await db.close();
  });
});
