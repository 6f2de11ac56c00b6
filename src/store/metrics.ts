/**
 * The store's Prometheus metrics, one set per registry whatever the engine (LevelDB or PostgreSQL):
 *
 *   store_up                                gauge     1 while the store answers: LevelDB while open; PostgreSQL
 *                                                     0 from a transient failure to the next success
 *   store_operation_duration_seconds{op}    histogram one store operation, its retries included
 *                                                     (op: `kv.get`, `kv.batch`, `outbox.due`, `migrate`, ...)
 *   store_errors_total{op,kind}             counter   failed attempts; kind ∈ STORE_ERROR_KINDS
 *
 * Labels are bounded: `op` names a code path, never a key or an id.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export const STORE_METRIC_NAMES = ['store_up', 'store_operation_duration_seconds', 'store_errors_total'] as const;

export const STORE_ERROR_KINDS = [
  'unavailable', // connection refused, reset or lost; the server shutting down or starting; serialization failure, deadlock
  'timeout', // statement timeout, or no connection within the connect timeout
  'query', // an error retrying does not cure: a constraint, a syntax error, a missing table or column
] as const;
export type StoreErrorKind = (typeof STORE_ERROR_KINDS)[number];

export interface StoreMetrics {
  up: Gauge;
  duration: Histogram<'op'>;
  errors: Counter<'op' | 'kind'>;
}

const byRegistry = new WeakMap<Registry, StoreMetrics>();

export function storeMetrics(registry: Registry): StoreMetrics {
  const known = byRegistry.get(registry);
  if (known) return known;
  const registers = [registry];
  const metrics: StoreMetrics = {
    up: new Gauge({
      name: 'store_up',
      help: '1 while the store answers (PostgreSQL: 0 from a transient failure to the next success)',
      registers,
    }),
    duration: new Histogram({
      name: 'store_operation_duration_seconds',
      help: 'Duration of one store operation, its retries included',
      labelNames: ['op'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    errors: new Counter({
      name: 'store_errors_total',
      help: 'Failed store operation attempts, by kind (unavailable, timeout: retried; query: not)',
      labelNames: ['op', 'kind'],
      registers,
    }),
  };
  byRegistry.set(registry, metrics);
  return metrics;
}
