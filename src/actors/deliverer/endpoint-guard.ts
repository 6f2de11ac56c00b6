/**
 * The per-endpoint guards in one place: circuit breaker, token bucket and sustained-failure streak,
 * kept in memory per endpoint id, with the breaker gauge and open counter updated on transitions.
 *
 * - `admit(endpointId, ratePerSec, now)`: `go`, or `breaker` (open or probing: how long until a request
 *   may pass) or `rate` (how long until a token). The rate is checked before the breaker admits, so a
 *   rate-limited request never takes the half-open probe slot.
 * - `record(endpointId, outcome, reason, now)`: feeds the breaker (a retryable outcome is a failure; any
 *   other answer proves the endpoint is up) and the streak (only a 2xx resets it). Returns the breaker
 *   transition, and the reason to disable the endpoint when the streak has lasted long enough.
 * - `operate(endpointId, action, now)`: an operator's `close` or `probe` of the breaker (circuit-breaker.ts
 *   `closeNow`, `probeNow`); `view(endpointId)` is the breaker as the admin API shows it.
 * - A bucket is rebuilt when the endpoint's rate limit changes; `forget` drops an endpoint's state.
 *
 * Shared across a cluster (`shared` given: the store holds limits for several instances): the rate's
 * tokens come from the endpoint's one bucket in the store (`shared.rate`, rate-slices.ts) instead of a
 * bucket here; this instance's breaker transitions are reported (`shared.transition`, to
 * shared-breakers.ts), and `adopt` / `clearedElsewhere` apply another instance's open and close: adopted,
 * the breaker is open until the cluster's cool-down ends (a later end of ours is kept), without counting
 * an open here (the instance that opened it counted it) and without being reported back.
 */
import {
  admit as breakerAdmit,
  BREAKER_GAUGE,
  breakerView,
  CLOSED,
  closeNow,
  DEFAULT_BREAKER_CONFIG,
  probeNow,
  record as breakerRecord,
  type BreakerAction,
  type BreakerConfig,
  type BreakerState,
  type BreakerView,
  type Transition,
} from './circuit-breaker.ts';
import { DEFAULT_DISABLE_CONFIG, recordForDisable, type DisableConfig, type FailureStreak } from './disable.ts';
import type { DelivererMetrics } from './metrics.ts';
import { fullBucket, take, type Bucket, type BucketConfig } from './rate-limit.ts';
import type { RateSlices } from './rate-slices.ts';
import type { OutcomeClass } from './retry.ts';

export type Admission = { go: true } | { go: false; why: 'breaker' | 'rate'; waitMs: number };

interface Guard {
  breaker: BreakerState;
  bucket: { cfg: BucketConfig; state: Bucket } | null;
  streak: FailureStreak;
}

export interface GuardConfig {
  circuitBreaker?: Partial<BreakerConfig>;
  disable?: Partial<DisableConfig>;
}

/** What `record` reports: a breaker transition, a reason to disable the endpoint, a streak to store (null: clear it). */
export interface GuardRecord {
  transition?: Transition;
  disableReason?: string;
  persist?: FailureStreak | null;
}

/** The cluster's side of the guards (see the module header). */
export interface SharedGuards {
  rate: Pick<RateSlices, 'take' | 'forget'>;
  transition(endpointId: string, transition: Transition, state: BreakerState): void;
}

/** What `record` returns when nothing changed (read, never changed). */
const NOTHING_TO_REPORT: GuardRecord = Object.freeze({});

export class EndpointGuards {
  private readonly guards = new Map<string, Guard>();
  private readonly breakerCfg: BreakerConfig;
  private readonly disableCfg: DisableConfig;

  constructor(
    cfg: GuardConfig = {},
    private readonly metrics?: DelivererMetrics,
    private readonly shared?: SharedGuards,
  ) {
    this.breakerCfg = { ...DEFAULT_BREAKER_CONFIG, ...cfg.circuitBreaker };
    this.disableCfg = { ...DEFAULT_DISABLE_CONFIG, ...cfg.disable };
  }

  admit(endpointId: string, ratePerSec: number | undefined, now: number): Admission {
    const g = this.guard(endpointId);
    const breaker = breakerAdmit(g.breaker, now, this.breakerCfg);
    if (!breaker.allowed) return { go: false, why: 'breaker', waitMs: breaker.waitMs };
    if (ratePerSec !== undefined && this.shared !== undefined) {
      const waitMs = this.shared.rate.take(endpointId, ratePerSec, now);
      if (waitMs > 0) return { go: false, why: 'rate', waitMs };
    } else if (ratePerSec !== undefined) {
      if (g.bucket?.cfg.ratePerSec !== ratePerSec) {
        const cfg = { ratePerSec, burst: Math.max(1, Math.floor(ratePerSec)) };
        g.bucket = { cfg, state: fullBucket(cfg, now) };
      }
      const taken = take(g.bucket.state, now, g.bucket.cfg);
      g.bucket.state = taken.bucket;
      if (taken.waitMs > 0) return { go: false, why: 'rate', waitMs: taken.waitMs };
    } else {
      g.bucket = null;
    }
    this.apply(endpointId, g, breaker.state, breaker.transition);
    return { go: true };
  }

