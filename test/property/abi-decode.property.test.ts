// The EventDecoder (src/abi/decode.ts) against viem's own decodeEventLog (strict, an abi of that one
// event): on random events (indexed or not, named or not, static, dynamic, tuple and array types) and
// random logs, well-formed or broken (a topic missing or extra, data cut, grown or random, a topic in
// capitals, topic0 of another event), a log decodes exactly when viem decodes it, the webhook's args
// are viem's args rendered (integers as strings, addresses checksummed), and the args the filters read
// are viem's, indexed addresses in lowercase.
import fc from 'fast-check';
import { decodeEventLog, encodeAbiParameters, toEventSelector, type AbiEvent, type AbiParameter, type Hex } from 'viem';
import { describe, expect, it } from 'vitest';
import { EventDecoder, type ArgValue } from '../../src/abi/decode.ts';
import { eventFromDeclaration } from '../../src/abi/events.ts';
import { loadViem } from '../../src/abi/viem.ts';

// The node loads viem on demand (src/abi/viem.ts); the decoder calls it directly.
await loadViem();

const hexOf = (bytes: Uint8Array): Hex => `0x${Buffer.from(bytes).toString('hex')}`;
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map(hexOf);

/** A parameter type and an arbitrary of its values, as viem encodes them. */
interface Kind {
  readonly type: string;
  readonly value: fc.Arbitrary<unknown>;
}
const KINDS: Kind[] = [
  { type: 'address', value: bytes(20) },
  { type: 'uint256', value: fc.bigInt(0n, 2n ** 256n - 1n) },
  { type: 'uint48', value: fc.bigInt(0n, 2n ** 48n - 1n).map(Number) },
  { type: 'uint8', value: fc.integer({ min: 0, max: 255 }) },
  { type: 'int64', value: fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n) },
  { type: 'int256', value: fc.bigInt(-(2n ** 255n), 2n ** 255n - 1n) },
  { type: 'bool', value: fc.boolean() },
  { type: 'bytes32', value: bytes(32) },
  { type: 'bytes4', value: bytes(4) },
  { type: 'string', value: fc.string({ maxLength: 40 }) },
  { type: 'bytes', value: fc.uint8Array({ maxLength: 70 }).map(hexOf) },
  { type: 'uint256[]', value: fc.array(fc.bigInt(0n, 2n ** 256n - 1n), { maxLength: 3 }) },
  { type: 'address[2]', value: fc.tuple(bytes(20), bytes(20)) },
  { type: '(uint256 a, address b)', value: fc.record({ a: fc.bigInt(0n, 2n ** 64n), b: bytes(20) }) },
];

interface Input {
  readonly kind: Kind;
  readonly indexed: boolean;
}
const inputs = fc.array(
  fc.record({ kind: fc.constantFrom(...KINDS), indexed: fc.boolean() }).filter((i) => !i.indexed || !i.kind.type.startsWith('(')),
  { maxLength: 5 },
);

/** An event of these inputs (at most three indexed), named or with every parameter unnamed. */
function declare(ins: readonly Input[], named: boolean): string {
  let indexed = 0;
  const params = ins.map((input, i) => {
    const isIndexed = input.indexed && indexed++ < 3;
    return `${input.kind.type}${isIndexed ? ' indexed' : ''}${named ? ` p${i}` : ''}`;
  });
  return `event E(${params.join(', ')})`;
}

const topic0Of = (item: AbiEvent) => toEventSelector(item);

/** A well-formed log of `item`, then broken by `how`. */
const log = (item: AbiEvent, ins: readonly Input[]) =>
  fc
    .tuple(
      fc.tuple(...ins.map((i) => i.kind.value)),
      fc.constantFrom(
        'none',
        'drop topic',
        'extra topic',
        'cut data',
        'grow data',
        'random data',
        'capital topic',
        'other topic0',
        'no data',
      ),
      fc.uint8Array({ minLength: 1, maxLength: 96 }).map(hexOf),
      fc.nat(),
      bytes(32),
    )
    .map(([values, how, noise, at, hash]) => {
      const params = item.inputs as readonly (AbiParameter & { indexed?: boolean })[];
      // An indexed value of a dynamic type is its keccak hash in the log: any 32 bytes decode as it.
      const hashed = (p: AbiParameter) => p.type === 'string' || p.type === 'bytes' || p.type.endsWith(']') || p.type === 'tuple';
      let topics: string[] = [
        topic0Of(item),
        ...params.flatMap((p, i) => (!p.indexed ? [] : [hashed(p) ? hash : encodeAbiParameters([p], [values[i]])])),
      ];
      let data: string = encodeAbiParameters(
        params.filter((p) => !p.indexed),
        params.flatMap((p, i) => (p.indexed ? [] : [values[i]])),
      );
      switch (how) {
        case 'drop topic':
          topics = topics.slice(0, Math.max(1, topics.length - 1));
          break;
        case 'extra topic':
          topics = [...topics, `0x${'ab'.repeat(32)}`];
          break;
        case 'cut data':
          data = data.slice(0, 2 + 2 * (at % Math.max(1, (data.length - 2) / 2)));
          break;
        case 'grow data':
          data = data + noise.slice(2);
          break;
        case 'random data':
          data = noise;
          break;
        case 'capital topic':
          if (topics.length > 1) topics = topics.map((t, i) => (i === 1 ? `0x${t.slice(2).toUpperCase()}` : t));
          break;
        case 'other topic0':
          topics = [`0x${'cd'.repeat(32)}`, ...topics.slice(1)];
          break;
        case 'no data':
          data = '0x';
          break;
      }
      return { topics, data };
    });

const event = fc
  .tuple(inputs, fc.boolean())
  .map(([ins, named]) => ({ ins, declared: eventFromDeclaration(declare(ins, named)) }))
  .chain(({ ins, declared }) => fc.tuple(fc.constant(declared), fc.array(log(declared.item, ins), { minLength: 1, maxLength: 4 })));

/** viem's args as the webhook renders them (the rules of decode.ts's header, written out again). */
function rendered(value: unknown): ArgValue {
  if (typeof value === 'bigint' || typeof value === 'number') return value.toString();
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (Array.isArray(value)) return value.map(rendered);
  return Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, rendered(v)]));
}

describe('EventDecoder', () => {
  it("decodes exactly the logs viem decodes, into viem's values", () => {
    fc.assert(
      fc.property(event, ([declared, logs]) => {
        const decoder = new EventDecoder(declared);
        for (const { topics, data } of logs) {
          let expected: unknown;
          let decodes = true;
          try {
            expected = decodeEventLog({ abi: [declared.item], topics: topics as [Hex], data: data as Hex, strict: true }).args ?? [];
          } catch {
            decodes = false;
          }
          const args = decoder.decode(topics, data);
          const about = JSON.stringify({ declaration: declared.declaration, topics, data });
          if (!decodes) {
            expect(args, about).toBeUndefined();
            continue;
          }
          expect(args, about).toBeDefined();
          expect(decoder.render(args!).args, about).toEqual(rendered(expected));
          expect(Object.keys(args!), about).toEqual(Object.keys(expected as object));
          declared.item.inputs.forEach((p, i) => {
            const key = Array.isArray(expected) ? i : p.name!;
            const want = (expected as Record<string | number, unknown>)[key];
            const got = (args as Record<string | number, unknown>)[key];
            expect(got, about).toEqual(p.indexed && p.type === 'address' ? (want as string).toLowerCase() : want);
          });
        }
      }),
      { numRuns: 400 },
    );
  });
});
