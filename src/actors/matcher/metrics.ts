/**
 * The Matcher's metrics, created once per prom-client registry (a restarted behaviour finds the same
 * instruments again). Labels are closed sets.
 *
 * - `matcher_subscriptions`: subscriptions in the in-memory index.
 * - `matcher_logs_total`: logs examined (retractions not counted).
 * - `matcher_jobs_enqueued_total{type}`: jobs written to the outbox, by `log.created` / `log.removed`
 *   (both series exist from the start, at 0, so the first job of each type is seen by rate()).
 * - `matcher_block_duration_seconds`: from receiving a block to its jobs being in the outbox.
 * - `matcher_jobs_deferred_total{reason}`: `log.created` jobs written to wait in the store instead of the
 *   outbox, by what they wait for (DEFER_REASONS: more confirmations, the chain's `safe` or `finalized`
 *   block; a job waiting for both counts as its finality).
 * - `matcher_decode_failures_total`: candidate logs that did not decode under a subscription's abi
 *   (counted once per log and event, however many subscriptions share it); they are delivered with
 *   `event: null`.
 * - `matcher_filtered_total`: (log, subscription) pairs the topic index let through and the
 *   subscription's filter turned down.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { JOB_TYPES } from '../../store/outbox/job.ts';

export interface MatcherMetrics {
  subscriptions: Gauge;
  logs: Counter;
  jobs: Counter<'type'>;
  blockDuration: Histogram;
  deferred: Counter<'reason'>;
  decodeFailures: Counter;
  filtered: Counter;
}

export const DEFER_REASONS = ['confirmations', 'safe', 'finalized'] as const;

const byRegistry = new WeakMap<Registry, MatcherMetrics>();

export function getMatcherMetrics(registry: Registry): MatcherMetrics {
  const known = byRegistry.get(registry);
  if (known) return known;
  const registers = [registry];
  const metrics: MatcherMetrics = {
    subscriptions: new Gauge({ name: 'matcher_subscriptions', help: 'Subscriptions in the Matcher index', registers }),
    logs: new Counter({ name: 'matcher_logs_total', help: 'Logs examined by the Matcher', registers }),
    jobs: new Counter({
      name: 'matcher_jobs_enqueued_total',
      help: 'Delivery jobs written to the outbox, by type',
      labelNames: ['type'],
      registers,
    }),
    blockDuration: new Histogram({
      name: 'matcher_block_duration_seconds',
      help: 'From receiving a block to its jobs being in the outbox',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    deferred: new Counter({
      name: 'matcher_jobs_deferred_total',
      help: 'log.created jobs written to wait in the store (confirmations, or the safe or finalized block), by reason',
      labelNames: ['reason'],
      registers,
    }),
    decodeFailures: new Counter({
      name: 'matcher_decode_failures_total',
      help: "Candidate logs that did not decode under a subscription's abi (delivered with event null)",
      registers,
    }),
    filtered: new Counter({
      name: 'matcher_filtered_total',
      help: "(log, subscription) pairs turned down by the subscription's filter",
      registers,
    }),
  };
  for (const type of JOB_TYPES) metrics.jobs.inc({ type }, 0);
  for (const reason of DEFER_REASONS) metrics.deferred.inc({ reason }, 0);
  byRegistry.set(registry, metrics);
  return metrics;
}
