/**
 * The key-value contract (src/store/kv.ts) as tests every engine runs: point reads and writes, JSON
 * values read back as written, bytewise key order with the store's key building (zero-padded numbers,
 * `!` separators, `\xff` closing a prefix range), ranges (bounds, limit, reverse), range clears,
 * spaces that never see each other's keys, and batches that land whole or not at all, in array order.
 *
 * An engine's test file calls `describeKvContract(name, open)`: `open()` opens a fresh, empty store
 * and resolves with `{ kv, close }`; `close()` closes what `open` opened (a second call does nothing).
 * Every store a test opens is closed after it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { padNumber, PREFIX_END } from '../../src/store/keys.ts';
import type { Kv } from '../../src/store/kv.ts';

export interface KvContractStore {
  kv: Kv;
  close(): Promise<void>;
}

export type OpenKvStore = () => Promise<KvContractStore>;

export function describeKvContract(name: string, open: OpenKvStore): void {
  describe(`key-value contract on ${name}`, () => {
    const opened: KvContractStore[] = [];
    async function fresh(): Promise<Kv> {
      const store = await open();
      opened.push(store);
      return store.kv;
    }
    afterEach(async () => {
      for (const store of opened.splice(0)) await store.close();
    });

    describe('point reads and writes', () => {
      it('gets what was put, undefined once deleted or never written; getMany and has answer per key, in order', async () => {
        const kv = await fresh();
        const things = kv.space<{ n: number }>('things');
        expect(things.name).toBe('things');
        await things.put('a', { n: 1 });
        await things.put('b', { n: 2 });
        await things.put('a', { n: 3 });
        expect(await things.get('a')).toEqual({ n: 3 });
        expect(await things.get('nope')).toBeUndefined();
        expect(await things.getMany(['b', 'nope', 'a'])).toEqual([{ n: 2 }, undefined, { n: 3 }]);
        expect(await things.has(['nope', 'a', 'b'])).toEqual([false, true, true]);
        expect(await things.getMany([])).toEqual([]);
        expect(await things.has([])).toEqual([]);
        await things.del('a');
        await things.del('never');
        expect(await things.get('a')).toBeUndefined();
        expect(await things.has(['a', 'b'])).toEqual([false, true]);
      });

      it("reads back a value's JSON: nested objects with their fields in order, arrays, strings, numbers, booleans", async () => {
        const kv = await fresh();
        const values = kv.space<unknown>('values');
        const record = { z: 1, a: [1, 'two', null, { y: true, b: false }], m: 'ünïcødé "quoted" \\ \n', n: -1.5e-7 };
        await values.put('record', record);
        await values.put('text', 'latest');
        await values.put('number', 42);
        const back = await values.get('record');
        expect(back).toEqual(record);
        expect(Object.keys(back as object)).toEqual(['z', 'a', 'm', 'n']);
        expect(Object.keys((back as typeof record).a[3] as object)).toEqual(['y', 'b']);
        expect(await values.getMany(['text', 'number'])).toEqual(['latest', 42]);
      });
    });

    describe('order and ranges', () => {
      const keys = [
        `1!${padNumber(2)}!x`,
        `1!${padNumber(10)}!a`,
        `1!${padNumber(10)}!b`,
        `10!${padNumber(1)}!a`,
        `2!${padNumber(1)}!a`,
        'A',
        'a',
        'a!b',
        'a-b',
        'é',
      ];

      it('keeps keys in bytewise order, whatever order they were written in', async () => {
        const kv = await fresh();
        const space = kv.space<number>('ordered');
        for (const [i, key] of [...keys].reverse().entries()) await space.put(key, i);
        const sorted = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
        expect(await space.keys()).toEqual(sorted);
        expect((await space.entries()).map(([k]) => k)).toEqual(sorted);
        expect((await space.values()).length).toBe(keys.length);
        const scanned: string[] = [];
        for await (const [key] of space.scan()) scanned.push(key);
        expect(scanned).toEqual(sorted);
      });

      it('reads a prefix range with `!` and PREFIX_END, bounds inclusive or not, limited, reversed', async () => {
        const kv = await fresh();
        const space = kv.space<string>('ranges');
        await kv.batch(keys.map((key) => space.putOp(key, `v:${key}`)));
        const chain1 = { gt: '1!', lt: `1!${PREFIX_END}` };
        expect(await space.keys(chain1)).toEqual([`1!${padNumber(2)}!x`, `1!${padNumber(10)}!a`, `1!${padNumber(10)}!b`]);
        expect(await space.keys({ ...chain1, reverse: true, limit: 2 })).toEqual([`1!${padNumber(10)}!b`, `1!${padNumber(10)}!a`]);
        expect(await space.keys({ gte: `1!${padNumber(10)}!a`, lte: `1!${padNumber(10)}!b` })).toEqual([
          `1!${padNumber(10)}!a`,
          `1!${padNumber(10)}!b`,
        ]);
        expect(await space.keys({ gt: `1!${padNumber(10)}!a`, lt: `1!${padNumber(10)}!b` })).toEqual([]);
        expect(await space.keys({ gte: 'a', limit: 2 })).toEqual(['a', 'a!b']);
        expect(await space.keys({ lt: '10', reverse: true })).toEqual([
          `1!${padNumber(10)}!b`,
          `1!${padNumber(10)}!a`,
          `1!${padNumber(2)}!x`,
        ]);
        expect(await space.values({ gt: 'a', lt: `a${PREFIX_END}` })).toEqual(['v:a!b', 'v:a-b']);
        expect(await space.entries({ gte: 'é' })).toEqual([['é', 'v:é']]);
        const scanned: Array<[string, string]> = [];
        for await (const entry of space.scan({ gt: '2!', lt: `2!${PREFIX_END}` })) scanned.push(entry);
        expect(scanned).toEqual([[`2!${padNumber(1)}!a`, `v:2!${padNumber(1)}!a`]]);
      });

      it('scans a range larger than any page, in order', async () => {
        const kv = await fresh();
        const space = kv.space<number>('large');
        const n = 2_500;
        await kv.batch(Array.from({ length: n }, (_, i) => space.putOp(`k!${padNumber(i, 6)}`, i)));
        let expected = 0;
        for await (const [key, value] of space.scan({ gt: 'k!', lt: `k!${PREFIX_END}` })) {
          expect([key, value]).toEqual([`k!${padNumber(expected, 6)}`, expected]);
          expected++;
        }
        expect(expected).toBe(n);
      });

      it('clears a range and only it', async () => {
        const kv = await fresh();
        const space = kv.space<number>('cleared');
        await kv.batch(keys.map((key, i) => space.putOp(key, i)));
        await space.clear({ gte: '1!', lt: `1!${padNumber(10)}` });
        expect(await space.keys({ gt: '1!', lt: `1!${PREFIX_END}` })).toEqual([`1!${padNumber(10)}!a`, `1!${padNumber(10)}!b`]);
        await space.clear({ gt: 'a', lt: `a${PREFIX_END}` });
        expect(await space.has(['a', 'a!b', 'a-b', 'é'])).toEqual([true, false, false, true]);
        await space.clear();
        expect(await space.keys()).toEqual([]);
      });
    });

    describe('spaces', () => {
      it('never see the keys of another space, one named as the prefix of the other included', async () => {
        const kv = await fresh();
        const a = kv.space<string>('a');
        const ab = kv.space<string>('a-b');
        const other = kv.space<string>('other');
        await a.put('k', 'in a');
        await ab.put('k', 'in a-b');
        await other.put('k', 'in other');
        expect(await a.get('k')).toBe('in a');
        expect(await ab.get('k')).toBe('in a-b');
        expect(await a.entries()).toEqual([['k', 'in a']]);
        expect(await ab.keys()).toEqual(['k']);
        await a.clear();
        expect(await a.keys()).toEqual([]);
        expect(await ab.get('k')).toBe('in a-b');
        expect(await other.get('k')).toBe('in other');
        expect(await kv.space<string>('never-written').entries()).toEqual([]);
      });
    });

    describe('batches', () => {
      it('apply puts and deletes across spaces at once, in array order: a later op on a key wins', async () => {
        const kv = await fresh();
        const left = kv.space<number>('left');
        const right = kv.space<number>('right');
        await left.put('gone', 0);
        await kv.batch([
          left.putOp('x', 1),
          right.putOp('x', 2),
          left.delOp('gone'),
          right.putOp('y', 3),
          right.delOp('y'),
          left.putOp('z', 4),
          left.putOp('z', 5),
          { type: 'del', space: 'right', key: 'never' },
        ]);
        expect(await left.entries()).toEqual([
          ['x', 1],
          ['z', 5],
        ]);
        expect(await right.entries()).toEqual([['x', 2]]);
        await kv.batch([]);
        expect(await left.keys()).toEqual(['x', 'z']);
      });

      it('write nothing at all when one operation is invalid', async () => {
        const kv = await fresh();
        const space = kv.space<number>('atomic');
        await space.put('before', 1);
        await expect(
          kv.batch([
            space.putOp('ok', 1),
            space.delOp('before'),
            { type: 'put', space: 'atomic', key: null as unknown as string, value: 2 },
          ]),
        ).rejects.toThrow();
        await expect(
          kv.batch([space.putOp('ok', 1), { type: 'put', space: 'atomic', key: 'no-value', value: undefined }]),
        ).rejects.toThrow();
        expect(await space.entries()).toEqual([['before', 1]]);
      });
    });
  });
}
