// Stream filters: any filter written as a query string (any case, keys split or repeated) parses to
// what it says; a filter selects exactly what the rule of filter.ts says; any bad value is a 400
// naming its key.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isEthhookError } from '../../src/runtime/errors.ts';
import { STREAM_EVENT_KINDS, type StreamEvent, type StreamEventKind } from '../../src/streams/events.ts';
import { filterMatches, parseStreamQuery } from '../../src/streams/filter.ts';

const CHAINS = [1, 5, 10, 137];
const ADDRESSES = ['0x' + 'ab'.repeat(20), '0x' + '0c'.repeat(20), '0x' + 'f1'.repeat(20), '0x' + '99'.repeat(20)];
const TYPES = ['endpoint.upsert', 'endpoint.pause', 'key.rotate', 'subscription.delete'];

interface Spec {
  kinds: StreamEventKind[] | 'all' | undefined;
  chains: number[] | undefined;
  addresses: string[] | undefined;
  types: string[] | undefined;
}

const sub = <T>(values: readonly T[]) => fc.option(fc.subarray([...values], { minLength: 1 }), { nil: undefined });
const specArb: fc.Arbitrary<Spec> = fc.record({
  kinds: fc.oneof(fc.constant<'all'>('all'), fc.constant(undefined), fc.subarray([...STREAM_EVENT_KINDS], { minLength: 1 })),
  chains: sub(CHAINS),
  addresses: sub(ADDRESSES),
  types: sub(TYPES),
});

/** Random letter case for addresses, and each list either comma-joined or split over repeated keys. */
const queryArb = (spec: Spec) =>
  fc
    .tuple(fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }), fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }))
    .map(([caseBits, splitBits]) => {
      const mixCase = (a: string) => '0x' + [...a.slice(2)].map((c, i) => (caseBits[i] ? c.toUpperCase() : c)).join('');
      const parts: string[] = [];
      const add = (key: string, values: readonly (string | number)[] | undefined, split: boolean) => {
        if (values === undefined) return;
        if (split) for (const v of values) parts.push(`${key}=${encodeURIComponent(String(v))}`);
        else parts.push(`${key}=${values.map((v) => encodeURIComponent(String(v))).join(',')}`);
      };
      add('events', spec.kinds === 'all' ? ['all'] : spec.kinds, splitBits[0]!);
      add('chain', spec.chains, splitBits[1]!);
      add('address', spec.addresses?.map(mixCase), splitBits[2]!);
      add('type', spec.types, splitBits[3]!);
      return parts.join('&');
    });

const eventArb: fc.Arbitrary<StreamEvent> = fc.oneof(
  fc.record({
    kind: fc.constantFrom('log.created' as const, 'log.removed' as const),
    chainId: fc.constantFrom(...CHAINS, 2),
    blockNumber: fc.nat(),
    blockHash: fc.constant('0x' + '1'.repeat(64)),
    transactionHash: fc.constant('0x' + '2'.repeat(64)),
    logIndex: fc.nat(),
    address: fc.constantFrom(...ADDRESSES, '0x' + '00'.repeat(20)),
    topics: fc.constant<string[]>([]),
    data: fc.constant('0x'),
    at: fc.nat(),
  }),
  fc.record({ kind: fc.constant('governance' as const), seq: fc.nat(), type: fc.constantFrom(...TYPES, 'endpoint.delete'), at: fc.nat() }),
);

/** The rule, written out: kinds select; chain/address narrow logs only; type narrows notices only. */
function expected(spec: Spec, e: StreamEvent): boolean {
  const kinds = spec.kinds === undefined || spec.kinds === 'all' ? STREAM_EVENT_KINDS : spec.kinds;
  if (!kinds.includes(e.kind)) return false;
  if (e.kind === 'governance') return spec.types === undefined || spec.types.includes(e.type);
  if (e.kind === 'backfill') return spec.chains === undefined || spec.chains.includes(e.chainId);
  return (
    (spec.chains === undefined || spec.chains.includes(e.chainId)) &&
    (spec.addresses === undefined || spec.addresses.includes(e.address.toLowerCase()))
  );
}

