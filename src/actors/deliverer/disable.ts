/**
 * Sustained-failure detection: an endpoint whose attempts have all failed for `afterMs` (default 5 days,
 * as Svix does) and at least `minFailures` times (default 10, so two failures days apart are not
 * "sustained") is to be disabled, with a reason an operator can read. Any success resets the streak.
 * A 410 disables at once and is handled by the retry decision, not here.
 *
 * Pure: an immutable streak and a transition; the clock is an argument. The streak survives restarts
 * through the endpoint record (`failing`): `persist` says when the stored copy must change — when a
 * streak starts, when it reaches `minFailures`, and when a success ends it — so a failing endpoint
 * costs two writes per streak, not one per attempt. A restart resumes from the stored copy (its
 * `since`, and a count that is a lower bound), so a node restarted every few days still disables an
 * endpoint that has failed for `afterMs`.
 */

export interface DisableConfig {
  afterMs: number;
  minFailures: number;
}

export const DEFAULT_DISABLE_CONFIG: DisableConfig = Object.freeze({ afterMs: 5 * 24 * 3_600_000, minFailures: 10 });

export type FailureStreak = { readonly since: number; readonly failures: number } | null;

export function recordForDisable(
  streak: FailureStreak,
  success: boolean,
  now: number,
  lastReason: string,
  cfg: DisableConfig = DEFAULT_DISABLE_CONFIG,
): { streak: FailureStreak; disableReason?: string; persist?: FailureStreak } {
  if (success) return streak === null ? { streak: null } : { streak: null, persist: null };
  const next = { since: streak?.since ?? now, failures: (streak?.failures ?? 0) + 1 };
  const persist = next.failures === 1 || next.failures === cfg.minFailures ? { persist: next } : {};
  if (now - next.since < cfg.afterMs || next.failures < cfg.minFailures) return { streak: next, ...persist };
  const reason =
    `failing since ${new Date(next.since).toISOString()} (${next.failures} failed attempts over ` +
    `${formatSpan(now - next.since)}, none succeeded); last: ${lastReason}`;
  return { streak: next, disableReason: reason, ...persist };
}

function formatSpan(ms: number): string {
  const hours = Math.floor(ms / 3_600_000);
  return hours >= 48 ? `${Math.floor(hours / 24)} days` : hours >= 1 ? `${hours} h` : `${Math.round(ms / 1000)} s`;
}
