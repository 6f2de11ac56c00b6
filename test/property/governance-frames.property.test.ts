// Properties of the governance frame parser and of the sequencer behind it.
// - parseGovernanceFrame never throws, whatever the text; it accepts every valid frame, and it accepts
//   exactly the frames that an independent predicate of the envelope rules (docs/governance.md) and
//   the payload schema of their type accept.
// - The sequencer, fed any interleaving of genuine, replayed, out-of-order, forged, tampered and
//   malformed frames, applies exactly the genuine messages 1..h, in order, once each, where h is the
//   longest prefix delivered in order; every rejected frame is counted.
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { getGovernanceMetrics } from '../../src/actors/governance/index.ts';
import { keyIdOf, signMessage, spkiBase64 } from '../../src/governance-protocol/keys.ts';
import { GOVERNANCE_TYPES, parseGovernanceFrame, payloadSchemas, type GovernanceType } from '../../src/governance-protocol/protocol.ts';
import { GovernanceSequencer } from '../../src/actors/governance/sequencer.ts';
import type { GovernanceState } from '../../src/actors/governance/state.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { MemoryApplier, metric } from '../support/governance.ts';

const id = (prefix: string) => fc.stringMatching(new RegExp(`^${prefix}[A-Za-z0-9_-]{1,64}$`));
const validPayload = fc.oneof(
  fc.record({ type: fc.constantFrom('endpoint.delete', 'endpoint.pause', 'endpoint.resume'), payload: fc.record({ id: id('ep_') }) }),
  fc.record({ type: fc.constant('subscription.delete'), payload: fc.record({ id: id('sub_') }) }),
  fc.record({
    type: fc.constant('endpoint.upsert'),
    payload: fc.record(
      {
        id: id('ep_'),
        url: fc.stringMatching(/^https?:\/\/[a-z]{1,10}\.example\/[a-z0-9]{0,10}$/),
        description: fc.string({ maxLength: 40 }),
        rateLimitPerSec: fc.integer({ min: 1, max: 1000 }),
      },
      { requiredKeys: ['id', 'url'] },
    ),
  }),
  fc.record({
    type: fc.constant('subscription.upsert'),
    payload: fc.record(
      {
        id: id('sub_'),
        endpointId: id('ep_'),
        chainId: fc.integer({ min: 1, max: 1e6 }),
        addresses: fc.array(fc.stringMatching(/^0x[0-9a-f]{40}$/), { maxLength: 3 }),
        topics: fc.array(fc.option(fc.stringMatching(/^0x[0-9a-f]{64}$/), { nil: null }), { maxLength: 4 }),
      },
      { requiredKeys: ['id', 'endpointId', 'chainId'] },
    ),
  }),
);
const validSeq = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const validKeyId = fc.stringMatching(/^[0-9a-f]{32}$/);
const validSignature = fc.uint8Array({ minLength: 64, maxLength: 64 }).map((b) => Buffer.from(b).toString('base64'));
const validFrame = fc
  .tuple(validSeq, validPayload, validKeyId, validSignature)
  .map(([seq, { type, payload }, keyId, signature]) => ({ seq, type, payload, keyId, signature }));

/** The envelope rules of docs/governance.md, written independently of the zod schema. */
function envelopeValid(raw: unknown): boolean {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return false;
  const f = raw as Record<string, unknown>;
  if (Object.keys(f).sort().join() !== 'keyId,payload,seq,signature,type') return false;
  return (
    typeof f.seq === 'number' &&
    Number.isSafeInteger(f.seq) &&
    f.seq >= 1 &&
    typeof f.type === 'string' &&
    (GOVERNANCE_TYPES as string[]).includes(f.type) &&
    typeof f.keyId === 'string' &&
    /^[0-9a-f]{32}$/.test(f.keyId) &&
    typeof f.signature === 'string' &&
    /^[A-Za-z0-9+/]{86}==$/.test(f.signature) &&
    Buffer.from(f.signature, 'base64').length === 64
  );
}

// Each field valid or not; whole frames with fields dropped or added.
const anyField = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined));
const mutatedFrame = fc
  .tuple(
    validFrame,
    fc.record(
      {
        seq: anyField,
        type: fc.oneof(anyField, fc.constantFrom(...GOVERNANCE_TYPES)),
        keyId: anyField,
        signature: anyField,
        payload: anyField,
      },
      { requiredKeys: [] },
    ),
    fc.option(fc.tuple(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 })), { nil: undefined }),
  )
  .map(([frame, replaced, extra]) => {
    const out: Record<string, unknown> = { ...frame };
    for (const [k, v] of Object.entries(replaced)) {
      if (v === undefined) delete out[k];
      else out[k] = v;
    }
    if (extra) out[extra[0]] = extra[1];
    return out;
  });
const mixedFrame = fc.oneof(
  validFrame.map((f): Record<string, unknown> => ({ ...f })),
  mutatedFrame,
);

