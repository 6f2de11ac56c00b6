// Delivery limits held across a cluster, driven by random schedules with an explicit clock: several
// instances' rate slices sharing one bucket in the store (the in-memory model of the shared limits,
// its answers arriving after a random latency) never hand out more than the bucket allows over any
// interval, and keep a steady demand served near the rate; a breaker one instance opens is honoured by
// another (its shared breakers and endpoint guards) until the cool-down ends, and lets its probe go then.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EndpointGuards } from '../../src/actors/deliverer/endpoint-guard.ts';
import { RateSlices, SLICE_LIFETIME_MS } from '../../src/actors/deliverer/rate-slices.ts';
import { SharedBreakers } from '../../src/actors/deliverer/shared-breakers.ts';
import { createLogger } from '../../src/runtime/log.ts';
import type { DeliveryLimits } from '../../src/store/delivery-limits.ts';
import { MemoryDeliveryLimits } from '../support/memory-delivery-limits.ts';

const logger = createLogger({ level: 'silent' });
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A clock, and the store's answers held until their arrival time on it. */
class Network {
  now = 0;
  private inFlight: Array<{ at: number; arrive: () => void }> = [];

  /** `limits` whose answers arrive `latency()` ms after the store computed them (at the call). */
  delayed(limits: DeliveryLimits, latency: () => number): DeliveryLimits {
    const later =
      <A extends unknown[], R>(f: (...args: A) => Promise<R>) =>
      (...args: A): Promise<R> => {
        const answer = f(...args);
        return new Promise<R>((resolve) => this.inFlight.push({ at: this.now + latency(), arrive: () => resolve(answer) }));
      };
    return {
      take: later(limits.take.bind(limits)),
      openBreaker: later(limits.openBreaker.bind(limits)),
      closeBreaker: later(limits.closeBreaker.bind(limits)),
      openBreakers: later(limits.openBreakers.bind(limits)),
      forget: later(limits.forget.bind(limits)),
    };
  }

  /** Moves the clock to `to`, each answer arriving (and handled) at its own time on the way. */
  async advance(to: number): Promise<void> {
    for (;;) {
      this.inFlight.sort((a, b) => a.at - b.at);
      const next = this.inFlight[0];
      if (next === undefined || next.at > to) break;
      this.inFlight.shift();
      this.now = Math.max(this.now, next.at);
      next.arrive();
      await settle();
    }
    this.now = Math.max(this.now, to);
  }
}

/** The most sends the bucket allows in any window: count in [t_i, t_j] ≤ rate·(t_j − t_i + slack)/1000 + burst. */
function worstExcess(sends: number[], ratePerSec: number, burst: number, slackMs: number): number {
  let worst = -Infinity;
  for (let i = 0; i < sends.length; i++)
    for (let j = i; j < sends.length; j++) {
      const allowed = (ratePerSec * (sends[j]! - sends[i]! + slackMs)) / 1000 + burst;
      worst = Math.max(worst, j - i + 1 - allowed);
    }
  return worst;
}

/** `n` instances' rate slices on one bucket in `store`, each answer arriving `latency()` ms after the ask. */
function slicesOn(net: Network, store: DeliveryLimits, n: number, latency: () => number): RateSlices[] {
  return Array.from({ length: n }, () => new RateSlices(net.delayed(store, latency), { tokens: () => {} }, logger, () => net.now, 1_000));
}

const rates = fc.oneof(fc.integer({ min: 1, max: 60 }), fc.constantFrom(0.5, 1.5, 2.5, 7.25));

