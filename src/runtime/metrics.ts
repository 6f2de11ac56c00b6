/**
 * The kernel's Prometheus metrics. Names are fixed (alerts, dashboards and runbooks use them):
 *   actor_mailbox_size{actor}, actor_mailbox_capacity{actor}, actor_messages_total{actor,outcome},
 *   actor_message_duration_seconds{actor}, actor_panics_total{actor}, actor_restarts_total{actor,reason},
 *   actor_dead_letters_total{actor,reason}, actor_up{actor}, actor_manually_stopped{actor}.
 * They are collected at scrape time from each actor's plain counters (`ActorStats`), so the hot path
 * never calls the registry. `outcome` is `ok` or `panic`.
 *
 * `registerProcessMetrics` adds prom-client's Node process metrics (process_*, nodejs_*) except
 * `nodejs_active_{handles,requests,resources}_total`: gauges named like counters, which fail
 * `promtool check metrics`; `sum(nodejs_active_handles)` and the others give the same totals.
 */
import { collectDefaultMetrics, type Registry } from 'prom-client';
import { DURATION_BUCKETS, type ActorStats } from './stats.ts';
import { DEAD_LETTER_REASONS, RESTART_REASONS } from './types.ts';

export interface MeasuredActor {
  readonly path: string;
  readonly stats: ActorStats;
  readonly mailboxSize: number | null;
  readonly mailboxCapacity: number | null;
  readonly up: boolean;
  /** Stopped by a manual stop of its own or of a supervisor above it (an operator's, not a failure). */
  readonly manuallyStopped: boolean;
}

type MetricType = 'counter' | 'gauge' | 'histogram';
interface Sample {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** A metric whose samples are computed when Prometheus scrapes (prom-client's registry interface). */
class CollectedMetric {
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
    private readonly collect: () => Sample[],
  ) {}

  async get(): Promise<{ name: string; help: string; type: MetricType; values: Sample[]; aggregator: string }> {
    return { name: this.name, help: this.help, type: this.type, values: this.collect(), aggregator: this.aggregator };
  }

  reset(): void {}
}

export const KERNEL_METRIC_NAMES = [
  'actor_mailbox_size',
  'actor_mailbox_capacity',
  'actor_messages_total',
  'actor_message_duration_seconds',
  'actor_panics_total',
  'actor_restarts_total',
  'actor_dead_letters_total',
  'actor_up',
  'actor_manually_stopped',
] as const;

const MISNAMED_PROCESS_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function registerProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of MISNAMED_PROCESS_METRICS) registry.removeSingleMetric(name);
}

export function registerKernelMetrics(registry: Registry, actors: () => Iterable<MeasuredActor>): void {
  const per = (fn: (a: MeasuredActor) => Sample[]) => () => {
    const out: Sample[] = [];
    for (const a of actors()) out.push(...fn(a));
    return out;
  };
  const metrics = [
    new CollectedMetric(
      'actor_mailbox_size',
      'Messages waiting in the actor mailbox',
      'gauge',
      per((a) => (a.mailboxSize === null ? [] : [{ value: a.mailboxSize, labels: { actor: a.path } }])),
    ),
    new CollectedMetric(
      'actor_mailbox_capacity',
      'Capacity of the actor mailbox',
      'gauge',
      per((a) => (a.mailboxCapacity === null ? [] : [{ value: a.mailboxCapacity, labels: { actor: a.path } }])),
    ),
    new CollectedMetric(
      'actor_messages_total',
      'Messages handled, by outcome (ok or panic)',
      'counter',
      per((a) =>
        a.mailboxCapacity === null
          ? []
          : [
              { value: a.stats.handled, labels: { actor: a.path, outcome: 'ok' } },
              { value: a.stats.panicked, labels: { actor: a.path, outcome: 'panic' } },
            ],
      ),
    ),
    new CollectedMetric(
      'actor_message_duration_seconds',
      'Time spent handling one message',
      'histogram',
      per((a) => (a.mailboxCapacity === null ? [] : histogramSamples(a))),
    ),
    new CollectedMetric(
      'actor_panics_total',
      'Handlers that threw or rejected',
      'counter',
      per((a) => (a.mailboxCapacity === null ? [] : [{ value: a.stats.panicked, labels: { actor: a.path } }])),
    ),
    new CollectedMetric(
      'actor_restarts_total',
      'Restarts of the actor, by reason',
      'counter',
      per((a) => RESTART_REASONS.map((reason) => ({ value: a.stats.restarts[reason], labels: { actor: a.path, reason } }))),
    ),
    new CollectedMetric(
      'actor_dead_letters_total',
      'Messages that could not be delivered, by reason',
      'counter',
      per((a) =>
        a.mailboxCapacity === null
          ? []
          : DEAD_LETTER_REASONS.map((reason) => ({ value: a.stats.deadLetters[reason], labels: { actor: a.path, reason } })),
      ),
    ),
    new CollectedMetric(
      'actor_up',
      '1 while the actor is running',
      'gauge',
      per((a) => [{ value: a.up ? 1 : 0, labels: { actor: a.path } }]),
    ),
    new CollectedMetric(
      'actor_manually_stopped',
      "1 while the actor is stopped by a manual stop (its own or a supervisor's above it)",
      'gauge',
      per((a) => [{ value: a.manuallyStopped ? 1 : 0, labels: { actor: a.path } }]),
    ),
  ];
  for (const m of metrics) registry.registerMetric(m as never);
}

function histogramSamples(a: MeasuredActor): Sample[] {
  const out: Sample[] = [];
  let cumulative = 0;
  const b = a.stats.durationBuckets;
  for (let i = 0; i < DURATION_BUCKETS.length; i++) {
    cumulative += b[i]!;
    out.push({
      metricName: 'actor_message_duration_seconds_bucket',
      value: cumulative,
      labels: { actor: a.path, le: DURATION_BUCKETS[i]! },
    });
  }
  cumulative += b[DURATION_BUCKETS.length]!;
  out.push({ metricName: 'actor_message_duration_seconds_bucket', value: cumulative, labels: { actor: a.path, le: '+Inf' } });
  out.push({ metricName: 'actor_message_duration_seconds_sum', value: a.stats.durationSum, labels: { actor: a.path } });
  out.push({ metricName: 'actor_message_duration_seconds_count', value: cumulative, labels: { actor: a.path } });
  return out;
}
