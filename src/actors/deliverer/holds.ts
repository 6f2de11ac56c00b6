/**
 * Jobs the Deliverer holds back in memory because their endpoint cannot take them now, per endpoint:
 *
 * - `rate`: the endpoint's token bucket is empty. One job is released when the hold expires, then one
 *   more every `intervalMs` (the time one token takes), so a long hold is not re-examined in full for
 *   every token.
 * - `breaker`: the endpoint's breaker is open or probing. Everything is released when the hold expires,
 *   or at once by `releaseEndpoint` when the breaker closes.
 * - `paused`: an operator paused the endpoint; everything is released to be looked at again later.
 * - `error`: processing the job failed unexpectedly; it is kept apart for a while (keyed by job, so it
 *   does not hold back its endpoint).
 *
 * A hold keeps the job objects, so a release needs no outbox read. `capacity` bounds the jobs held
 * overall; `add` answers false when full and the caller must do something else with the job.
 */

export type HoldKind = 'rate' | 'breaker' | 'paused' | 'error';

interface Hold<J> {
  jobs: J[];
  until: number;
  kind: HoldKind;
  intervalMs: number;
}

export class Holds<J extends { readonly id: string }> {
  private readonly holds = new Map<string, Hold<J>>();
  private count = 0;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.count;
  }

  add(endpointId: string, job: J, kind: HoldKind, until: number, intervalMs = 0): boolean {
    if (this.count >= this.capacity) return false;
    const key = kind === 'error' ? `error:${job.id}` : endpointId;
    const hold = this.holds.get(key);
    if (hold) {
      hold.jobs.push(job);
      hold.until = Math.max(hold.until, until);
      hold.kind = kind;
      hold.intervalMs = intervalMs;
    } else {
      this.holds.set(key, { jobs: [job], until, kind, intervalMs });
    }
    this.count++;
    return true;
  }

  /** The jobs whose hold has expired at `now`, oldest first within an endpoint. */
  releaseDue(now: number): J[] {
    const out: J[] = [];
    for (const [key, hold] of this.holds) {
      if (hold.until > now) continue;
      if (hold.kind === 'rate' && hold.jobs.length > 1) {
        out.push(hold.jobs.shift() as J);
        hold.until = now + hold.intervalMs;
      } else {
        out.push(...hold.jobs);
        this.holds.delete(key);
      }
    }
    this.count -= out.length;
    return out;
  }

  releaseEndpoint(endpointId: string): J[] {
    const hold = this.holds.get(endpointId);
    if (!hold) return [];
    this.holds.delete(endpointId);
    this.count -= hold.jobs.length;
    return hold.jobs;
  }

  /** When the earliest hold expires, or undefined when nothing is held. */
  nextRelease(): number | undefined {
    let next: number | undefined;
    for (const hold of this.holds.values()) if (next === undefined || hold.until < next) next = hold.until;
    return next;
  }

  clear(): void {
    this.holds.clear();
    this.count = 0;
  }
}
