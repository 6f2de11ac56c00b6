// Which provider a chain reads from: health of each view, the choice by weight, and the quorum height.
import { describe, expect, it } from 'vitest';
import {
  assess,
  choose,
  failoverReason,
  quorumHeight,
  referenceHead,
  type ProviderView,
} from '../../src/actors/chain-listener/provider-pool.ts';

const options = { maxLagBlocks: 5, stallTimeoutMs: 30_000 };
const NOW = 1_000_000;
const view = (over: Partial<ProviderView> & { name: string }): ProviderView => ({
  index: 0,
  weight: 1,
  up: true,
  syncing: false,
  mismatched: false,
  head: 100,
  movedAt: NOW,
  behindSince: null,
  heldUntil: 0,
  ...over,
});
const pick = (views: ProviderView[]) => choose(assess(views, NOW, options))?.view.name ?? null;
const health = (views: ProviderView[]) => Object.fromEntries(assess(views, NOW, options).map((a) => [a.view.name, a.health]));

describe('provider pool', () => {
  it('reads from the healthy provider of the highest weight, the first listed among equals', () => {
    expect(pick([view({ name: 'a', index: 0 }), view({ name: 'b', index: 1, weight: 3 })])).toBe('b');
    expect(pick([view({ name: 'a', index: 0 }), view({ name: 'b', index: 1 })])).toBe('a');
  });

  it('leaves out providers that are down, syncing, served another chain, held, lagging or stalled', () => {
    const views = [
      view({ name: 'down', index: 0, weight: 9, up: false }),
      view({ name: 'syncing', index: 1, weight: 9, syncing: true }),
      view({ name: 'mismatched', index: 2, weight: 9, mismatched: true }),
      view({ name: 'held', index: 3, weight: 9, heldUntil: NOW + 1 }),
      view({ name: 'lagging', index: 4, weight: 9, head: 94 }),
      view({ name: 'stalled', index: 5, weight: 9, head: 99, movedAt: NOW - 30_000, behindSince: NOW - 30_000 }),
      view({ name: 'ok', index: 6, weight: 1 }),
    ];
    expect(health(views)).toEqual({
      down: 'down',
      syncing: 'syncing',
      mismatched: 'mismatched',
      held: 'held',
      lagging: 'lagging',
      stalled: 'stalled',
      ok: 'healthy',
    });
    expect(pick(views)).toBe('ok');
  });

  it('a head that stands still is not stalled while no other provider is above it (a quiet chain)', () => {
    expect(health([view({ name: 'a', movedAt: 0 }), view({ name: 'b', index: 1, movedAt: 0 })])).toEqual({ a: 'healthy', b: 'healthy' });
  });

  it('stalled counts from when it fell behind, not from its last head (slow chains do not flap)', () => {
    // Blocks a minute apart: b's last head is a minute old, but it fell behind 50 ms ago.
    const views = [view({ name: 'a', head: 101 }), view({ name: 'b', index: 1, head: 100, movedAt: NOW - 60_000, behindSince: NOW - 50 })];
    expect(health(views)).toEqual({ a: 'healthy', b: 'healthy' });
    views[1]!.behindSince = NOW - 30_000;
    expect(health(views)).toEqual({ a: 'healthy', b: 'stalled' });
  });

  it("a held provider's head does not make the others lag (one claiming a head it cannot serve)", () => {
    const views = [view({ name: 'liar', head: 10_000, heldUntil: NOW + 60_000 }), view({ name: 'honest', index: 1, head: 100 })];
    expect(health(views)).toEqual({ liar: 'held', honest: 'healthy' });
    expect(pick(views)).toBe('honest');
  });

  it('a head no other provider comes near is not the reference when two others agree: it is ahead, never read from', () => {
    const views = [
      view({ name: 'liar', weight: 9, head: 10_000 }),
      view({ name: 'b', index: 1, head: 100 }),
      view({ name: 'c', index: 2, head: 98 }),
    ];
    expect(referenceHead(views, NOW, options.maxLagBlocks)).toBe(100);
    expect(health(views)).toEqual({ liar: 'ahead', b: 'healthy', c: 'healthy' });
    expect(pick(views)).toBe('b');
    // Two providers far apart: nothing vouches, the highest is the reference (the other lags).
    expect(referenceHead([view({ name: 'x', head: 200 }), view({ name: 'y', index: 1, head: 100 })], NOW, 5)).toBe(200);
  });

  it('with none healthy still reads from a usable one: unheld before held, the hold ending first, then by weight; none usable: null', () => {
    expect(
      pick([
        view({ name: 'held', weight: 5, heldUntil: NOW + 1 }),
        view({ name: 'lagging', index: 1, head: 50 }),
        view({ name: 'top', index: 2, head: 100, heldUntil: NOW + 1 }),
      ]),
    ).toBe('lagging');
    expect(pick([view({ name: 'only', heldUntil: NOW + 1 })])).toBe('only');
    expect(
      pick([view({ name: 'long', weight: 5, heldUntil: NOW + 60_000 }), view({ name: 'short', index: 1, heldUntil: NOW + 1_000 })]),
    ).toBe('short');
    expect(pick([view({ name: 'a', up: false }), view({ name: 'b', index: 1, syncing: true })])).toBeNull();
  });

  it('names why a provider was left', () => {
    const [a, b, c] = assess(
      [view({ name: 'a', up: false }), view({ name: 'b', index: 1, head: 50 }), view({ name: 'c', index: 2 })],
      NOW,
      options,
    );
    expect([failoverReason(a!), failoverReason(b!), failoverReason(c!)]).toEqual(['down', 'lagging', 'weight']);
  });

  it('the quorum height is the k-th highest head of the usable providers, -1 with fewer', () => {
    const views = [
      view({ name: 'a', head: 105 }),
      view({ name: 'b', index: 1, head: 103 }),
      view({ name: 'c', index: 2, head: 110, up: false }),
    ];
    expect(quorumHeight(views, 1)).toBe(105);
    expect(quorumHeight(views, 2)).toBe(103);
    expect(quorumHeight(views, 3)).toBe(-1);
  });
});
