/**
 * What the console says about each actor's restarts beyond their count: the reason of the latest one and
 * whether the actor is storming. Fed with `actor_restarts_total{actor,reason}` samples (the series'
 * sampler every step, and every snapshot), it compares each count with the one seen before:
 *
 * - `lastReason`: the reason whose count grew most recently (null until one grows after the first
 *   look: restarts before the watch began have no known order);
 * - `storming`: at least `STORM_RESTARTS` restarts other than `manual` within the last `STORM_WINDOW_MS`
 *   (an operator's restarts are not a storm). Restart times are kept only for that window.
 */
import type { MetricSample } from './metric-read.ts';

export const STORM_RESTARTS = 3;
export const STORM_WINDOW_MS = 60_000;

export interface ActorRestartView {
  lastReason: string | null;
  lastAt: number | null;
  storming: boolean;
}

interface Seen {
  counts: Map<string, number>;
  lastReason: string | null;
  lastAt: number | null;
  recent: number[];
}

export class ActorWatch {
  private readonly actors = new Map<string, Seen>();

  observe(restarts: readonly MetricSample[], now: number): void {
    for (const s of restarts) {
      const actor = String(s.labels.actor);
      const reason = String(s.labels.reason);
      let seen = this.actors.get(actor);
      if (seen === undefined) {
        seen = { counts: new Map(), lastReason: null, lastAt: null, recent: [] };
        this.actors.set(actor, seen);
      }
      const before = seen.counts.get(reason);
      seen.counts.set(reason, s.value);
      if (before === undefined || s.value <= before) continue;
      seen.lastReason = reason;
      seen.lastAt = now;
      if (reason !== 'manual') for (let i = before; i < s.value; i++) seen.recent.push(now);
    }
    for (const seen of this.actors.values()) seen.recent = seen.recent.filter((t) => t > now - STORM_WINDOW_MS);
  }

  view(actor: string): ActorRestartView {
    const seen = this.actors.get(actor);
    if (seen === undefined) return { lastReason: null, lastAt: null, storming: false };
    return { lastReason: seen.lastReason, lastAt: seen.lastAt, storming: seen.recent.length >= STORM_RESTARTS };
  }
}
