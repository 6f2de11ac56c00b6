// The subscription index returns exactly what a brute-force eth_getLogs filter (go-ethereum's
// filterLogs rules) returns, for random subscriptions, logs, and add/remove/replace sequences.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SubscriptionIndex, type MatchableLog, type MatchedSubscription } from '../../src/actors/matcher/subscription-index.ts';
import type { Subscription } from '../../src/store/subscriptions.ts';

const ADDRESSES = ['0x' + '1'.repeat(40), '0x' + '2'.repeat(40), '0x' + '3'.repeat(40), '0x' + '4'.repeat(40)];
const topic = (n: number) => '0x' + n.toString(16).padStart(64, '0');
const TOPICS = [1, 2, 3, 4, 5].map(topic);
/** Enough topics that a node of the index outgrows its flat form (8 keys) and becomes a Map. */
const WIDE_TOPICS = Array.from({ length: 14 }, (_, i) => topic(i + 1));
const STRANGER_ADDRESS = '0x' + 'f'.repeat(40);
const STRANGER_TOPIC = '0x' + 'f'.repeat(64);

/** The reference: go-ethereum's filterLogs, written out plainly. */
function bruteForce(sub: Subscription, chainId: number, log: MatchableLog): boolean {
  if (sub.chainId !== chainId) return false;
  if (sub.addresses && !sub.addresses.includes(log.address)) return false;
  const topics = sub.topics ?? [];
  if (topics.length > log.topics.length) return false;
  return topics.every((p, i) => p === null || (typeof p === 'string' ? [p] : p).includes(log.topics[i]!));
}

const distinct = <T>(arb: fc.Arbitrary<T>, max: number) => fc.uniqueArray(arb, { minLength: 1, maxLength: max });
const positionOver = (topics: string[]) => fc.oneof(fc.constant(null), fc.constantFrom(...topics), distinct(fc.constantFrom(...topics), 3));

const subscriptionArb = (id: string, topics = TOPICS, chains = [1, 2], addresses = ADDRESSES) =>
  fc
    .record(
      {
        chainId: fc.constantFrom(...chains),
        addresses: distinct(fc.constantFrom(...addresses), 3),
        topics: fc.array(positionOver(topics), { maxLength: 4 }),
      },
      { requiredKeys: ['chainId'] },
    )
    .map((r): Subscription => ({ id, endpointId: `ep_${id}`, createdAt: 0, ...r }));

const subsArb = fc.integer({ min: 0, max: 40 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => subscriptionArb(`sub_${i}`))));

const logArbOver = (topics: string[]) =>
  fc.record({
    chainId: fc.constantFrom(1, 2, 3),
    address: fc.constantFrom(...ADDRESSES, STRANGER_ADDRESS),
    topics: fc.array(fc.constantFrom(...topics, STRANGER_TOPIC), { maxLength: 4 }),
  });
const logArb = logArbOver(TOPICS);

function ids(subs: readonly { id: string }[]): string[] {
  return subs.map((s) => s.id).sort();
}

/** What the index must yield for these subscriptions: id and endpoint, in id order. */
function targets(subs: readonly Pick<MatchedSubscription, 'id' | 'endpointId'>[]): string[] {
  return subs.map((s) => `${s.id}>${s.endpointId}`).sort();
}

