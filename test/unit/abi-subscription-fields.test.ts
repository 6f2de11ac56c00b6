// A subscription's abi, events and filter at creation (src/abi/): what is refused, with the field and the
// problem, and what is stored (canonical declarations, topic0 folded into topics).
import { beforeAll, describe, expect, it } from 'vitest';
import { toEventSelector } from 'viem';
import { AbiInputError, chooseEvents, eventFromDeclaration } from '../../src/abi/events.ts';
import { resolveAbiFields, type AbiFieldsInput } from '../../src/abi/subscription-fields.ts';
import { abiFields } from '../../src/store/subscriptions.ts';
import { isEthhookError } from '../../src/runtime/errors.ts';
import { loadViem } from '../../src/abi/viem.ts';

// The node loads viem on demand (src/abi/viem.ts); these call its parsing and decoding directly.
beforeAll(() => loadViem());

const TRANSFER = 'event Transfer(address indexed from, address indexed to, uint256 value)';
const APPROVAL = 'event Approval(address indexed owner, address indexed spender, uint256 value)';
const T_TOPIC = toEventSelector('Transfer(address,address,uint256)');
const A_TOPIC = toEventSelector('Approval(address,address,uint256)');

/** The path and problem resolveAbiFields refuses `input` with. */
function refusal(input: AbiFieldsInput): { path: (string | number)[]; problem: string } {
  try {
    resolveAbiFields(input);
  } catch (err) {
    if (err instanceof AbiInputError) return { path: [...err.path], problem: err.problem };
    throw err;
  }
  throw new Error('not refused');
}

describe('abi entries', () => {
  it('reads human-readable declarations, struct declarations and JSON fragments, ignoring functions', () => {
    const events = chooseEvents([
      'struct Order { address maker; uint256 amount; }',
      'event Placed(Order order, uint256[] ids)',
      'function transfer(address to, uint256 value) returns (bool)',
      { type: 'function', name: 'balanceOf', inputs: [{ name: 'a', type: 'address' }] },
      {
        type: 'event',
        name: 'Transfer',
        inputs: [
          { name: 'from', type: 'address', indexed: true },
          { name: 'to', type: 'address', indexed: true },
          { name: 'value', type: 'uint256', indexed: false },
        ],
      },
    ]);
    expect(events.map((e) => e.declaration)).toEqual(['event Placed((address maker, uint256 amount) order, uint256[] ids)', TRANSFER]);
    expect(events.map((e) => e.signature)).toEqual(['Placed((address,uint256),uint256[])', 'Transfer(address,address,uint256)']);
    expect(events[1]!.topic0).toBe(T_TOPIC);
    // The canonical declaration reads back to the same event.
    for (const e of events) expect(eventFromDeclaration(e.declaration).item).toEqual(e.item);
  });

  it('names the entry and the problem of a bad type, a bad declaration, a non-fragment and a malformed fragment', () => {
    expect(refusal({ abi: [TRANSFER, 'event X(uint257 a)'] })).toEqual({ path: ['abi', 1], problem: expect.stringMatching(/uint257/) });
    expect(refusal({ abi: ['evnt X(uint a)'] })).toEqual({ path: ['abi', 0], problem: expect.stringMatching(/Unknown signature/) });
    expect(refusal({ abi: [TRANSFER, 7] })).toEqual({
      path: ['abi', 1],
      problem: expect.stringMatching(/declaration \(string\) or a JSON ABI fragment/),
    });
    expect(refusal({ abi: [{ type: 'event', name: 'X', inputs: [{ name: 'a', type: 'uint999' }] }] }).path).toEqual(['abi', 0]);
    expect(refusal({ abi: [{ type: 'event', name: 'X', inputs: 'uint256' }] })).toEqual({
      path: ['abi', 0, 'inputs'],
      problem: 'must be a list of parameters',
    });
    expect(refusal({ abi: [{ type: 'event', name: 'X', inputs: [{ name: 'a', type: 'tuple' }] }] })).toEqual({
      path: ['abi', 0, 'inputs', 0, 'components'],
      problem: 'a tuple needs its components',
    });
    expect(refusal({ abi: [{ type: 'event', name: 'X', inputs: [{ name: 'a b', type: 'uint8' }] }] }).path).toEqual([
      'abi',
      0,
      'inputs',
      0,
      'name',
    ]);
  });

  it('refuses an abi without events, an anonymous event picked, and two chosen events sharing a topic0', () => {
    expect(refusal({ abi: ['function f()'] })).toEqual({ path: ['abi'], problem: 'declares no event' });
    const gone = { type: 'event', name: 'Gone', anonymous: true, inputs: [{ name: 'a', type: 'uint256' }] };
    expect(resolveAbiFields({ abi: [TRANSFER, gone] }).abi).toEqual([TRANSFER]);
    expect(refusal({ abi: [gone] })).toEqual({
      path: ['abi'],
      problem: 'declares no event that is not anonymous',
    });
    expect(refusal({ abi: [TRANSFER, gone], events: ['Gone'] })).toEqual({
      path: ['abi', 1],
      problem: expect.stringMatching(/anonymous/),
    });
    const erc721 = 'event Transfer(address indexed from, address indexed to, uint256 indexed tokenId)';
    expect(refusal({ abi: [TRANSFER, erc721] })).toEqual({ path: ['abi', 1], problem: expect.stringMatching(/topic0 of abi\[0\]/) });
    // The same event declared twice is one event.
    expect(chooseEvents([TRANSFER, TRANSFER])).toHaveLength(1);
  });

  it('picks events by name or signature, and names an events entry the abi lacks', () => {
    expect(resolveAbiFields({ abi: [TRANSFER, APPROVAL], events: ['Approval'] }).abi).toEqual([APPROVAL]);
    expect(resolveAbiFields({ abi: [TRANSFER, APPROVAL], events: ['Transfer(address, address, uint256)'] }).abi).toEqual([TRANSFER]);
    expect(refusal({ abi: [TRANSFER], events: ['Transfer', 'Mint'] })).toEqual({
      path: ['events', 1],
      problem: 'no event named Mint in the abi (it declares Transfer)',
    });
    expect(refusal({ events: ['Transfer'] })).toEqual({ path: ['events'], problem: expect.stringMatching(/give the abi too/) });
  });
});

