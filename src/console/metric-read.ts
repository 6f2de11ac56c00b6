/**
 * Reading the node's own metrics registry (prom-client) as plain samples, for the console's snapshot and
 * time series: the same numbers /metrics gives, without the text format in between.
 *
 * - `readMetric(registry, name)` is every sample of one metric (a histogram's buckets carry `le` and a
 *   `metricName` ending in `_bucket`, `_sum`, `_count`); an absent metric reads as no sample.
 * - `sumOf` adds the samples whose labels a predicate keeps.
 * - `quantileOf(buckets, q)` is the upper bound of the bucket holding the q-th observation among
 *   cumulative bucket counts (Prometheus' histogram_quantile without the interpolation): null without
 *   observations, the last finite bound when it falls in `+Inf`.
 */
import type { Registry } from 'prom-client';

export interface MetricSample {
  labels: Record<string, string | number | undefined>;
  value: number;
  metricName?: string;
}

export async function readMetric(registry: Registry, name: string): Promise<MetricSample[]> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return [];
  return (await metric.get()).values;
}

export function sumOf(samples: readonly MetricSample[], keep: (labels: MetricSample['labels']) => boolean = () => true): number {
  let total = 0;
  for (const s of samples) if (keep(s.labels)) total += s.value;
  return total;
}

/** Cumulative bucket counts of one histogram, keyed by their upper bound (`+Inf` as Infinity). */
export function bucketsOf(
  samples: readonly MetricSample[],
  keep: (labels: MetricSample['labels']) => boolean = () => true,
): Map<number, number> {
  const buckets = new Map<number, number>();
  for (const s of samples) {
    if (!s.metricName?.endsWith('_bucket') || !keep(s.labels)) continue;
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    buckets.set(le, (buckets.get(le) ?? 0) + s.value);
  }
  return buckets;
}

export function quantileOf(buckets: ReadonlyMap<number, number>, q: number): number | null {
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const total = buckets.get(Infinity) ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lastFinite: number | null = null;
  for (const le of bounds) {
    if (le !== Infinity) lastFinite = le;
    if ((buckets.get(le) ?? 0) >= rank) return le === Infinity ? lastFinite : le;
  }
  return lastFinite;
}