describe('SubscriptionIndex', () => {
  it('matches exactly the brute-force filter, without duplicates', () => {
    fc.assert(
      fc.property(subsArb, fc.array(logArb, { minLength: 1, maxLength: 30 }), (subs, logs) => {
        const index = new SubscriptionIndex();
        for (const s of subs) index.add(s);
        expect(index.size).toBe(subs.length);
        for (const { chainId, ...log } of logs) {
          const got = index.match(chainId, log);
          expect(new Set(got.map((s) => s.id)).size).toBe(got.length);
          expect(targets(got)).toEqual(targets(subs.filter((s) => bruteForce(s, chainId, log))));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('stays exact through adds, removes and replacements, and empties completely', () => {
    const op = fc.oneof(
      fc.integer({ min: 0, max: 9 }).chain((i) => subscriptionArb(`sub_${i}`).map((s) => ({ kind: 'add' as const, sub: s }))),
      fc.integer({ min: 0, max: 9 }).map((i) => ({ kind: 'remove' as const, id: `sub_${i}` })),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), fc.array(logArb, { minLength: 1, maxLength: 10 }), (ops, logs) => {
        const index = new SubscriptionIndex();
        const live = new Map<string, Subscription>();
        for (const o of ops) {
          if (o.kind === 'add') {
            index.add(o.sub);
            live.set(o.sub.id, o.sub);
          } else {
            expect(index.remove(o.id)).toBe(live.delete(o.id));
          }
          for (const { chainId, ...log } of logs) {
            expect(ids(index.match(chainId, log))).toEqual(ids([...live.values()].filter((s) => bruteForce(s, chainId, log))));
          }
        }
        for (const id of [...live.keys()]) index.remove(id);
        expect(index.size).toBe(0);
        for (const { chainId, ...log } of logs) expect(index.match(chainId, log)).toEqual([]);
        // No empty buckets are left behind once everything is removed.
        expect((index as unknown as { chains: Map<number, unknown> }).chains.size).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it('treats topic positions like eth_getLogs: trailing nulls still require the topics to exist', () => {
    const index = new SubscriptionIndex();
    const sub: Subscription = { id: 'sub_x', endpointId: 'ep_x', chainId: 1, createdAt: 0, topics: [TOPICS[0]!, null] };
    index.add(sub);
    expect(index.match(1, { address: ADDRESSES[0]!, topics: [TOPICS[0]!] })).toEqual([]);
    expect(index.match(1, { address: ADDRESSES[0]!, topics: [TOPICS[0]!, TOPICS[3]!] })).toEqual([{ id: 'sub_x', endpointId: 'ep_x' }]);
  });

  it('stays exact through compactions and through nodes growing past their flat form, each match with its spec', () => {
    // compactAfter 2: a few removals compact the index, so dead and reused slots meet every bucket
    // shape; one chain, two addresses and 14 topics make nodes of more than 8 keys (Maps) and back.
    // Every other add carries a spec, so a reused slot may have held one or not.
    const op = fc.oneof(
      fc
        .integer({ min: 0, max: 39 })
        .chain((i) => subscriptionArb(`sub_${i}`, WIDE_TOPICS, [1], ADDRESSES.slice(0, 2)).map((s) => ({ kind: 'add' as const, sub: s }))),
      fc.integer({ min: 0, max: 39 }).map((i) => ({ kind: 'remove' as const, id: `sub_${i}` })),
    );
    fc.assert(
      fc.property(
        fc.array(op, { minLength: 20, maxLength: 200, size: 'max' }),
        fc.array(logArbOver(WIDE_TOPICS), { minLength: 1, maxLength: 20 }),
        (ops, logs) => {
          const index = new SubscriptionIndex<string>({ compactAfter: 2 });
          const live = new Map<string, Subscription>();
          const specs = new Map<string, string>();
          let adds = 0;
          for (const o of ops) {
            if (o.kind === 'add') {
              const sub = { ...o.sub, endpointId: `ep_${o.sub.id}_${live.size}` };
              const spec = adds++ % 2 === 0 ? `spec_${sub.endpointId}` : undefined;
              index.add(sub, spec);
              live.set(sub.id, sub);
              if (spec === undefined) specs.delete(sub.id);
              else specs.set(sub.id, spec);
            } else {
              expect(index.remove(o.id)).toBe(live.delete(o.id));
              specs.delete(o.id);
            }
          }
          expect(index.size).toBe(live.size);
          for (const id of live.keys()) expect(index.spec(id)).toBe(specs.get(id));
          const withSpecs = (subs: readonly { id: string; endpointId: string }[]) =>
            subs.map((s) => `${s.id}>${s.endpointId}>${specs.get(s.id) ?? '-'}`).sort();
          for (const { chainId, ...log } of logs) {
            const got = index.match(chainId, log);
            expect(got.map((s) => `${s.id}>${s.endpointId}>${s.spec ?? '-'}`).sort()).toEqual(
              withSpecs([...live.values()].filter((s) => bruteForce(s, chainId, log))),
            );
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