describe('rate slices of several instances on one bucket', () => {
  // However the instances' takes and the store's answers interleave, the tokens handed out over any
  // interval t are at most rate·(t + SLICE_LIFETIME_MS + the spread of the latencies) + burst.
  it('never hand out more than rate·(t + slice lifetime + latency spread) + burst over any interval', async () => {
    await fc.assert(
      fc.asyncProperty(
        rates,
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 50 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 120 }), fc.nat(), fc.nat(), fc.integer({ min: 1, max: 8 })), {
          minLength: 1,
          maxLength: 400,
        }),
        async (rate, instances, maxLatencyMs, schedule) => {
          const net = new Network();
          const store = new MemoryDeliveryLimits('store', () => net.now);
          // The latency of the answer to what is asked now: somewhere in [0, maxLatencyMs].
          let latency = 0;
          const slices = slicesOn(net, store, instances, () => latency);
          const sends: number[] = [];
          // Each step: time passes, then one instance tries to send a few times.
          for (const [dt, who, pick, tries] of schedule) {
            await net.advance(net.now + dt);
            latency = pick % (maxLatencyMs + 1);
            for (let i = 0; i < tries; i++) if (slices[who % instances]!.take('ep_a', rate, net.now) === 0) sends.push(net.now);
          }
          const burst = Math.max(1, Math.floor(rate));
          expect(worstExcess(sends, rate, burst, SLICE_LIFETIME_MS + maxLatencyMs)).toBeLessThanOrEqual(1e-6);
        },
      ),
      { numRuns: 150 },
    );
  });

  // Zero latency, varied per answer: the bound of the module header, rate·(t + SLICE_LIFETIME_MS) + burst.
  it('hold the header bound exactly when answers come at once', async () => {
    await fc.assert(
      fc.asyncProperty(
        rates,
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 120 }), fc.nat(), fc.integer({ min: 1, max: 8 })), { minLength: 1, maxLength: 400 }),
        async (rate, instances, schedule) => {
          const net = new Network();
          const store = new MemoryDeliveryLimits('store', () => net.now);
          const slices = slicesOn(net, store, instances, () => 0);
          const sends: number[] = [];
          for (const [dt, who, tries] of schedule) {
            await net.advance(net.now + dt);
            for (let i = 0; i < tries; i++) if (slices[who % instances]!.take('ep_a', rate, net.now) === 0) sends.push(net.now);
            await net.advance(net.now);
          }
          expect(worstExcess(sends, rate, Math.max(1, Math.floor(rate)), SLICE_LIFETIME_MS)).toBeLessThanOrEqual(1e-6);
        },
      ),
      { numRuns: 150 },
    );
  });

  // Liveness: instances that want to send all the time get near the rate between them (the slices
  // dropped unspent are the only loss), so the limit is not a throttle below what was configured.
  it('serve a steady demand at 90% of the rate or more', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 20 }),
        async (rate, n, latency) => {
          const net = new Network();
          const store = new MemoryDeliveryLimits('store', () => net.now);
          const slices = slicesOn(net, store, n, () => latency);
          let sent = 0;
          const seconds = 10;
          // Every instance tries every 2 ms, each as long as it may.
          while (net.now < seconds * 1000) {
            for (const s of slices) while (s.take('ep_a', rate, net.now) === 0) sent++;
            await net.advance(net.now + 2);
          }
          const burst = Math.max(1, Math.floor(rate));
          expect(sent).toBeGreaterThanOrEqual(0.9 * rate * seconds);
          expect(sent).toBeLessThanOrEqual(rate * (seconds + (SLICE_LIFETIME_MS + latency) / 1000) + burst);
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('a breaker opened by another instance', () => {
  // Instance B (its shared breakers feeding its endpoint guards) reads the store at random times and
  // admits at random times: once a read after A's open saw it, B sends nothing until A's cool-down ends,
  // and its first admission after the end is the probe.
  it('is honoured until its cool-down ends, then probed', async () => {
    type Op = { kind: 'poll' } | { kind: 'admit' } | { kind: 'open' };
    const op = fc.oneof(
      { weight: 3, arbitrary: fc.constant<Op>({ kind: 'poll' }) },
      { weight: 6, arbitrary: fc.constant<Op>({ kind: 'admit' }) },
      { weight: 1, arbitrary: fc.constant<Op>({ kind: 'open' }) },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 20_000 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3_000 }), op), { minLength: 1, maxLength: 200 }),
        async (cooldownMs, schedule) => {
          let now = 0;
          const store = new MemoryDeliveryLimits('node-a', () => now);
          const a = store.as('node-a');
          const guardsB: { g: EndpointGuards | null } = { g: null };
          const b = new SharedBreakers(
            store.as('node-b'),
            {
              open: (id, remainingMs, cd) => guardsB.g!.adopt(id, remainingMs, cd, now),
              cleared: (id) => guardsB.g!.clearedElsewhere(id),
            },
            logger,
          );
          const g = new EndpointGuards({}, undefined, {
            rate: { take: () => 0, forget: () => {} },
            transition: (id, t, state) => b.transitioned(id, t, state),
          });
          guardsB.g = g;
          // Until when A's breaker is open as B has seen it (after a read that followed the open).
          let openedUntil: number | null = null;
          let seenUntil = -1;
          let probed = false;
          for (const [dt, o] of schedule) {
            now += dt;
            if (o.kind === 'open' && openedUntil === null) {
              await a.openBreaker('ep_a', cooldownMs);
              openedUntil = now + cooldownMs;
            } else if (o.kind === 'poll') {
              await b.poll();
              if (openedUntil !== null) seenUntil = openedUntil;
            } else if (o.kind === 'admit' && !probed) {
              const admitted = g.admit('ep_a', undefined, now);
              if (now < seenUntil) expect(admitted).toMatchObject({ go: false, why: 'breaker' });
              else if (seenUntil >= 0) {
                // The cool-down is over: this admission is B's probe.
                expect(admitted).toEqual({ go: true });
                expect(g.state('ep_a')).toBe('half-open');
                probed = true;
              }
            }
          }
          await b.stop();
        },
      ),
      { numRuns: 200 },
    );
  });
});
