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

/** What `record` returns when nothing changed (read, never changed). */
const NOTHING_TO_REPORT: GuardRecord = Object.freeze({});

export class EndpointGuards {
  private readonly guards = new Map<string, Guard>();
  private readonly breakerCfg: BreakerConfig;
  private readonly disableCfg: DisableConfig;

  constructor(
    cfg: GuardConfig = {},
    private readonly metrics?: DelivererMetrics,
  ) {
    this.breakerCfg = { ...DEFAULT_BREAKER_CONFIG, ...cfg.circuitBreaker };
    this.disableCfg = { ...DEFAULT_DISABLE_CONFIG, ...cfg.disable };
  }

  admit(endpointId: string, ratePerSec: number | undefined, now: number): Admission {
    const g = this.guard(endpointId);
    const breaker = breakerAdmit(g.breaker, now, this.breakerCfg);
    if (!breaker.allowed) return { go: false, why: 'breaker', waitMs: breaker.waitMs };
    if (ratePerSec !== undefined) {
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

  forget(endpointId: string): void {
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
  }
}
