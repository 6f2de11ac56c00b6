/**
 * The Deliverer's Prometheus metrics. Names are fixed (alerts, dashboards and runbooks use them):
 *
 *   webhook_deliveries_total{status}     counter   one per attempt; status ∈ DELIVERY_STATUSES
 *   webhook_delivery_duration_seconds    histogram HTTP attempt duration
 *   webhook_event_to_delivery_seconds    histogram from the event being seen to its 2xx (retries included)
 *   webhook_queue_depth                  gauge     jobs waiting in the outbox (read at scrape time)
 *   webhook_dead_letters                 gauge     jobs parked as dead letters (read at scrape time)
 *   circuit_breaker_state{endpoint}      gauge     0 closed, 1 half-open, 2 open; endpoint = endpoint id
 *   circuit_breaker_opens_total          counter   transitions to open
 *   deliverer_secret_decrypt_failures_total counter endpoint secrets that did not open (wrong master key, tampered record)
 *   pipeline_stage_seconds{stage}        histogram the `sent` and `answered` stages (src/pipeline-stages.ts)
 *
 * Created once per registry (memoized), so a restarted Deliverer, or several in one process, share them.
 * Labels are bounded: `status` is a closed set, `endpoint` is an id, never a URL.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { pipelineStages, type PipelineStages } from '../../pipeline-stages.ts';
import type { AttemptOutcome } from './retry.ts';

export const DELIVERER_METRIC_NAMES = [
  'webhook_deliveries_total',
  'webhook_delivery_duration_seconds',
  'webhook_event_to_delivery_seconds',
  'webhook_queue_depth',
  'webhook_dead_letters',
  'circuit_breaker_state',
  'circuit_breaker_opens_total',
  'deliverer_secret_decrypt_failures_total',
] as const;

export const DELIVERY_STATUSES = [
  'success', // 2xx
  'redirect', // 3xx, not followed
  'client_error', // 4xx other than 408 and 429
  'rate_limited', // 429
  'server_error', // 5xx, 408 and anything else unexpected
  'timeout', // connect, headers, body or total deadline
  'network_error', // refused connection, reset, DNS failure
  'refused', // target refused by the SSRF policy
] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export function deliveryStatus(o: AttemptOutcome): DeliveryStatus {
  if (o.error?.kind === 'refused') return 'refused';
  if (o.status === null) return o.error?.kind === 'timeout' ? 'timeout' : 'network_error';
  if (o.status >= 200 && o.status < 300) return 'success';
  if (o.status >= 300 && o.status < 400) return 'redirect';
  if (o.status === 429) return 'rate_limited';
  if (o.status >= 400 && o.status < 500 && o.status !== 408) return 'client_error';
  return 'server_error';
}

export interface QueueSource {
  depth(): number;
  deadLetterCount(): number;
}

export interface DelivererMetrics {
  readonly deliveries: Counter<'status'>;
  readonly deliveryDuration: Histogram;
  readonly eventToDelivery: Histogram;
  readonly breakerState: Gauge<'endpoint'>;
  readonly breakerOpens: Counter;
  readonly secretDecryptFailures: Counter;
  /** Where a first attempt's time went since its block was seen (`sent`, `answered`). */
  readonly stages: PipelineStages;
  /** The outbox whose depth and dead letters the gauges report; null reports nothing. */
  observeQueue(source: QueueSource | null): void;
}

const byRegistry = new WeakMap<Registry, DelivererMetrics>();

export function delivererMetrics(registry: Registry): DelivererMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  let queue: QueueSource | null = null;
  const registers = [registry];
  const deliveries = new Counter({
    name: 'webhook_deliveries_total',
    help: 'Webhook delivery attempts by outcome',
    labelNames: ['status'] as const,
    registers,
  });
  for (const status of DELIVERY_STATUSES) deliveries.inc({ status }, 0);
  const metrics: DelivererMetrics = {
    deliveries,
    deliveryDuration: new Histogram({
      name: 'webhook_delivery_duration_seconds',
      help: 'Duration of one webhook HTTP attempt',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    eventToDelivery: new Histogram({
      name: 'webhook_event_to_delivery_seconds',
      help: 'Time from an event being seen on chain to its successful delivery, retries included',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 36_000, 86_400],
      registers,
    }),
    breakerState: new Gauge({
      name: 'circuit_breaker_state',
      help: 'Circuit breaker state per endpoint id: 0 closed, 1 half-open, 2 open',
      labelNames: ['endpoint'] as const,
      registers,
    }),
    breakerOpens: new Counter({
      name: 'circuit_breaker_opens_total',
      help: 'Circuit breaker transitions to open',
      registers,
    }),
    secretDecryptFailures: new Counter({
      name: 'deliverer_secret_decrypt_failures_total',
      help: 'Endpoint secrets that did not open under the master key (wrong key or tampered record); the webhook was not sent',
      registers,
    }),
    stages: pipelineStages(registry),
    observeQueue(source) {
      queue = source;
    },
  };
  new Gauge({
    name: 'webhook_queue_depth',
    help: 'Webhook jobs waiting in the outbox (pending and retrying)',
    registers,
    collect() {
      if (queue) this.set(queue.depth());
    },
  });
  new Gauge({
    name: 'webhook_dead_letters',
    help: 'Webhook jobs parked as dead letters',
    registers,
    collect() {
      if (queue) this.set(queue.deadLetterCount());
    },
  });
  byRegistry.set(registry, metrics);
  return metrics;
}
