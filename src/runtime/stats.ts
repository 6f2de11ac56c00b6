/**
 * Per-actor counters kept as plain numbers on the hot path. Prometheus reads them at scrape time
 * (see metrics.ts), so handling a message costs integer increments, not registry calls.
 */
import { DEAD_LETTER_REASONS, RESTART_REASONS, type DeadLetterReason, type RestartReason } from './types.ts';

/** Upper bounds (seconds) of `actor_message_duration_seconds`. */
export const DURATION_BUCKETS = [1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1, 5, 10] as const;

export class ActorStats {
  handled = 0;
  panicked = 0;
  readonly restarts: Record<RestartReason, number> = Object.fromEntries(RESTART_REASONS.map((r) => [r, 0])) as Record<
    RestartReason,
    number
  >;
  readonly deadLetters: Record<DeadLetterReason, number> = Object.fromEntries(DEAD_LETTER_REASONS.map((r) => [r, 0])) as Record<
    DeadLetterReason,
    number
  >;
  /** Non-cumulative bucket counts; the last slot is +Inf. */
  readonly durationBuckets = new Float64Array(DURATION_BUCKETS.length + 1);
  durationSum = 0;

  observeDuration(seconds: number): void {
    this.observeBatch(1, seconds);
  }

  /** `count` messages that took `seconds` together, each counted at their mean. */
  observeBatch(count: number, seconds: number): void {
    const mean = seconds / count;
    let i = 0;
    while (i < DURATION_BUCKETS.length && mean > DURATION_BUCKETS[i]!) i++;
    this.durationBuckets[i]! += count;
    this.durationSum += seconds;
  }

  get totalRestarts(): number {
    let n = 0;
    for (const r of RESTART_REASONS) n += this.restarts[r];
    return n;
  }
}
