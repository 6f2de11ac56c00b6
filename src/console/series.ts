/**
 * The console's time series: what Prometheus would give over the last 15 minutes, kept in memory by the
 * node itself so the console works where no Prometheus runs. `GET /admin/console/series` serves them.
 *
 * - Sampled every `stepMs` (default 2,000) from the node's registry, kept for `windowMs` (default
 *   900,000): 450 samples per series, older ones dropped. A sample that fails to read is skipped.
 * - Series (numbers, or null where there is nothing to say):
 *     webhooks.delivered, webhooks.failed   attempts per second over the step (webhook_deliveries_total
 *                                           by status: success, every other status)
 *     webhooks.queue                        webhook_queue_depth
 *     webhooks.deadLetters                  webhook_dead_letters
 *     webhooks.latencyP50, .latencyP95      event-to-delivery seconds of the webhooks delivered during the
 *                                           step (webhook_event_to_delivery_seconds' buckets), null when none
 *     chain.<name>.head, .processed, .lag   chain_height, chain_processed_height, chain_lag_blocks
 * - Bound: 450 × (6 + 3 × chains) numbers plus 450 times; with 10 chains 16,650 numbers (~130 KB).
 * - The answer is column-wise, as charts take it: `{ stepMs, windowMs, t: [ms], series: { name: [v] } }`,
 *   every column as long as `t` (a chain first seen later is null before).
 * - Each sample also feeds the ActorWatch (actor-watch.ts), so restart reasons are seen between
 *   snapshots too.
 */
import type { Registry } from 'prom-client';
import { ActorWatch } from './actor-watch.ts';
import { bucketsOf, quantileOf, readMetric, sumOf, type MetricSample } from './metric-read.ts';

export const DEFAULT_SERIES_STEP_MS = 2_000;
export const DEFAULT_SERIES_WINDOW_MS = 900_000;

export interface ConsoleSeriesOptions {
  registry: Registry;
  /** Default: a watch of its own (`watch`), for the snapshot to share. */
  watch?: ActorWatch;
  stepMs?: number;
  windowMs?: number;
  now?: () => number;
}

export interface SeriesAnswer {
  stepMs: number;
  windowMs: number;
  t: number[];
  series: Record<string, Array<number | null>>;
}

const CHAIN_GAUGES = [
  ['head', 'chain_height'],
  ['processed', 'chain_processed_height'],
  ['lag', 'chain_lag_blocks'],
] as const;

export class ConsoleSeries {
  readonly stepMs: number;
  readonly windowMs: number;
  readonly watch: ActorWatch;
  private readonly capacity: number;
  private readonly times: number[] = [];
  private readonly columns = new Map<string, Array<number | null>>();
  private previous: { at: number; delivered: number; failed: number; latency: Map<number, number> } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(private readonly options: ConsoleSeriesOptions) {
    this.stepMs = options.stepMs ?? DEFAULT_SERIES_STEP_MS;
    this.windowMs = options.windowMs ?? DEFAULT_SERIES_WINDOW_MS;
    this.watch = options.watch ?? new ActorWatch();
    this.capacity = Math.max(1, Math.floor(this.windowMs / this.stepMs));
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.stepMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  answer(): SeriesAnswer {
    return {
      stepMs: this.stepMs,
      windowMs: this.windowMs,
      t: [...this.times],
      series: Object.fromEntries([...this.columns].map(([k, v]) => [k, [...v]])),
    };
  }

  /** Takes one sample now (the timer's work; tests call it directly). */
  async sample(): Promise<void> {
    const { registry } = this.options;
    const at = (this.options.now ?? Date.now)();
    const [deliveries, queue, dead, latency, restarts, ...chainGauges] = await Promise.all([
      readMetric(registry, 'webhook_deliveries_total'),
      readMetric(registry, 'webhook_queue_depth'),
      readMetric(registry, 'webhook_dead_letters'),
      readMetric(registry, 'webhook_event_to_delivery_seconds'),
      readMetric(registry, 'actor_restarts_total'),
      ...CHAIN_GAUGES.map(([, metric]) => readMetric(registry, metric)),
    ]);
    this.watch.observe(restarts, at);
    const delivered = sumOf(deliveries, (l) => l.status === 'success');
    const failed = sumOf(deliveries, (l) => l.status !== 'success');
    const buckets = bucketsOf(latency);
    const prev = this.previous;
    const perSecond = (now: number, before: number | undefined) =>
      prev === null || before === undefined ? null : Math.max(0, now - before) / ((at - prev.at) / 1000);
    const row: Record<string, number | null> = {
      'webhooks.delivered': perSecond(delivered, prev?.delivered),
      'webhooks.failed': perSecond(failed, prev?.failed),
      'webhooks.queue': queue.length > 0 ? sumOf(queue) : null,
      'webhooks.deadLetters': dead.length > 0 ? sumOf(dead) : null,
      'webhooks.latencyP50': prev === null ? null : quantileOf(difference(buckets, prev.latency), 0.5),
      'webhooks.latencyP95': prev === null ? null : quantileOf(difference(buckets, prev.latency), 0.95),
    };
    CHAIN_GAUGES.forEach(([part], i) => {
      for (const s of chainGauges[i] as MetricSample[]) row[`chain.${String(s.labels.chain)}.${part}`] = s.value;
    });
    this.previous = { at, delivered, failed, latency: buckets };
    this.push(at, row);
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      await this.sample();
    } catch {
      // A registry that cannot be read now leaves a gap in the charts; the next step tries again.
    } finally {
      this.busy = false;
    }
  }

  private push(at: number, row: Record<string, number | null>): void {
    for (const name of Object.keys(row)) {
      if (!this.columns.has(name)) this.columns.set(name, new Array<number | null>(this.times.length).fill(null));
    }
    this.times.push(at);
    for (const [name, column] of this.columns) column.push(row[name] ?? null);
    const excess = this.times.length - this.capacity;
    if (excess > 0) {
      this.times.splice(0, excess);
      for (const column of this.columns.values()) column.splice(0, excess);
    }
  }
}

function difference(now: ReadonlyMap<number, number>, before: ReadonlyMap<number, number>): Map<number, number> {
  return new Map([...now].map(([le, n]) => [le, Math.max(0, n - (before.get(le) ?? 0))]));
}
