// Properties of the JSON-RPC frame parser: it never throws anything but ETHHOOK_ERR_RPC_MALFORMED,
// whatever the input; and it reads back every well-formed reply, notification and batch it is given.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseFrame } from '../../src/actors/chain-listener/frames.ts';
import { isEthhookError } from '../../src/runtime/errors.ts';

const rejectsOnlyAsMalformed = (raw: string) => {
  try {
    parseFrame(raw);
  } catch (err) {
    expect(isEthhookError(err, 'ETHHOOK_ERR_RPC_MALFORMED')).toBe(true);
  }
};

const id = fc.oneof(fc.nat(), fc.string({ maxLength: 20 }));
const reply = fc.oneof(
  fc.record({ jsonrpc: fc.constant('2.0'), id, result: fc.jsonValue() }),
  fc.record({
    jsonrpc: fc.constant('2.0'),
    id: fc.option(id, { nil: null }),
    error: fc.record({ code: fc.integer(), message: fc.string({ maxLength: 50 }) }),
  }),
);

describe('parseFrame', () => {
  it('rejects arbitrary strings and JSON values only with ETHHOOK_ERR_RPC_MALFORMED', () => {
    fc.assert(fc.property(fc.string(), rejectsOnlyAsMalformed), { numRuns: 2000 });
    fc.assert(
      fc.property(fc.jsonValue(), (v) => rejectsOnlyAsMalformed(JSON.stringify(v))),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.anything(), (v) => {
        let raw: string | undefined;
        try {
          raw = JSON.stringify(v);
        } catch {
          return;
        }
        if (raw !== undefined) rejectsOnlyAsMalformed(raw);
      }),
      { numRuns: 1000 },
    );
  });

  it('rejects mutations of valid frames only as malformed', () => {
    fc.assert(
      fc.property(reply, fc.nat(), fc.string({ maxLength: 3 }), (r, at, insert) => {
        const raw = JSON.stringify(r);
        const pos = at % (raw.length + 1);
        rejectsOnlyAsMalformed(raw.slice(0, pos) + insert + raw.slice(pos + 1));
      }),
      { numRuns: 2000 },
    );
  });

  it('reads back well-formed replies, batches and notifications', () => {
    fc.assert(
      fc.property(reply, (r) => {
        const frame = parseFrame(JSON.stringify(r));
        if ('error' in r) expect(frame).toEqual({ kind: 'error', id: r.id, error: r.error });
        else expect(frame).toEqual({ kind: 'response', id: r.id, result: JSON.parse(JSON.stringify(r.result)) });
      }),
    );
    fc.assert(
      fc.property(fc.array(reply, { minLength: 1, maxLength: 5 }), (rs) => {
        const frame = parseFrame(JSON.stringify(rs));
        expect(frame.kind).toBe('batch');
        if (frame.kind === 'batch') expect(frame.items.map((i) => i.id)).toEqual(rs.map((r) => r.id));
      }),
    );
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40 }), fc.jsonValue(), (subscription, result) => {
        const raw = JSON.stringify({ jsonrpc: '2.0', method: 'eth_subscription', params: { subscription, result } });
        expect(parseFrame(raw)).toEqual({ kind: 'notification', subscription, result: JSON.parse(JSON.stringify(result)) });
      }),
    );
  });
});
