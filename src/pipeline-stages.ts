/**
 * Where an event's time goes between its block's arrival and the receiver's answer:
 * `pipeline_stage_seconds{stage}`, a histogram of the seconds from the moment the node saw the block's
 * head (`seenAt`, the listener's clock) to the moment the event reached each stage. Stages are
 * cumulative, in pipeline order, so the gap between two stages' quantiles is what the step between
 * them costs:
 *
 * - `fetched`: the ChainListener has the block's logs and hands the block to the Matcher (per block).
 * - `matched`: the Matcher has matched the block's logs against the subscriptions (per block with a match).
 * - `committed`: the block's jobs are in the outbox, durable (per block with a match).
 * - `sent`: the Deliverer hands a webhook to the HTTP client (per webhook, first attempt only).
 * - `answered`: the receiver's answer came back (per webhook, first attempt only, any status).
 *
 * Retries are left out of the two webhook stages: their delay is the retry schedule's, not the
 * pipeline's, and would bury the live latency an operator looks for here (`webhook_event_to_delivery_seconds`
 * covers every attempt). So are the webhooks a backfill enqueued (a job's `backfill`): no head was
 * seen for them (their time starts when their page was read), and a backfill's steady stream would
 * bury the live blocks' figures just as well (the backfill has metrics of its own). Created once per prom-client registry; each stage's child is made once, so an
 * observation is a bucket search and two additions.
 */
import { Histogram, type Registry } from 'prom-client';

export const PIPELINE_STAGES = ['fetched', 'matched', 'committed', 'sent', 'answered'] as const;
export type PipelineStage = (typeof PIPELINE_STAGES)[number];

/**
 * Sub-millisecond to minutes: live events take milliseconds (their tail 10-25 ms on a busy node, where
 * a quantile is read to within 5 ms), a backlog drains in seconds to minutes.
 */
const BUCKETS = [0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export interface PipelineStages {
  /** Records that an event whose block was seen at `seenAt` (ms since the epoch) reached `stage` at `now`. */
  reached(stage: PipelineStage, seenAt: number, now: number): void;
  /**
   * A job's first attempt, sent at `sentAt` and answered at `answeredAt`: its `sent` and `answered`
   * stages, unless the job is a backfill's (see the header).
   */
  delivered(job: { eventSeenAt: number; backfill?: boolean }, sentAt: number, answeredAt: number): void;
}

const byRegistry = new WeakMap<Registry, PipelineStages>();

export function pipelineStages(registry: Registry): PipelineStages {
  const known = byRegistry.get(registry);
  if (known) return known;
  const histogram =
    (registry.getSingleMetric('pipeline_stage_seconds') as Histogram<'stage'> | undefined) ??
    new Histogram({
      name: 'pipeline_stage_seconds',
      help: 'Seconds from the block head being seen to the event reaching each pipeline stage',
      labelNames: ['stage'],
      buckets: BUCKETS,
      registers: [registry],
    });
  const children = new Map(
    PIPELINE_STAGES.map((stage) => {
      // Every stage has a series from the start (zero counts), so rate() and quantiles see the first events.
      histogram.zero({ stage });
      return [stage, histogram.labels({ stage })] as const;
    }),
  );
  const stages: PipelineStages = {
    reached(stage, seenAt, now) {
      children.get(stage)!.observe(Math.max(0, now - seenAt) / 1000);
    },
    delivered(job, sentAt, answeredAt) {
      if (job.backfill === true) return;
      stages.reached('sent', job.eventSeenAt, sentAt);
      stages.reached('answered', job.eventSeenAt, answeredAt);
    },
  };
  byRegistry.set(registry, stages);
  return stages;
}
