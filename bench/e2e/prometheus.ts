/**
 * Reading the node's /metrics text: one sample (`sample`), and a histogram's cumulative buckets for one
 * label value (`histogram`), whose difference between two scrapes (`subtract`) gives the observations
 * made in between. `quantile` is Prometheus' histogram_quantile: the bucket holding the rank, linear
 * interpolation inside it (from 0 for the first bucket), the largest finite bound when the rank falls
 * in +Inf; null without observations.
 */

/** Cumulative counts by upper bound (`le`), ascending, +Inf last. */
export type Buckets = Array<[le: number, count: number]>;

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function* samples(text: string): Generator<{ name: string; labels: Map<string, string>; value: number }> {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) continue;
    yield { name: m[1]!, labels: new Map([...(m[2] ?? '').matchAll(LABEL)].map((l) => [l[1]!, l[2]!])), value: Number(m[3]) };
  }
}

const matches = (labels: Map<string, string>, want: Record<string, string>) => Object.entries(want).every(([k, v]) => labels.get(k) === v);

/** The first sample `name` whose labels include `labels`; undefined when absent. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const s of samples(text)) if (s.name === name && matches(s.labels, labels)) return s.value;
  return undefined;
}

/** Every value a label takes among the samples of `name` (e.g. the stages of a histogram). */
export function labelValues(text: string, name: string, label: string): string[] {
  const out = new Set<string>();
  for (const s of samples(text)) if (s.name === name && s.labels.has(label)) out.add(s.labels.get(label)!);
  return [...out];
}

/** The buckets of histogram `name` (summed over series that differ in other labels); empty when absent. */
export function histogram(text: string, name: string, labels: Record<string, string> = {}): Buckets {
  const byLe = new Map<number, number>();
  for (const s of samples(text)) {
    if (s.name !== `${name}_bucket` || !matches(s.labels, labels)) continue;
    const le = s.labels.get('le') === '+Inf' ? Infinity : Number(s.labels.get('le'));
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  return [...byLe].sort((a, b) => a[0] - b[0]);
}

/** after − before, bucket by bucket (a bucket missing before counts 0). */
export function subtract(after: Buckets, before: Buckets): Buckets {
  const old = new Map(before);
  return after.map(([le, count]) => [le, count - (old.get(le) ?? 0)]);
}

export function quantile(q: number, buckets: Buckets): number | null {
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return lower;
      return count === below ? le : lower + (le - lower) * ((rank - below) / (count - below));
    }
    lower = le;
    below = count;
  }
  return lower;
}