describe('parseGovernanceFrame', () => {
  it('never throws, whatever the text', () => {
    const never = (text: string) => {
      expect(() => parseGovernanceFrame(text)).not.toThrow();
    };
    fc.assert(fc.property(fc.string({ unit: 'binary' }), never), { numRuns: 2000 });
    fc.assert(
      fc.property(fc.jsonValue(), (v) => never(JSON.stringify(v) ?? 'null')),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(mixedFrame, (v) => never(JSON.stringify(v))),
      { numRuns: 2000 },
    );
    never('['.repeat(100_000));
  });

  it('accepts every valid frame and returns it as sent', () => {
    fc.assert(
      fc.property(validFrame, (frame) => {
        const parsed = parseGovernanceFrame(JSON.stringify(frame));
        expect(parsed.ok).toBe(true);
        if (parsed.ok) expect({ ...parsed.message, parsed: undefined }).toEqual({ ...frame, parsed: undefined });
      }),
      { numRuns: 1000 },
    );
  });

  it('accepts exactly the frames whose envelope satisfies the rules and whose payload fits its type', () => {
    let accepted = 0;
    let rejected = 0;
    fc.assert(
      fc.property(mixedFrame, (raw) => {
        const parsed = parseGovernanceFrame(JSON.stringify(raw));
        const sent = JSON.parse(JSON.stringify(raw)) as Record<string, unknown>;
        const valid = envelopeValid(sent) && payloadSchemas[sent.type as GovernanceType].safeParse(sent.payload).success;
        expect(parsed.ok).toBe(valid);
        if (parsed.ok) accepted++;
        else rejected++;
      }),
      { numRuns: 3000 },
    );
    // Both sides of the line were exercised.
    expect(Math.min(accepted, rejected)).toBeGreaterThan(100);
  });
});

// The sequencer model: events name which frame is delivered next.
type Event =
  | { kind: 'genuine'; seq: number }
  | { kind: 'forged'; seq: number; asTrusted: boolean }
  | { kind: 'tampered'; seq: number }
  | { kind: 'malformed'; text: string };

const N = 8;
const event: fc.Arbitrary<Event> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: N }).map((seq) => ({ kind: 'genuine' as const, seq })) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('forged' as const), seq: fc.integer({ min: 1, max: N }), asTrusted: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: N }).map((seq) => ({ kind: 'tampered' as const, seq })) },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }).map((text) => ({ kind: 'malformed' as const, text })) },
);

describe('GovernanceSequencer', () => {
  const trusted = generateKeyPairSync('ed25519');
  const foreign = generateKeyPairSync('ed25519');
  const trustedId = keyIdOf(trusted.publicKey);
  const genuine = Array.from({ length: N }, (_, i) => {
    const seq = i + 1;
    const payload = { id: `ep_${seq}`, url: `https://h.example/${seq}`, description: '' };
    return {
      seq,
      type: 'endpoint.upsert',
      payload,
      keyId: trustedId,
      signature: signMessage(trusted.privateKey, seq, 'endpoint.upsert', payload),
    };
  });
  const frameOf = (e: Event): string => {
    switch (e.kind) {
      case 'genuine':
        return JSON.stringify(genuine[e.seq - 1]);
      case 'forged': {
        const payload = { id: 'ep_evil', url: 'https://evil.example/', description: '' };
        const keyId = e.asTrusted ? trustedId : keyIdOf(foreign.publicKey);
        return JSON.stringify({
          seq: e.seq,
          type: 'endpoint.upsert',
          payload,
          keyId,
          signature: signMessage(foreign.privateKey, e.seq, 'endpoint.upsert', payload),
        });
      }
      case 'tampered':
        return JSON.stringify({ ...genuine[e.seq - 1], payload: { ...genuine[e.seq - 1]!.payload, url: 'https://evil.example/' } });
      case 'malformed':
        return e.text;
    }
  };

  it('applies exactly the in-order prefix of genuine messages, once each, and counts every rejection', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(event, { maxLength: 40 }), async (events) => {
        const registry = new Registry();
        const metrics = getGovernanceMetrics(registry);
        const apply = new MemoryApplier();
        const commits: GovernanceState[] = [];
        const needs: number[] = [];
        const state = { height: 0, keys: [{ keyId: trustedId, publicKey: spkiBase64(trusted.publicKey) }], genesis: [trustedId] };
        const seq = new GovernanceSequencer({
          store: { commit: async (s) => void commits.push(s), height: async () => 0 },
          state,
          apply,
          metrics,
          log: createLogger({ level: 'silent' }),
          onNeed: (from) => needs.push(from),
        });
        let expected = 0;
        let gaps = 0;
        let replays = 0;
        let mismatches = 0;
        for (const e of events) {
          await seq.handle(frameOf(e));
          if (e.kind === 'genuine') {
            if (e.seq === expected + 1) expected++;
            else if (e.seq > expected + 1) gaps++;
            else replays++;
          } else if (e.kind !== 'malformed') mismatches++;
        }
        expect(apply.seqs).toEqual(Array.from({ length: expected }, (_, i) => i + 1));
        expect(apply.calls.every((c) => c.payload && (c.payload as { url: string }).url !== 'https://evil.example/')).toBe(true);
        expect(commits.map((c) => c.height)).toEqual(apply.seqs);
        expect(seq.height).toBe(expected);
        expect(await metric(registry, 'governance_height')).toBe(expected);
        expect(await metric(registry, 'signature_mismatches_total')).toBe(mismatches);
        expect(await metric(registry, 'governance_frames_total', { outcome: 'gap' })).toBe(gaps);
        expect(await metric(registry, 'governance_frames_total', { outcome: 'replay' })).toBe(replays);
        expect(await metric(registry, 'governance_frames_total', { outcome: 'applied' })).toBe(expected);
        const malformed = events.filter((e) => e.kind === 'malformed').length;
        expect(await metric(registry, 'governance_frames_total', { outcome: 'malformed' })).toBe(malformed);
        // Every re-request asks for the message right after what was applied at that moment.
        expect(needs.every((from) => from >= 1 && from <= expected + 1)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