describe('topics and events together', () => {
  it('folds the chosen events into topics[0] when it is absent or null, keeping the other positions', () => {
    expect(resolveAbiFields({ abi: [TRANSFER, APPROVAL] }).topics).toEqual([[T_TOPIC, A_TOPIC]]);
    const wallet = `0x${'0'.repeat(24)}${'ab'.repeat(20)}`;
    expect(resolveAbiFields({ abi: [TRANSFER], topics: [null, wallet] }).topics).toEqual([T_TOPIC, wallet]);
  });

  it('narrows the abi to a given topics[0], and refuses a topics[0] or an events entry the other contradicts', () => {
    expect(resolveAbiFields({ abi: [TRANSFER, APPROVAL], topics: [A_TOPIC] })).toEqual({ abi: [APPROVAL], topics: [A_TOPIC] });
    const other = `0x${'11'.repeat(32)}`;
    expect(refusal({ abi: [TRANSFER], topics: [[T_TOPIC, other]] })).toEqual({
      path: ['topics', 0],
      problem: `${other} is not the topic0 of a chosen event (Transfer(address,address,uint256))`,
    });
    expect(refusal({ abi: [TRANSFER, APPROVAL], events: ['Transfer', 'Approval'], topics: [T_TOPIC] })).toEqual({
      path: ['events', 1],
      problem: expect.stringMatching(/Approval\(address,address,uint256\), whose topic0 topics\[0\] leaves out/),
    });
  });
});

