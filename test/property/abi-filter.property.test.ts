// The subscription filter (src/abi/filter.ts) against a reference evaluator written here from the
// grammar's text: random filters over random decoded logs give the same verdict; and checking a
// filter, an abi or an events list never fails with anything but AbiInputError, whatever the JSON.
import fc from 'fast-check';
import { getAddress } from 'viem';
import { describe, expect, it } from 'vitest';
import { AbiInputError, eventFromDeclaration } from '../../src/abi/events.ts';
import { compileFilter } from '../../src/abi/filter.ts';
import { resolveAbiFields } from '../../src/abi/subscription-fields.ts';
import { loadViem } from '../../src/abi/viem.ts';

// The node loads viem on demand (src/abi/viem.ts); these call its parsing and decoding directly.
await loadViem();

const EVENT = eventFromDeclaration('event E(address indexed who, uint256 value, int64 delta, bool flag, (uint256 a, address b) pair)');
const ADDRESSES = ['0x' + '11'.repeat(20), '0x' + 'ab'.repeat(20), '0x' + 'cd'.repeat(20)];
const INTS = [-(2n ** 63n), -5n, -1n, 0n, 1n, 5n, 1000n, 10n ** 18n, 2n ** 200n, 2n ** 256n - 1n];

type Kind = 'integer' | 'address' | 'bool';
const FIELDS: Record<string, Kind> = {
  address: 'address',
  blockNumber: 'integer',
  'args.who': 'address',
  'args.value': 'integer',
  'args.delta': 'integer',
  'args.flag': 'bool',
  'args.pair.a': 'integer',
  'args.pair.b': 'address',
};

/** A literal of the kind, in any of the forms the grammar takes (mixed-case addresses, numbers or decimal strings). */
const literal = (kind: Kind): fc.Arbitrary<unknown> =>
  kind === 'bool'
    ? fc.boolean()
    : kind === 'address'
      ? fc.tuple(fc.constantFrom(...ADDRESSES), fc.boolean()).map(([a, upper]) => (upper ? getAddress(a) : a))
      : fc.oneof(
          fc.constantFrom(...INTS).map((n) => n.toString()),
          fc.integer({ min: -1000, max: 1000 }),
          fc.constantFrom(0, 5, 1000),
        );

const condition: fc.Arbitrary<Record<string, unknown>> = fc.constantFrom(...Object.keys(FIELDS)).chain((field) => {
  const kind = FIELDS[field]!;
  const ops = kind === 'integer' ? ['eq', 'ne', 'in', 'gt', 'gte', 'lt', 'lte'] : ['eq', 'ne', 'in'];
  const op = fc
    .constantFrom(...ops)
    .chain((o) => (o === 'in' ? fc.array(literal(kind), { minLength: 1, maxLength: 4 }) : literal(kind)).map((v) => [o, v] as const));
  return fc.uniqueArray(op, { minLength: 1, maxLength: 3, selector: ([o]) => o }).map((pairs) => ({ [field]: Object.fromEntries(pairs) }));
});

const { filter } = fc.letrec<{ filter: Record<string, unknown> }>((tie) => ({
  filter: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    condition,
    fc.array(tie('filter'), { minLength: 1, maxLength: 3 }).map((fs) => ({ and: fs })),
    fc.array(tie('filter'), { minLength: 1, maxLength: 3 }).map((fs) => ({ or: fs })),
    tie('filter').map((f) => ({ not: f })),
    fc.tuple(condition, tie('filter')).map(([a, b]) => (Object.keys(a)[0]! in b ? a : { ...a, ...b })),
  ),
}));

/** Decoded args as viem gives them (bigint integers, checksummed addresses), or undefined: the log did not decode. */
const args = fc.option(
  fc.record({
    who: fc.constantFrom(...ADDRESSES).map(getAddress),
    value: fc.constantFrom(...INTS.filter((n) => n >= 0)),
    delta: fc.constantFrom(...INTS.filter((n) => n >= -(2n ** 63n) && n < 2n ** 63n)),
    flag: fc.boolean(),
    pair: fc.record({ a: fc.constantFrom(...INTS.filter((n) => n >= 0)), b: fc.constantFrom(...ADDRESSES).map(getAddress) }),
  }),
  { nil: undefined },
);
const log = fc.record({ address: fc.constantFrom(...ADDRESSES), blockNumber: fc.integer({ min: 0, max: 2000 }) });

