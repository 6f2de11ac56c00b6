// CursorStore on a real LevelDB: position and reorg window survive a reopen; the window is trimmed.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CursorStore } from '../../src/store/cursors.ts';
import { openDb } from '../../src/store/db.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const block = (number: number) => ({ number, hash: `h${number}`, logs: [{ n: number }] });

describe('CursorStore', () => {
  it('persists appends and retractions per chain, across a reopen, keeping the newest blocks', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ethhook-cursors-'));
    dirs.push(dir);
    let db = await openDb(dir);
    let store = new CursorStore<ReturnType<typeof block>>(db);
    expect(await store.load(1, 3)).toBeNull();
    for (let n = 10; n <= 15; n++) await store.append(1, block(n), 10, 3);
    await store.append(2, block(100), 100, 3);
    await store.retract(1, 15, 10);
    await db.close();

    db = await openDb(dir);
    store = new CursorStore(db);
    expect(await store.load(1, 3)).toEqual({ next: 15, floor: 10, blocks: [block(13), block(14)] });
    expect(await store.load(2, 3)).toEqual({ next: 101, floor: 100, blocks: [block(100)] });
    // A smaller window on load drops the older blocks for good.
    expect((await store.load(1, 1))!.blocks).toEqual([block(14)]);
    expect((await store.load(1, 5))!.blocks).toEqual([block(14)]);
    await db.close();
  });

  it('keeps the genesis hash per chain, and clear() forgets one chain only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ethhook-cursors-'));
    dirs.push(dir);
    const db = await openDb(dir);
    const store = new CursorStore<ReturnType<typeof block>>(db);
    await store.append(1, block(5), 5, 3);
    await store.append(10, block(7), 7, 3);
    await store.setGenesis(1, 'g1');
    await store.setGenesis(10, 'g10');
    expect(await store.genesis(1)).toBe('g1');
    await store.clear(1);
    expect(await store.load(1, 3)).toBeNull();
    expect(await store.genesis(1)).toBeUndefined();
    expect(await store.load(10, 3)).toEqual({ next: 8, floor: 7, blocks: [block(7)] });
    expect(await store.genesis(10)).toBe('g10');
    await db.close();
  });
});
