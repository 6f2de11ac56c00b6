/**
 * Circuit breakers held cluster-wide: an endpoint whose breaker one instance opened is treated as open
 * by every instance sharing the store (src/store/delivery-limits.ts), and a breaker closed anywhere (a
 * probe that succeeded, an operator's close) closes everywhere.
 *
 * - This instance's own transitions (`transitioned`, from endpoint-guard.ts): `opened` writes the
 *   breaker into the store (open for its cool-down, from the store's clock), `closed` clears it.
 * - Every `pollMs` (default 1 s) ONE read of the store's open breakers (`openBreakers`). Each listed
 *   endpoint is handed to `hooks.open` with the time left of its cool-down (the Deliverer adopts it:
 *   open until then, so after it one probe goes from each instance, and a failed one re-opens it for
 *   longer, in the store too). An endpoint listed by the previous read and gone from this one was
 *   cleared elsewhere: `hooks.cleared`. A read that began before this instance's last transition of an
 *   endpoint says nothing about that endpoint (its write may have come after the read). A breaker this
 *   instance opened counts as listed from the moment its write landed: closed elsewhere before any
 *   read here found it (an operator's close on another instance right after the open), it is cleared
 *   here by the next read all the same, not kept open for its whole cool-down.
 * - Writes and reads go one after another (a read never overtakes this instance's own write). A failing
 *   one is logged (the store's pool has retried it first); the breakers stay as they are meanwhile.
 *
 * Bounds: the endpoints listed by the last read (the store's breaker rows, at most one per endpoint),
 * those whose breaker changed here since the read under way began, and those opened here since the last
 * read.
 */
import type { Logger } from '../../runtime/log.ts';
import { Serial } from '../../runtime/serial.ts';
import type { DeliveryLimits } from '../../store/delivery-limits.ts';
import type { BreakerState, Transition } from './circuit-breaker.ts';

export const DEFAULT_BREAKER_POLL_MS = 1_000;

export interface SharedBreakerHooks {
  /** The cluster holds the endpoint's breaker open, `remainingMs` of its `cooldownMs` still to run. */
  open(endpointId: string, remainingMs: number, cooldownMs: number): void;
  /** The endpoint's breaker was cleared by another instance. */
  cleared(endpointId: string): void;
}

export class SharedBreakers {
  private readonly serial = new Serial();
  /** Endpoints the last read listed. */
  private listed = new Set<string>();
  /** Endpoints whose breaker this instance opened, the write landed, and no read has looked at since. */
  private readonly opened = new Set<string>();
  /** Per endpoint whose breaker changed here: the count of changes when it last did. */
  private readonly changedAt = new Map<string, number>();
  private changes = 0;
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private running = false;

  constructor(
    private readonly limits: DeliveryLimits,
    private readonly hooks: SharedBreakerHooks,
    private readonly logger: Logger,
    private readonly pollMs = DEFAULT_BREAKER_POLL_MS,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.polling;
    await this.serial.settled();
  }

  /** A transition of this instance's breaker (adopted states are not reported here). */
  transitioned(endpointId: string, transition: Transition, state: BreakerState): void {
    if (transition === 'opened' && state.state === 'open') {
      const change = this.changed(endpointId);
      const cooldownMs = state.cooldownMs;
      this.write('opening', endpointId, async () => {
        await this.limits.openBreaker(endpointId, cooldownMs);
        // Still this open: no close or forget here since (each is a change). Its change mark is still
        // there: only a read that began before it has ended since, and such a read keeps it.
        if (this.changedAt.get(endpointId) === change) this.opened.add(endpointId);
      });
    } else if (transition === 'closed') {
      this.changed(endpointId);
      this.listed.delete(endpointId);
      this.opened.delete(endpointId);
      this.write('closing', endpointId, () => this.limits.closeBreaker(endpointId));
    }
  }

  /** The endpoint was deleted: its shared limits go from the store. */
  forget(endpointId: string): void {
    this.changed(endpointId);
    this.listed.delete(endpointId);
    this.opened.delete(endpointId);
    this.write('forgetting', endpointId, () => this.limits.forget(endpointId));
  }

  /** Reads the open breakers now (tests; the timer does it every `pollMs`). */
  poll(): Promise<void> {
    this.polling ??= this.read().finally(() => {
      this.polling = null;
    });
    return this.polling;
  }

  /** Marks a change of the endpoint's breaker here; returns its mark. */
  private changed(endpointId: string): number {
    const change = this.changes++;
    this.changedAt.set(endpointId, change);
    return change;
  }

  private write(what: string, endpointId: string, op: () => Promise<void>): void {
    this.serial.run(op).catch((err: unknown) => this.logger.warn({ err, endpointId }, `${what} the shared circuit breaker failed`));
  }

  private async read(): Promise<void> {
    const began = this.changes;
    let breakers;
    try {
      breakers = await this.serial.run(() => this.limits.openBreakers());
    } catch (err) {
      this.logger.warn({ err }, 'reading the shared circuit breakers failed; they stay as they were');
      return;
    }
    const untouched = (id: string): boolean => (this.changedAt.get(id) ?? -1) < began;
    const listed = new Set<string>();
    for (const b of breakers) {
      listed.add(b.endpointId);
      if (untouched(b.endpointId)) this.hooks.open(b.endpointId, b.remainingMs, b.cooldownMs);
    }
    for (const id of this.listed) if (!listed.has(id) && untouched(id)) this.hooks.cleared(id);
    // A breaker opened here and cleared elsewhere before any read listed it: this read began after
    // the open (it is untouched since), so it came after the opening write, which it no longer finds.
    for (const id of this.opened) {
      if (!untouched(id)) continue;
      this.opened.delete(id);
      if (!listed.has(id) && !this.listed.has(id)) this.hooks.cleared(id);
    }
    this.listed = listed;
    for (const [id, at] of this.changedAt) if (at < began) this.changedAt.delete(id);
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.poll().finally(() => this.schedule(this.pollMs));
    }, ms);
    this.timer.unref();
  }
}