  record(endpointId: string, outcome: OutcomeClass, reason: string, now: number): GuardRecord {
    const g = this.guard(endpointId);
    const r = breakerRecord(g.breaker, outcome !== 'retryable', now, this.breakerCfg);
    this.apply(endpointId, g, r.state, r.transition);
    const d = recordForDisable(g.streak, outcome === 'success', now, reason, this.disableCfg);
    g.streak = d.streak;
    // Nothing to report (nearly every webhook): one shared empty result. Otherwise assigned, not
    // spread (conditional spreads take V8's slow path).
    if (!r.transition && !d.disableReason && !('persist' in d)) return NOTHING_TO_REPORT;
    const result: GuardRecord = {};
    if (r.transition) result.transition = r.transition;
    if (d.disableReason) result.disableReason = d.disableReason;
    if ('persist' in d) result.persist = d.persist;
    return result;
  }

  /** Resumes a failure streak stored with the endpoint (after a restart), unless one runs in memory. */
  seedStreak(endpointId: string, streak: FailureStreak): void {
    const g = this.guard(endpointId);
    if (g.streak === null) g.streak = streak;
  }

  state(endpointId: string): BreakerState['state'] {
    return (this.guards.get(endpointId)?.breaker ?? CLOSED).state;
  }

  view(endpointId: string): BreakerView {
    return breakerView(this.guards.get(endpointId)?.breaker ?? CLOSED);
  }

  /** An operator's action on the breaker; returns its transition (a close of an open or half-open one). */
  operate(endpointId: string, action: BreakerAction, now: number): Transition | undefined {
    const g = this.guard(endpointId);
    if (action === 'probe') {
      this.apply(endpointId, g, probeNow(g.breaker, now, this.breakerCfg), undefined);
      return undefined;
    }
    const r = closeNow(g.breaker);
    this.apply(endpointId, g, r.state, r.transition);
    return r.transition;
  }

  /**
   * Another instance holds the endpoint's breaker open, `remainingMs` of its `cooldownMs` to run: ours
   * is open until then too (see the module header). True when it was closed here.
   */
  adopt(endpointId: string, remainingMs: number, cooldownMs: number, now: number): boolean {
    const g = this.guard(endpointId);
    const b = g.breaker;
    const until = now + remainingMs;
    // Probing here while the cluster's cool-down is over: our probe decides.
    if (b.state === 'half-open' && remainingMs === 0) return false;
    if (b.state === 'open' && b.until >= until) return false;
    g.breaker = { state: 'open', until, cooldownMs: Math.max(cooldownMs, b.state === 'closed' ? 0 : b.cooldownMs) };
    this.metrics?.breakerState.set({ endpoint: endpointId }, BREAKER_GAUGE.open);
    return b.state === 'closed';
  }

  /** Another instance closed the endpoint's breaker: ours closes, with nothing counted. True when it was not closed. */
  clearedElsewhere(endpointId: string): boolean {
    const g = this.guards.get(endpointId);
    if (g === undefined || g.breaker.state === 'closed') return false;
    g.breaker = CLOSED;
    this.metrics?.breakerState.set({ endpoint: endpointId }, BREAKER_GAUGE.closed);
    return true;
  }

  forget(endpointId: string): void {
    this.shared?.rate.forget(endpointId);
    this.guards.delete(endpointId);
    this.metrics?.breakerState.remove({ endpoint: endpointId });
  }

  private guard(endpointId: string): Guard {
    let g = this.guards.get(endpointId);
    if (!g) {
      g = { breaker: CLOSED, bucket: null, streak: null };
      this.guards.set(endpointId, g);
      this.metrics?.breakerState.set({ endpoint: endpointId }, BREAKER_GAUGE.closed);
    }
    return g;
  }

  private apply(endpointId: string, g: Guard, next: BreakerState, transition: Transition | undefined): void {
    g.breaker = next;
    if (!transition) return;
    this.metrics?.breakerState.set({ endpoint: endpointId }, BREAKER_GAUGE[next.state]);
    if (transition === 'opened') this.metrics?.breakerOpens.inc();
    this.shared?.transition(endpointId, transition, next);
  }
}