describe('stream filters', () => {
  it('a query string parses to the filter it spells, whatever the case and key repetition', () => {
    fc.assert(
      fc.property(
        specArb.chain((spec) => fc.tuple(fc.constant(spec), queryArb(spec))),
        ([spec, query]) => {
          const { filter } = parseStreamQuery(query);
          expect([...filter.kinds].sort()).toEqual(
            [...(spec.kinds === undefined || spec.kinds === 'all' ? STREAM_EVENT_KINDS : spec.kinds)].sort(),
          );
          expect(filter.chains && [...filter.chains].sort()).toEqual(spec.chains ? [...spec.chains].sort() : null);
          expect(filter.addresses && [...filter.addresses].sort()).toEqual(spec.addresses ? [...spec.addresses].sort() : null);
          expect(filter.types && [...filter.types].sort()).toEqual(spec.types ? [...spec.types].sort() : null);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a filter passes exactly the events the rule selects', () => {
    fc.assert(
      fc.property(
        specArb.chain((spec) => fc.tuple(fc.constant(spec), queryArb(spec))),
        fc.array(eventArb, { maxLength: 30 }),
        ([spec, query], events) => {
          const { filter } = parseStreamQuery(query);
          for (const e of events) {
            const address = 'address' in e ? e.address.toLowerCase() : undefined;
            expect(filterMatches(filter, e, address)).toBe(expected(spec, e));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a bad value or an unknown key is a 400 naming the key', () => {
    // Valid lists, by the documented grammar: comma-separated, trimmed items, none empty, bounded.
    const list = (s: string, item: (v: string) => boolean, max: number) => {
      const items = s.split(',').map((v) => v.trim());
      return items.length <= max && items.every((v) => v !== '' && item(v));
    };
    const validEvents = (s: string) => s.trim() === 'all' || list(s, (v) => (STREAM_EVENT_KINDS as readonly string[]).includes(v), 3);
    const bad = fc.oneof(
      fc.tuple(
        fc.constant('events'),
        fc.string().filter((s) => !validEvents(s)),
      ),
      fc.tuple(
        fc.constant('chain'),
        fc.string().filter((s) => !list(s, (v) => /^[1-9][0-9]{0,15}$/.test(v), 64)),
      ),
      fc.tuple(
        fc.constant('address'),
        fc.string().filter((s) => !list(s, (v) => /^0x[0-9a-fA-F]{40}$/.test(v), 256)),
      ),
      fc.tuple(
        fc.constant('type'),
        fc.string().filter((s) => !list(s, (v) => /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$/.test(v), 32)),
      ),
      fc.tuple(
        fc.stringMatching(/^[a-z_]{1,12}$/).filter((k) => !['events', 'chain', 'address', 'type', 'access_token'].includes(k)),
        fc.string(),
      ),
    );
    fc.assert(
      fc.property(
        specArb.chain((spec) => queryArb(spec)),
        bad,
        (good, [key, value]) => {
          const query = `${good
            .split('&')
            .filter((p) => p !== '' && !p.startsWith(`${key}=`))
            .join('&')}&${key}=${encodeURIComponent(value)}`;
          let error: unknown;
          try {
            parseStreamQuery(query);
          } catch (err) {
            error = err;
          }
          if (!isEthhookError(error, 'ETHHOOK_ERR_ADMIN_INVALID_REQUEST')) throw new Error(`accepted ${query}`);
          expect(error.context.field).toBe(key);
        },
      ),
      {
        numRuns: 300,
        // Found on a random seed: keys that name Object.prototype's members were lost or accepted.
        examples: [
          ['events=all', ['__proto__', '']],
          ['events=all', ['constructor', 'x']],
          ['events=all', ['tostring', '']],
        ],
      },
    );
  });
});
