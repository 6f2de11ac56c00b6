// The Matcher's LogDecoder (src/abi/log-decoder.ts): one parsed abi for the subscriptions sharing it, a
// log decoded once whatever the number of its candidates, a failure counted once and delivered as null,
// filters applied per subscription, and a retraction's event decoded from the declaration alone.
import { encodeAbiParameters, getAddress, toEventSelector } from 'viem';
import { beforeAll, describe, expect, it } from 'vitest';
import { LogDecoder } from '../../src/abi/log-decoder.ts';
import { loadViem } from '../../src/abi/viem.ts';

// The node loads viem on demand (src/abi/viem.ts); these call its parsing and decoding directly.
beforeAll(() => loadViem());

const TRANSFER = 'event Transfer(address indexed from, address indexed to, uint256 value)';
const T0 = toEventSelector('Transfer(address,address,uint256)');
const word = (a: string) => `0x${'0'.repeat(24)}${a.slice(2)}`;
const FROM = '0x' + 'ab'.repeat(20);
const TO = '0x' + 'cd'.repeat(20);
const transfer = (value: bigint) => ({
  address: '0x' + '11'.repeat(20),
  blockNumber: 7,
  topics: [T0, word(FROM), word(TO)],
  data: encodeAbiParameters([{ type: 'uint256' }], [value]),
});

describe('LogDecoder', () => {
  it('decodes a log once for all the subscriptions sharing its event, and filters each on its own', () => {
    let failures = 0;
    const decoder = new LogDecoder(() => failures++);
    const specs = Array.from({ length: 100 }, (_, i) =>
      decoder.acquire({ id: `sub_${i}`, abi: [TRANSFER], filter: { 'args.value': { gte: String(i * 10) } } })!,
    );
    expect(decoder.acquire({ id: 'sub_plain' })).toBeUndefined();
    expect(specs[0]!.events).toBe(specs[99]!.events);

    const log = transfer(495n);
    const decodings = specs.map((spec) => decoder.decode(spec, log));
    expect(new Set(decodings).size).toBe(1);
    expect(decodings[0]!.event).toEqual({
      name: 'Transfer',
      signature: 'Transfer(address,address,uint256)',
      args: { from: getAddress(FROM), to: getAddress(TO), value: '495' },
    });
    const accepted = specs.map((spec, i) => decoder.accepts(spec, log, decodings[i])).filter(Boolean);
    expect(accepted).toHaveLength(50);
    expect(failures).toBe(0);
  });

  it('a log that does not decode is null, counted once, and fails an args filter', () => {
    let failures = 0;
    const decoder = new LogDecoder(() => failures++);
    const a = decoder.acquire({ id: 'sub_a', abi: [TRANSFER] })!;
    const b = decoder.acquire({ id: 'sub_b', abi: [TRANSFER], filter: { not: { 'args.value': { gte: '1' } } } })!;
    const c = decoder.acquire({ id: 'sub_c', abi: [TRANSFER], filter: { blockNumber: { eq: 7 } } })!;
    const short = { ...transfer(1n), data: '0x1234' };
    const [da, db, dc] = [a, b, c].map((spec) => decoder.decode(spec, short));
    expect(da!.event).toBeNull();
    expect(db).toBe(da);
    expect(failures).toBe(1);
    expect(decoder.accepts(a, short, da)).toBe(true);
    expect(decoder.accepts(b, short, db)).toBe(false);
    expect(decoder.accepts(c, short, dc)).toBe(true);
  });

  it('an abi stays parsed while a spec holds it, and goes with the last one given back', () => {
    const decoder = new LogDecoder();
    const first = decoder.acquire({ id: 'sub_a', abi: [TRANSFER] })!;
    const second = decoder.acquire({ id: 'sub_b', abi: [TRANSFER], filter: { 'args.value': { gt: '1' } } })!;
    expect(second.events).toBe(first.events);
    decoder.release(first);
    const third = decoder.acquire({ id: 'sub_c', abi: [TRANSFER] })!;
    expect(third.events).toBe(second.events);
    decoder.release(second);
    decoder.release(third);
    expect(decoder.acquire({ id: 'sub_d', abi: [TRANSFER] })!.events).not.toBe(third.events);
  });

  it('a filter that does not compile leaves no abi held', () => {
    const decoder = new LogDecoder();
    expect(() => decoder.acquire({ id: 'sub_a', abi: [TRANSFER], filter: { 'args.nothing': { eq: '1' } } })).toThrow(
      /no chosen event has this value/,
    );
    const spec = decoder.acquire({ id: 'sub_b', abi: [TRANSFER] })!;
    decoder.release(spec);
    expect(decoder.acquire({ id: 'sub_c', abi: [TRANSFER] })!.events).not.toBe(spec.events);
  });

  it("a retraction's event comes from the declaration alone, after its subscription is gone", () => {
    const decoder = new LogDecoder();
    const spec = decoder.acquire({ id: 'sub_a', abi: [TRANSFER] })!;
    const log = transfer(5n);
    const created = decoder.decode(spec, log)!;
    decoder.release(spec);
    decoder.forgetLog();
    expect(decoder.eventOf(created.declaration, log)).toEqual(created.event);
  });
});