// The reference: the grammar read literally, one rule per line of its text.
function mentionsArgs(f: unknown): boolean {
  if (Array.isArray(f)) return f.some(mentionsArgs);
  if (typeof f !== 'object' || f === null) return false;
  return Object.entries(f).some(([k, v]) => k.startsWith('args.') || ((k === 'and' || k === 'or' || k === 'not') && mentionsArgs(v)));
}
function holds(f: Record<string, unknown>, l: { address: string; blockNumber: number }, a: Record<string, unknown> | undefined): boolean {
  return Object.entries(f).every(([key, v]) => {
    if (key === 'and') return (v as Record<string, unknown>[]).every((x) => holds(x, l, a));
    if (key === 'or') return (v as Record<string, unknown>[]).some((x) => holds(x, l, a));
    if (key === 'not') return !holds(v as Record<string, unknown>, l, a);
    const actual: unknown =
      key === 'address'
        ? l.address
        : key === 'blockNumber'
          ? l.blockNumber
          : key
              .split('.')
              .slice(1)
              .reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], a);
    if (actual === undefined) return false;
    const kind = FIELDS[key]!;
    const norm = (x: unknown) =>
      kind === 'integer' ? BigInt(x as string | number | bigint) : kind === 'address' ? String(x).toLowerCase() : x;
    const x = norm(actual);
    return Object.entries(v as Record<string, unknown>).every(([op, lit]) => {
      if (op === 'in') return (lit as unknown[]).some((y) => norm(y) === x);
      const y = norm(lit);
      if (op === 'eq') return x === y;
      if (op === 'ne') return x !== y;
      const [p, q] = [x as bigint, y as bigint];
      return op === 'gt' ? p > q : op === 'gte' ? p >= q : op === 'lt' ? p < q : p <= q;
    });
  });
}
const reference = (f: Record<string, unknown>, l: { address: string; blockNumber: number }, a: Record<string, unknown> | undefined) =>
  mentionsArgs(f) && a === undefined ? false : holds(f, l, a);

describe('the filter evaluator', () => {
  it('agrees with the reference evaluator on random filters and logs, decoded or not', () => {
    fc.assert(
      fc.property(filter, fc.array(fc.tuple(log, args), { minLength: 1, maxLength: 8 }), (f, logs) => {
        const compiled = compileFilter(f, [EVENT]);
        expect(compiled.namesArgs()).toBe(mentionsArgs(f));
        for (const [l, a] of logs)
          expect(
            compiled.test(l, a),
            JSON.stringify({ f, l, a }, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)),
          ).toBe(reference(f, l, a));
      }),
      { numRuns: 500 },
    );
  });
});

describe('checking never crashes', () => {
  const onlyRefusals = (check: () => unknown) => {
    try {
      check();
    } catch (err) {
      if (!(err instanceof AbiInputError)) throw err;
      expect(err.path.length).toBeGreaterThan(0);
    }
  };
  /** JSON that looks like the grammar: its keys and operators, with values of any JSON. */
  const grammarish = fc.letrec<{ node: unknown }>((tie) => ({
    node: fc.oneof(
      { depthSize: 'small' },
      fc.jsonValue(),
      fc.dictionary(fc.constantFrom('and', 'or', 'not', ...Object.keys(FIELDS), 'args', 'args.', 'args.pair', 'args.0', 'x'), tie('node'), {
        maxKeys: 3,
      }),
      fc.dictionary(
        fc.constantFrom('eq', 'ne', 'in', 'gt', 'gte', 'lt', 'lte', 'like'),
        fc.oneof(fc.jsonValue(), literal('integer'), literal('address')),
        { maxKeys: 3 },
      ),
      fc.array(tie('node'), { maxLength: 3 }),
    ),
  }));

  it('a filter of any JSON is compiled or refused with AbiInputError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), grammarish.node), fc.boolean(), (json, withAbi) =>
        onlyRefusals(() => compileFilter(json, withAbi ? [EVENT] : undefined)),
      ),
      { numRuns: 1000 },
    );
  });

  it('an abi, events and topics of any JSON are resolved or refused with AbiInputError', () => {
    const entry = fc.oneof(
      fc.jsonValue(),
      fc.constantFrom('event T(uint256 a)', 'struct S { uint a; }', 'event U(S s)', 'function f()', 'event (', ''),
      fc.record(
        { type: fc.constantFrom('event', 'function', 3), name: fc.oneof(fc.string(), fc.constant('E')), inputs: fc.jsonValue() },
        { requiredKeys: [] },
      ),
    );
    fc.assert(
      fc.property(
        fc.array(entry, { minLength: 1, maxLength: 4 }),
        fc.option(fc.array(fc.string(), { minLength: 1, maxLength: 3 }), { nil: undefined }),
        (abi, events) => onlyRefusals(() => resolveAbiFields({ abi, events, filter: { 'args.a': { gte: 1 } } })),
      ),
      { numRuns: 500 },
    );
  });
});
