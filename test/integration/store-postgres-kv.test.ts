// The key-value engine on a real PostgreSQL: point reads and writes, ranges in LevelDB's bytewise order,
// batches that land whole with the last op of a key winning, scans across pages, and applyKvOps inside
// a caller's transaction.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgKv, SCAN_PAGE, applyKvOps } from '../../src/store/postgres/kv.ts';
import { freshPgPool, type TestPgPool } from '../support/postgres.ts';

let pool: TestPgPool;
let kv: PgKv;

beforeAll(async () => {
  pool = await freshPgPool('kv');
  kv = new PgKv(pool);
});

afterAll(() => pool.drop());

const bytewise = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

describe('point reads and writes', () => {
  it('reads back the JSON of what was put, its fields in order, and forgets what was deleted', async () => {
    const s = kv.space<Record<string, unknown>>('point');
    const value = { z: 1, a: [1, 'two', null], nested: { b: true, a: 'x"\\\u00e9' } };
    await s.put('k', value);
    const read = await s.get('k');
    expect(read).toEqual(value);
    expect(Object.keys(read!)).toEqual(['z', 'a', 'nested']);
    await s.put('k', { replaced: true });
    expect(await s.get('k')).toEqual({ replaced: true });
    await s.del('k');
    expect(await s.get('k')).toBeUndefined();
  });

  it('getMany and has answer in the order asked, undefined / false for a missing key', async () => {
    const s = kv.space<number>('many');
    await kv.batch([s.putOp('a', 1), s.putOp('c', 3)]);
    expect(await s.getMany(['c', 'b', 'a', 'c'])).toEqual([3, undefined, 1, 3]);
    expect(await s.has(['b', 'a'])).toEqual([false, true]);
    expect(await s.getMany([])).toEqual([]);
  });

  it('spaces are apart: the same key in two spaces is two entries', async () => {
    await kv.batch([kv.space('one').putOp('k', 1), kv.space('two').putOp('k', 2)]);
    expect(await kv.space('one').get('k')).toBe(1);
    expect(await kv.space('two').entries()).toEqual([['k', 2]]);
  });
});

describe('ranges', () => {
  const keys = ['a', 'a!1', 'a!2', 'a\xff', 'b', 'B', '_', '~', '0009', '0010'];
  const sorted = [...keys].sort(bytewise);
  const s = () => kv.space<string>('range');

  beforeAll(() => kv.batch(keys.map((k) => s().putOp(k, `v${k}`))));

  it('lists keys in bytewise order, forward and reverse', async () => {
    expect(await s().keys()).toEqual(sorted);
    expect(await s().keys({ reverse: true })).toEqual([...sorted].reverse());
  });

  it('honours gt, gte, lt, lte and limit', async () => {
    expect(await s().keys({ gte: 'a!', lt: 'a\xff' })).toEqual(['a!1', 'a!2']);
    expect(await s().keys({ gt: 'a', lte: 'a\xff' })).toEqual(['a!1', 'a!2', 'a\xff']);
    expect(await s().keys({ gte: 'a', lt: 'b', reverse: true, limit: 2 })).toEqual(['a\xff', 'a!2']);
    expect(await s().values({ gt: '0009', limit: 1 })).toEqual(['v0010']);
    expect(await s().entries({ lte: '0009' })).toEqual([['0009', 'v0009']]);
    expect(await s().keys({ limit: 0 })).toEqual([]);
  });

  it('clears a range, and only that range', async () => {
    const c = kv.space<number>('clear');
    await kv.batch(['a', 'b', 'c', 'd', 'e'].map((k, i) => c.putOp(k, i)));
    await c.clear({ gt: 'a', lt: 'd' });
    expect(await c.keys()).toEqual(['a', 'd', 'e']);
    await c.clear({ reverse: true, limit: 1 });
    expect(await c.keys()).toEqual(['a', 'd']);
    await c.clear();
    expect(await c.keys()).toEqual([]);
    expect(await s().keys()).toEqual(sorted);
  });
});

describe('scan', () => {
  const n = SCAN_PAGE * 2 + 37;
  const key = (i: number) => `k!${String(i).padStart(6, '0')}`;
  const s = () => kv.space<number>('scan');

  beforeAll(() => kv.batch(Array.from({ length: n }, (_, i) => s().putOp(key(i), i))));

  async function collect(range: Parameters<ReturnType<typeof s>['scan']>[0]): Promise<number[]> {
    const out: number[] = [];
    for await (const [k, v] of s().scan(range)) {
      expect(k).toBe(key(v));
      out.push(v);
    }
    return out;
  }

  it('reads every entry once, in order, across pages', async () => {
    expect(await collect({})).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(await collect({ reverse: true })).toEqual(Array.from({ length: n }, (_, i) => n - 1 - i));
  });

  it('keeps the bounds and the limit across pages', async () => {
    const from = 10;
    const limit = SCAN_PAGE + 5;
    expect(await collect({ gte: key(from), limit })).toEqual(Array.from({ length: limit }, (_, i) => from + i));
    expect(await collect({ lt: key(n - 3), reverse: true, limit })).toEqual(Array.from({ length: limit }, (_, i) => n - 4 - i));
  });
});

describe('batches', () => {
  it('apply in order: the last op on a key wins, across puts and deletes', async () => {
    const s = kv.space<number>('order');
    await s.put('gone', 0);
    await kv.batch([
      s.putOp('x', 1),
      s.putOp('x', 2),
      s.delOp('y'),
      s.putOp('y', 3),
      s.putOp('gone', 4),
      s.delOp('gone'),
      s.delOp('x'),
      s.putOp('x', 5),
    ]);
    expect(await s.entries()).toEqual([
      ['x', 5],
      ['y', 3],
    ]);
  });

  it('land whole or not at all', async () => {
    const s = kv.space<number>('whole');
    await expect(kv.batch([s.putOp('a', 1), s.putOp('b\0nul', 2)])).rejects.toThrow();
    expect(await s.keys()).toEqual([]);
    await expect(kv.batch([s.putOp('a', 1), { type: 'put', space: 'whole', key: 'b', value: undefined }])).rejects.toThrow(TypeError);
    expect(await s.keys()).toEqual([]);
  });

  it("applyKvOps writes inside the caller's transaction and rolls back with it", async () => {
    const s = kv.space<number>('caller');
    await expect(
      pool.tx('test', async (client) => {
        await applyKvOps(client, [s.putOp('a', 1)]);
        throw new Error('the caller fails');
      }),
    ).rejects.toThrow('the caller fails');
    expect(await s.get('a')).toBeUndefined();
    await pool.tx('test', (client) => applyKvOps(client, [s.putOp('a', 1), s.putOp('b', 2), s.delOp('a')]));
    expect(await s.entries()).toEqual([['b', 2]]);
  });
});