describe('filters at creation', () => {
  const abi = [TRANSFER, 'event Placed((address maker, uint256 amount) order, uint256[] ids, (uint8, bool) flags)'];

  it('accepts fields of the chosen events, nested tuple components and array elements by index', () => {
    const filter = {
      or: [
        { 'args.value': { gte: '1000000000000000000' }, 'args.to': { in: [`0x${'AB'.repeat(20)}`] } },
        { 'args.order.amount': { gt: 5, lte: '10' }, 'args.ids.0': { ne: 3 }, 'args.flags.1': { eq: true } },
        { not: { address: { eq: `0x${'cd'.repeat(20)}` } }, blockNumber: { lt: 100 } },
      ],
    };
    expect(resolveAbiFields({ abi, filter }).filter).toEqual(filter);
    // address and blockNumber need no abi.
    expect(resolveAbiFields({ filter: { blockNumber: { gte: 10 } } }).filter).toEqual({ blockNumber: { gte: 10 } });
  });

  it('names the path and the problem of a bad filter', () => {
    const cases: [unknown, (string | number)[], RegExp][] = [
      [{ 'args.value': { gte: 1.5 } }, ['filter', 'args.value', 'gte'], /must be an integer/],
      [{ 'args.value': { gte: 2 ** 60 } }, ['filter', 'args.value', 'gte'], /safe integer/],
      [{ 'args.to': { gt: '1' } }, ['filter', 'args.to', 'gt'], /gt compares integers; this field is an address/],
      [{ 'args.to': { eq: '0x12' } }, ['filter', 'args.to', 'eq'], /20-byte/],
      [{ and: [{ 'args.valu': { eq: '1' } }] }, ['filter', 'and', 0, 'args.valu'], /no chosen event has this value/],
      [{ 'args.order': { eq: '1' } }, ['filter', 'args.order'], /is a tuple: name one of its components/],
      [{ 'args.ids': { eq: '1' } }, ['filter', 'args.ids'], /is an array: name an element by its index/],
      [{ 'args.flags.zero': { eq: 1 } }, ['filter', 'args.flags.zero'], /components are unnamed/],
      [{ 'args.value': { between: [1, 2] } }, ['filter', 'args.value', 'between'], /unknown operator/],
      [{ 'args.value': { in: [] } }, ['filter', 'args.value', 'in'], /list of 1 to 1000/],
      [{ value: { eq: '1' } }, ['filter', 'value'], /unknown field/],
      [{ or: {} }, ['filter', 'or'], /list of 1 to 32 filters/],
      [{}, ['filter'], /1 to 32 entries/],
      ['x', ['filter'], /must be an object of conditions/],
    ];
    for (const [filter, path, problem] of cases) {
      const r = refusal({ abi, filter });
      expect(r.path, JSON.stringify(filter)).toEqual(path);
      expect(r.problem, JSON.stringify(filter)).toMatch(problem);
    }
    expect(refusal({ filter: { 'args.value': { gt: '1' } } })).toEqual({
      path: ['filter', 'args.value'],
      problem: 'filters on args need an abi on the subscription',
    });
  });

  it('refuses filters nested too deep or too large', () => {
    let deep: unknown = { blockNumber: { gte: 1 } };
    for (let i = 0; i < 20; i++) deep = { not: deep };
    expect(refusal({ filter: deep }).problem).toMatch(/deeper than 16/);
    const wide = { or: Array.from({ length: 32 }, () => ({ or: Array.from({ length: 10 }, () => ({ blockNumber: { eq: 1 } })) })) };
    expect(refusal({ filter: wide }).problem).toMatch(/more than 256 objects/);
  });
});

describe("the store's refusal", () => {
  it('is ETHHOOK_ERR_INVALID_INPUT whose field is the formatted path', async () => {
    try {
      await abiFields({ abi: [TRANSFER], filter: { and: [{ 'args.value': { gte: 'x' } }] } });
      expect.unreachable();
    } catch (err) {
      expect(isEthhookError(err, 'ETHHOOK_ERR_INVALID_INPUT')).toBe(true);
      const e = err as { message: string; context: Record<string, unknown> };
      expect(e.context.field).toBe('filter.and[0]["args.value"].gte');
      expect(e.message).toBe(
        'invalid subscription: filter.and[0]["args.value"].gte: must be an integer: a decimal string, or a number that is a safe integer',
      );
    }
  });
});
