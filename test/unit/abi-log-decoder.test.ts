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
    for (let i = 0; i < 100; i++) decoder.set({ id: `sub_${i}`, abi: [TRANSFER], filter: { 'args.value': { gte: String(i * 10) } } });
    decoder.set({ id: 'sub_plain' });
    expect(decoder.size).toBe(100);
    expect(decoder.spec('sub_plain')).toBeUndefined();
    expect(decoder.spec('sub_0')!.events).toBe(decoder.spec('sub_99')!.events);

    const log = transfer(495n);
    const decodings = Array.from({ length: 100 }, (_, i) => decoder.decode(decoder.spec(`sub_${i}`)!, log));
    expect(new Set(decodings).size).toBe(1);
    expect(decodings[0]!.event).toEqual({
      name: 'Transfer',
      signature: 'Transfer(address,address,uint256)',
      args: { from: getAddress(FROM), to: getAddress(TO), value: '495' },
    });
    const accepted = Array.from({ length: 100 }, (_, i) => decoder.accepts(decoder.spec(`sub_${i}`)!, log, decodings[i])).filter(Boolean);
    expect(accepted).toHaveLength(50);
    expect(failures).toBe(0);
  });

  it('a log that does not decode is null, counted once, and fails an args filter', () => {
    let failures = 0;
    const decoder = new LogDecoder(() => failures++);
    decoder.set({ id: 'sub_a', abi: [TRANSFER] });
    decoder.set({ id: 'sub_b', abi: [TRANSFER], filter: { not: { 'args.value': { gte: '1' } } } });
    decoder.set({ id: 'sub_c', abi: [TRANSFER], filter: { blockNumber: { eq: 7 } } });
    const short = { ...transfer(1n), data: '0x1234' };
    const [a, b, c] = ['sub_a', 'sub_b', 'sub_c'].map((id) => decoder.decode(decoder.spec(id)!, short));
    expect(a!.event).toBeNull();
    expect(b).toBe(a);
    expect(failures).toBe(1);
    expect(decoder.accepts(decoder.spec('sub_a')!, short, a)).toBe(true);
    expect(decoder.accepts(decoder.spec('sub_b')!, short, b)).toBe(false);
    expect(decoder.accepts(decoder.spec('sub_c')!, short, c)).toBe(true);
  });

  it("a retraction's event comes from the declaration alone, after its subscription is gone", () => {
    const decoder = new LogDecoder();
    decoder.set({ id: 'sub_a', abi: [TRANSFER] });
    const log = transfer(5n);
    const created = decoder.decode(decoder.spec('sub_a')!, log)!;
    decoder.delete('sub_a');
    decoder.forgetLog();
    expect(decoder.size).toBe(0);
    expect(decoder.eventOf(created.declaration, log)).toEqual(created.event);
  });
});
