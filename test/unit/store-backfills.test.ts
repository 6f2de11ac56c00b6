// BackfillStore: one running request per subscription, cancel, progress written apart from the request,
// the running index the Backfill actors scan.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isEthhookError } from '../../src/runtime/errors.ts';
import { BackfillStore, runningIndexKey } from '../../src/store/backfills.ts';
import { padNumber } from '../../src/store/keys.ts';
import { openDb, type Db } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';

let dir: string;
let db: Db;
let store: BackfillStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ethhook-backfills-'));
  db = await openDb(dir);
  store = new BackfillStore(new LevelKv(db));
});

afterEach(async () => {
  await db.close();
  await rm(dir, { recursive: true, force: true });
});

const code = async (p: Promise<unknown>) =>
  p.then(
    () => 'resolved',
    (err: unknown) => (isEthhookError(err) ? err.code : String(err)),
  );

describe('BackfillStore', () => {
  it('a request starts running at from - 1 and is listed for its chain', async () => {
    const view = await store.start({ subscriptionId: 'sub_a', chainId: 10, from: 100, to: 200 });
    expect(view).toMatchObject({ from: 100, to: 200, at: 99, state: 'running' });
    expect(await store.running(10)).toEqual([{ chainId: 10, subscriptionId: 'sub_a', requestId: view.id }]);
    expect(await store.running(1)).toEqual([]);
  });

  it('refuses a second request while one runs, and takes one once it is cancelled', async () => {
    await store.start({ subscriptionId: 'sub_a', chainId: 10, from: 0 });
    expect(await code(store.start({ subscriptionId: 'sub_a', chainId: 10, from: 5 }))).toBe('ETHHOOK_ERR_BACKFILL_RUNNING');
    expect((await store.cancel('sub_a')).state).toBe('cancelled');
    expect(await store.running()).toEqual([]);
    expect(await code(store.cancel('sub_a'))).toBe('ETHHOOK_ERR_BACKFILL_NOT_RUNNING');
    expect((await store.start({ subscriptionId: 'sub_a', chainId: 10, from: 5 })).state).toBe('running');
  });

  it('progress is its own record: done takes the request out of the running index, a cancel keeps the progress', async () => {
    const view = await store.start({ subscriptionId: 'sub_a', chainId: 10, from: 0 });
    const request = (await store.request('sub_a'))!;
    await new LevelKv(db).batch(store.progressOps(request, { at: 40, end: 90 }));
    expect(await store.view('sub_a')).toMatchObject({ id: view.id, at: 40, to: 90, state: 'running' });
    await new LevelKv(db).batch(store.progressOps(request, { at: 90, end: 90, done: true }));
    expect(await store.view('sub_a')).toMatchObject({ at: 90, state: 'done' });
    expect(await store.running()).toEqual([]);
    expect(await code(store.cancel('sub_a'))).toBe('ETHHOOK_ERR_BACKFILL_NOT_RUNNING');
  });

  it("a request's last write landing after another replaced it leaves the other listed", async () => {
    const first = await store.start({ subscriptionId: 'sub_a', chainId: 10, from: 0 }, 1);
    await store.cancel('sub_a');
    const second = await store.start({ subscriptionId: 'sub_a', chainId: 10, from: 5 }, 2);
    await new LevelKv(db).batch(store.progressOps({ id: first.id, chainId: 10, subscriptionId: 'sub_a' }, { at: 9, end: 9, done: true }));
    expect(await store.running()).toEqual([{ chainId: 10, subscriptionId: 'sub_a', requestId: second.id }]);
  });

  it('lists an entry of the older key form (<chain>!<subscription>) and removes it with its request', async () => {
    const view = await store.start({ subscriptionId: 'sub_a', chainId: 10, from: 0 });
    const index = new LevelKv(db).space<string>('backfills-running');
    await index.del(runningIndexKey({ id: view.id, chainId: 10, subscriptionId: 'sub_a' }));
    await index.put(`${padNumber(10, 16)}!sub_a`, view.id);
    expect(await store.running(10)).toEqual([{ chainId: 10, subscriptionId: 'sub_a', requestId: view.id }]);
    await new LevelKv(db).batch(store.progressOps((await store.request('sub_a'))!, { at: 9, end: 9, done: true }));
    expect(await store.running()).toEqual([]);
  });

  it('forget removes the request, its progress and its index entry', async () => {
    await store.start({ subscriptionId: 'sub_a', chainId: 10, from: 0 });
    await store.forget('sub_a');
    expect(await store.view('sub_a')).toBeUndefined();
    expect(await store.running()).toEqual([]);
  });
});
