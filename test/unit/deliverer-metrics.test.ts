// Deliverer metrics: exact names, one set per registry, bounded labels, scrape-time queue gauges.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { DELIVERER_METRIC_NAMES, DELIVERY_STATUSES, delivererMetrics, deliveryStatus } from '../../src/actors/deliverer/metrics.ts';

describe('registration', () => {
  it('registers exactly the catalogued names', async () => {
    const registry = new Registry();
    delivererMetrics(registry);
    const names = (await registry.getMetricsAsJSON()).map((m) => m.name).sort();
    // Plus the pipeline's stage histogram, whose `sent` and `answered` stages the Deliverer observes.
    expect(names).toEqual([...DELIVERER_METRIC_NAMES, 'pipeline_stage_seconds'].sort());
    expect(DELIVERER_METRIC_NAMES).toEqual([
      'webhook_deliveries_total',
      'webhook_delivery_duration_seconds',
      'webhook_event_to_delivery_seconds',
      'webhook_queue_depth',
      'webhook_dead_letters',
      'circuit_breaker_state',
      'circuit_breaker_opens_total',
      'deliverer_secret_decrypt_failures_total',
    ]);
  });

  it('is memoized per registry: a second call neither throws nor duplicates', () => {
    const a = new Registry();
    const b = new Registry();
    expect(delivererMetrics(a)).toBe(delivererMetrics(a));
    expect(delivererMetrics(a)).not.toBe(delivererMetrics(b));
  });

  it('every status series exists from the start, so rate() has a baseline', async () => {
    const registry = new Registry();
    delivererMetrics(registry);
    const text = await registry.metrics();
    for (const status of DELIVERY_STATUSES) expect(text).toContain(`webhook_deliveries_total{status="${status}"} 0`);
  });
});

describe('values', () => {
  it('queue gauges read their source at scrape time', async () => {
    const registry = new Registry();
    const m = delivererMetrics(registry);
    let depth = 3;
    m.observeQueue({ depth: () => depth, deadLetterCount: () => 7 });
    expect(await registry.metrics()).toMatch(/webhook_queue_depth 3\n[\s\S]*webhook_dead_letters 7/);
    depth = 11;
    expect(await registry.metrics()).toContain('webhook_queue_depth 11');
  });

  it('breaker state is labelled by endpoint id', async () => {
    const registry = new Registry();
    const m = delivererMetrics(registry);
    m.breakerState.set({ endpoint: 'ep_1' }, 2);
    m.breakerOpens.inc();
    const text = await registry.metrics();
    expect(text).toContain('circuit_breaker_state{endpoint="ep_1"} 2');
    expect(text).toContain('circuit_breaker_opens_total 1');
  });
});

describe('deliveryStatus', () => {
  it('maps every outcome into the closed set', () => {
    expect(deliveryStatus({ status: 204 })).toBe('success');
    expect(deliveryStatus({ status: 301 })).toBe('redirect');
    expect(deliveryStatus({ status: 404 })).toBe('client_error');
    expect(deliveryStatus({ status: 410 })).toBe('client_error');
    expect(deliveryStatus({ status: 429 })).toBe('rate_limited');
    expect(deliveryStatus({ status: 408 })).toBe('server_error');
    expect(deliveryStatus({ status: 503 })).toBe('server_error');
    expect(deliveryStatus({ status: null, error: { kind: 'timeout', message: '' } })).toBe('timeout');
    expect(deliveryStatus({ status: null, error: { kind: 'network', message: '' } })).toBe('network_error');
    expect(deliveryStatus({ status: null, error: { kind: 'refused', message: '' } })).toBe('refused');
    for (let s = 100; s < 600; s++) expect(DELIVERY_STATUSES).toContain(deliveryStatus({ status: s }));
  });
});
