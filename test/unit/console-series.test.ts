// The console's server-side reading of the metrics registry: the time series it keeps for 15 minutes
// (rates from counters, quantiles from histogram buckets, aligned columns, a bounded window), the
// restart watch (latest reason, storms), and the bucket quantile they share.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ActorWatch, STORM_RESTARTS, STORM_WINDOW_MS } from '../../src/console/actor-watch.ts';
import { quantileOf } from '../../src/console/metric-read.ts';
import { ConsoleSeries } from '../../src/console/series.ts';

function nodeRegistry() {
  const registry = new Registry();
  const registers = [registry];
  return {
    registry,
    deliveries: new Counter({ name: 'webhook_deliveries_total', help: 'h', labelNames: ['status'], registers }),
    queue: new Gauge({ name: 'webhook_queue_depth', help: 'h', registers }),
    latency: new Histogram({ name: 'webhook_event_to_delivery_seconds', help: 'h', buckets: [0.1, 1, 10], registers }),
    head: new Gauge({ name: 'chain_height', help: 'h', labelNames: ['chain'], registers }),
  };
}

const restartSample = (actor: string, reason: string, value: number) => ({ labels: { actor, reason }, value });

describe('ConsoleSeries', () => {
  it('turns counters into rates per second over the step and histograms into the step’s quantiles', async () => {
    const m = nodeRegistry();
    let now = 1_000_000;
    const series = new ConsoleSeries({ registry: m.registry, now: () => now });
    m.deliveries.inc({ status: 'success' }, 10);
    await series.sample();
    now += 2_000;
    m.deliveries.inc({ status: 'success' }, 8);
    m.deliveries.inc({ status: 'http_error' }, 2);
    for (const seconds of [0.05, 0.05, 0.5, 5]) m.latency.observe(seconds);
    m.queue.set(7);
    m.head.set({ chain: 'dev' }, 42);
    await series.sample();
    const answer = series.answer();
    expect(answer.t).toEqual([1_000_000, 1_002_000]);
    expect(answer.series['webhooks.delivered']).toEqual([null, 4]);
    expect(answer.series['webhooks.failed']).toEqual([null, 1]);
    expect(answer.series['webhooks.queue']).toEqual([0, 7]);
    expect(answer.series['webhooks.latencyP50']).toEqual([null, 0.1]);
    expect(answer.series['webhooks.latencyP95']).toEqual([null, 10]);
    expect(answer.series['chain.dev.head']).toEqual([null, 42]);
  });

  it('keeps windowMs / stepMs samples, every column as long as the times', async () => {
    const m = nodeRegistry();
    let now = 0;
    const series = new ConsoleSeries({ registry: m.registry, stepMs: 1_000, windowMs: 5_000, now: () => now });
    for (let i = 0; i < 12; i++) {
      m.queue.set(i);
      if (i === 8) m.head.set({ chain: 'late' }, 1);
      await series.sample();
      now += 1_000;
    }
    const answer = series.answer();
    expect(answer.t).toEqual([7_000, 8_000, 9_000, 10_000, 11_000]);
    expect(answer.series['webhooks.queue']).toEqual([7, 8, 9, 10, 11]);
    expect(answer.series['chain.late.head']).toEqual([null, 1, 1, 1, 1]);
    for (const column of Object.values(answer.series)) expect(column).toHaveLength(5);
  });
});

describe('ActorWatch', () => {
  it('knows no reason for restarts counted before it first looked, then the latest that grew', () => {
    const watch = new ActorWatch();
    watch.observe([restartSample('/a', 'panic', 4), restartSample('/a', 'manual', 0)], 0);
    expect(watch.view('/a')).toEqual({ lastReason: null, lastAt: null, storming: false });
    watch.observe([restartSample('/a', 'panic', 4), restartSample('/a', 'manual', 1)], 1_000);
    expect(watch.view('/a')).toMatchObject({ lastReason: 'manual', lastAt: 1_000 });
    watch.observe([restartSample('/a', 'panic', 5), restartSample('/a', 'manual', 1)], 2_000);
    expect(watch.view('/a')).toMatchObject({ lastReason: 'panic', lastAt: 2_000 });
    expect(watch.view('/unknown')).toEqual({ lastReason: null, lastAt: null, storming: false });
  });

  it(`storms at ${STORM_RESTARTS} restarts other than manual within the window, and calms once they age out`, () => {
    const watch = new ActorWatch();
    watch.observe([restartSample('/a', 'panic', 0), restartSample('/a', 'manual', 0)], 0);
    watch.observe([restartSample('/a', 'panic', 0), restartSample('/a', 'manual', 10)], 1_000);
    expect(watch.view('/a').storming).toBe(false);
    watch.observe([restartSample('/a', 'panic', STORM_RESTARTS - 1), restartSample('/a', 'manual', 10)], 2_000);
    expect(watch.view('/a').storming).toBe(false);
    watch.observe([restartSample('/a', 'panic', STORM_RESTARTS), restartSample('/a', 'manual', 10)], 3_000);
    expect(watch.view('/a').storming).toBe(true);
    watch.observe([restartSample('/a', 'panic', STORM_RESTARTS), restartSample('/a', 'manual', 10)], 2_000 + STORM_WINDOW_MS);
    expect(watch.view('/a').storming).toBe(false);
  });
});

describe('quantileOf', () => {
  it('is the upper bound of the bucket holding the q-th observation; null without any; the last bound for +Inf', () => {
    const buckets = new Map([
      [1, 2],
      [5, 9],
      [Infinity, 10],
    ]);
    expect(quantileOf(buckets, 0.2)).toBe(1);
    expect(quantileOf(buckets, 0.5)).toBe(5);
    expect(quantileOf(buckets, 0.99)).toBe(5);
    expect(
      quantileOf(
        new Map([
          [1, 0],
          [Infinity, 0],
        ]),
        0.5,
      ),
    ).toBeNull();
  });
});
