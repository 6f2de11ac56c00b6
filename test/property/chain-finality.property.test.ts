// The finality tracker's input checks (src/actors/chain-listener/finality.ts): over any sequence of
// provider answers (headers at any height, null, garbage, JSON-RPC errors, timeouts) and heads, a height
// handed on was a header's number that was at most the head and never below a height handed on
// before for its tag; `safe` is never below `finalized`; a tag whose last verdict was `unsupported` is
// unknown; the anchor is the header the highest height came from, and for a receiver processed up to a
// height, the highest block at most as high (the finalized one standing for both tags). Then the poller
// against a provider that does not know the tags: unknown, said once, and known again once it answers.
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  FinalityPoller,
  FinalityTracker,
  FINALITY_TAGS,
  type FinalityAnswer,
  type FinalityTag,
} from '../../src/actors/chain-listener/finality.ts';
import { getChainMetrics } from '../../src/actors/chain-listener/metrics.ts';
import { rpcError, rpcTimeout, type RpcTransport } from '../../src/actors/chain-listener/transport.ts';
import { memoryLogger } from '../support/kernel.ts';

const hex = (n: number) => `0x${n.toString(16)}`;
const HASH = '0x' + 'ab'.repeat(32);
const hashOf = (n: number) => '0x' + n.toString(16).padStart(64, 'c');
const header = (n: number) => ({ number: hex(n), hash: hashOf(n), parentHash: HASH, timestamp: '0x1' });

type Step = { tag: FinalityTag; head: number | undefined; kind: 'header' | 'null' | 'garbage' | 'rpc-error' | 'timeout'; n: number };

const step: fc.Arbitrary<Step> = fc.record({
  tag: fc.constantFrom(...FINALITY_TAGS),
  head: fc.option(fc.integer({ min: 0, max: 200 }), { nil: undefined }),
  kind: fc.constantFrom('header', 'header', 'header', 'null', 'garbage', 'rpc-error', 'timeout'),
  n: fc.integer({ min: 0, max: 220 }),
});

function answerOf(s: Step): FinalityAnswer {
  switch (s.kind) {
    case 'header':
      return { result: header(s.n) };
    case 'null':
      return { result: null };
    case 'garbage':
      return { result: { number: -s.n, hash: 'nope' } };
    case 'rpc-error':
      return { error: rpcError('eth_getBlockByNumber', { code: -32602, message: 'invalid block tag' }) };
    case 'timeout':
      return { error: rpcTimeout('eth_getBlockByNumber', 1000) };
  }
}

describe('FinalityTracker', () => {
  it('hands on only heights it may trust, never lower than before, safe >= finalized', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
        const tracker = new FinalityTracker();
        const best: Partial<Record<FinalityTag, number>> = {};
        const unknown = new Set<FinalityTag>(FINALITY_TAGS);
        for (const s of steps) {
          const verdict = tracker.note(s.tag, answerOf(s), s.head);
          const expected =
            s.kind === 'timeout'
              ? 'unreachable'
              : s.kind === 'null' || s.kind === 'rpc-error'
                ? 'unsupported'
                : s.kind === 'garbage'
                  ? 'malformed'
                  : s.head !== undefined && s.n > s.head
                    ? 'beyond-head'
                    : s.n < (best[s.tag] ?? 0)
                      ? 'backwards'
                      : 'accepted';
          expect(verdict).toBe(expected);
          if (verdict === 'accepted') {
            best[s.tag] = s.n;
            unknown.delete(s.tag);
          }
          if (verdict === 'unsupported') unknown.add(s.tag);
          const h = tracker.heights();
          expect(h.finalized).toBe(unknown.has('finalized') ? undefined : best.finalized);
          if (h.safe !== undefined && h.finalized !== undefined) expect(h.safe).toBeGreaterThanOrEqual(h.finalized);
          if (!unknown.has('safe')) expect(h.safe).toBe(Math.max(best.safe!, h.finalized ?? 0));
          if (unknown.has('safe')) expect(h.safe).toBe(h.finalized);
          // The block of the highest height handed on: the header it was trusted from.
          expect(tracker.anchor()).toEqual(h.safe === undefined ? undefined : { number: h.safe, hash: hashOf(h.safe) });
          // For a receiver processed up to `atMost`: the highest block if processed, else the finalized
          // block standing for both tags, else nothing; never a block above `atMost`.
          for (const atMost of [s.n - 1, s.n, s.n + 1, h.finalized ?? 0, h.safe ?? 0]) {
            const proof = tracker.proof(atMost);
            if (h.safe !== undefined && h.safe <= atMost) expect(proof).toEqual({ heights: h, anchor: tracker.anchor() });
            else if (h.finalized !== undefined && h.finalized <= atMost)
              expect(proof).toEqual({
                heights: { safe: h.finalized, finalized: h.finalized },
                anchor: { number: h.finalized, hash: hashOf(h.finalized) },
              });
            else expect(proof).toBeUndefined();
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('FinalityPoller', () => {
  it('a provider that does not know the tags: both unknown, metrics say so, one warning per tag; known again once it answers', async () => {
    const registry = new Registry();
    const metrics = getChainMetrics(registry);
    const log = memoryLogger();
    let supported = false;
    const transport = {
      kind: 'http',
      request: async (method: string, params: unknown[]) => {
        expect(method).toBe('eth_getBlockByNumber');
        if (supported) return header(params[0] === 'safe' ? 95 : 90);
        if (params[0] === 'safe') throw rpcError(method, { code: -32602, message: 'unknown block tag safe' });
        return null;
      },
    } as unknown as RpcTransport;
    const poller = new FinalityPoller({
      chain: 'c',
      intervalMs: 1_000,
      active: () => ({ name: 'p', transport }),
      head: () => 100,
      metrics,
      log: log.logger,
      signal: new AbortController().signal,
    });
    for (let i = 0; i < 3; i++) await poller.poll();
    expect(poller.heights()).toEqual({});
    const value = async (name: string, labels: Record<string, string>) =>
      (await registry.getSingleMetric(name)!.get()).values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
    expect(await value('chain_finality_known', { chain: 'c', tag: 'finalized' })).toBe(0);
    expect(await value('chain_finality_rejected_total', { chain: 'c', tag: 'safe', reason: 'unsupported' })).toBe(3);
    const warnings = log.lines.filter((l) => String(l.msg).includes('does not report'));
    expect(warnings.map((l) => l.tag).sort()).toEqual(['finalized', 'safe']);
    expect(warnings.every((l) => l.provider === 'p' && l.head === 100)).toBe(true);

    supported = true;
    for (let i = 0; i < 2; i++) await poller.poll();
    expect(poller.heights()).toEqual({ safe: 95, finalized: 90 });
    expect(await value('chain_finality_known', { chain: 'c', tag: 'finalized' })).toBe(1);
    expect(await value('chain_finalized_height', { chain: 'c' })).toBe(90);
    expect(await value('chain_safe_height', { chain: 'c' })).toBe(95);
    expect(
      log.lines
        .filter((l) => String(l.msg).includes('known again'))
        .map((l) => l.tag)
        .sort(),
    ).toEqual(['finalized', 'safe']);
  });
});
