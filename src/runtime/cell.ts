/**
 * ActorCell: one worker of the tree. It owns the mailbox and the ref (both outlive restarts) and runs
 * one incarnation of the behaviour at a time.
 *
 * - Exactly one message is handled at a time, in FIFO order; a handler that returns a promise holds the
 *   cell until it settles. What `receive` returns is the reply to an `ask`.
 * - Timing for `actor_message_duration_seconds` is per drained batch: the synchronous messages of one
 *   slice share one pair of clock reads and each counts as the slice's mean; an async handler is timed
 *   on its own. Count and sum are exact; only the spread within a slice is averaged away.
 * - The system lane (stop, health) is served before the next user message.
 * - A handler that throws or rejects is a panic: the cell stops taking messages and reports to its
 *   parent, which decides the restart. The panicking message is kept aside and handed to the next
 *   incarnation first; after `maxConsecutivePanics` panics in a row it goes to dead letters (`poison`).
 *   A process crash of a placed behaviour (`ctx.fail(err, 'crash')`) is treated the same way.
 * - A worker placed `forked` or `threaded` runs a parent-side proxy of its behaviour (placement/): the
 *   mailbox, ref and supervision stay here; the proxy reports the child's death through `ctx.fail`.
 * - Every refused, evicted or abandoned message goes to dead letters with a reason; nothing is dropped
 *   silently. A pending `ask` whose message is dead-lettered is rejected with the matching error code.
 */
import { performance } from 'node:perf_hooks';
import type { Dispatcher, Runnable } from './dispatcher.ts';
import { EthhookError, describeError } from './errors.ts';
import { actorLogger, type Logger } from './log.ts';
import { Mailbox, type Reply } from './mailbox.ts';
import { createPlacedBehaviour, type PlacedBehaviour } from './placement/index.ts';
import type { ParentLink, StopWhy, TreeNode } from './node.ts';
import { ActorStats } from './stats.ts';
import type {
  ActorContext,
  ActorRef,
  ActorSnapshot,
  ActorState,
  AskOptions,
  Behaviour,
  DeadLetterReason,
  HealthReport,
  OverflowPolicy,
  RestartReason,
  RestartType,
  SupervisionEvent,
  WorkerSpec,
} from './types.ts';

export interface CellEnv {
  readonly dispatcher: Dispatcher;
  readonly logger: Logger;
  readonly metrics: boolean;
  readonly defaultAskTimeoutMs: number;
  emit(event: SupervisionEvent): void;
  /** Counts are kept by the cell; this logs (sampled) and publishes the event. */
  deadLetter(path: string, reason: DeadLetterReason, msg: unknown): void;
  lookup<T>(pathOrName: string): ActorRef<T> | undefined;
}

export interface CellDefaults {
  capacity: number;
  overflow: OverflowPolicy;
  throughput: number;
  maxConsecutivePanics: number;
  shutdownTimeoutMs: number;
}

interface Pending {
  msg: unknown;
  reply: Reply | undefined;
  /** Panics (or crashes) this message caused in a row. */
  strikes: number;
}

const NOT_RUNNING = { handled: 0, more: false };
/** The characters of a panic's message the snapshot keeps (`lastPanic`). */
const LAST_PANIC_CHARS = 500;

export function messageType(msg: unknown): string {
  if (msg !== null && typeof msg === 'object' && typeof (msg as { type?: unknown }).type === 'string')
    return (msg as { type: string }).type;
  return msg === null ? 'null' : typeof msg;
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function';
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<{ ok: true; value: T } | { ok: false; error?: unknown; timedOut: boolean }> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ ok: false, timedOut: true }), ms);
    p.then(
      (value) => {
        clearTimeout(timer);
        resolve({ ok: true, value });
      },
      (error) => {
        clearTimeout(timer);
        resolve({ ok: false, error, timedOut: false });
      },
    );
  });
}

class CellRef<M> implements ActorRef<M> {
  constructor(private readonly cell: ActorCell<M>) {}
  get path(): string {
    return this.cell.path;
  }
  get name(): string {
    return this.cell.name;
  }
  tell(msg: M): boolean {
    return this.cell.tell(msg);
  }
  send(msg: M): Promise<void> {
    return this.cell.send(msg);
  }
  ask<R = unknown>(msg: M, options?: AskOptions): Promise<R> {
    return this.cell.ask(msg, options) as Promise<R>;
  }
}

class CellContext<M> implements ActorContext<M> {
  constructor(
    private readonly cell: ActorCell<M>,
    readonly incarnation: number,
    readonly log: Logger,
  ) {}
  get self(): ActorRef<M> {
    return this.cell.ref;
  }
  get path(): string {
    return this.cell.path;
  }
  get name(): string {
    return this.cell.name;
  }
  lookup<T = unknown>(pathOrName: string): ActorRef<T> | undefined {
    return this.cell.env.lookup<T>(pathOrName);
  }
  fail(error: unknown, reason: 'crash' | 'health' = 'crash'): void {
    this.cell.failFromOutside(this.incarnation, error, reason);
  }
  stopSelf(): void {
    this.cell.exitNormally(this.incarnation);
  }
}

export class ActorCell<M = unknown> implements TreeNode, Runnable {
  readonly kind = 'worker' as const;
  readonly name: string;
  readonly path: string;
  readonly restartType: RestartType;
  readonly shutdownTimeoutMs: number;
  readonly stats = new ActorStats();
  /** The latest panic (snapshot's `lastPanic`), kept across incarnations. */
  private lastPanic: { at: number; message: string } | undefined;
  readonly mailbox: Mailbox<M>;
  readonly ref: ActorRef<M>;
  readonly log: Logger;
  parent!: ParentLink;

  private readonly throughput: number;
  private readonly maxConsecutivePanics: number;
  private behaviour: Behaviour<M> | null = null;
  /** The behaviour again when it is a placed proxy (a child process or thread runs it): it knows the pid. */
  private placed: PlacedBehaviour | null = null;
  private ctx: CellContext<M> | null = null;
  private incarnationNo = 0;
  private stateNow: ActorState = 'idle';
  /** In the dispatcher's ready queue. */
  private scheduled = false;
  /** The async handler being awaited; callbacks of an abandoned one (stop timed out) find it replaced. */
  private inFlight: object | null = null;
  private pending: Pending | null = null;
  /** Set once a temporary child has ended for good: later messages are dead letters. */
  private terminated = false;
  private healthTimer: NodeJS.Timeout | null = null;
  private healthFailures = 0;

  constructor(
    readonly spec: WorkerSpec<M>,
    parentPath: string,
    readonly env: CellEnv,
    defaults: CellDefaults,
  ) {
    this.name = spec.name;
    this.path = parentPath === '/' ? `/${spec.name}` : `${parentPath}/${spec.name}`;
    this.restartType = spec.restart ?? 'permanent';
    this.shutdownTimeoutMs = spec.shutdownTimeoutMs ?? defaults.shutdownTimeoutMs;
    this.throughput = spec.mailbox?.throughput ?? defaults.throughput;
    this.maxConsecutivePanics = spec.maxConsecutivePanics ?? defaults.maxConsecutivePanics;
    this.mailbox = new Mailbox<M>(spec.mailbox?.capacity ?? defaults.capacity, spec.mailbox?.overflow ?? defaults.overflow);
    this.ref = new CellRef(this);
    this.log = actorLogger(env.logger, this.path);
  }

  get state(): ActorState {
    return this.stateNow;
  }
  get incarnation(): number {
    return this.incarnationNo;
  }
  children(): readonly TreeNode[] {
    return [];
  }

  // ---- sending -------------------------------------------------------------------------------

  tell(msg: M): boolean {
    if (this.terminated) {
      this.deadLetter(msg, 'stopped', undefined);
      return false;
    }
    const r = this.mailbox.offer(msg);
    if (!r.accepted) {
      this.deadLetter(msg, this.mailbox.overflow === 'backpressure' ? 'rejected' : 'overflow', undefined);
      return false;
    }
    if (r.evicted) this.deadLetter(r.evicted.msg, 'overflow', r.evicted.reply);
    this.wake();
    return true;
  }

  async send(msg: M): Promise<void> {
    if (this.mailbox.overflow !== 'backpressure' || this.terminated) {
      this.tell(msg);
      return;
    }
    while (!this.mailbox.offer(msg).accepted) await this.mailbox.waitForRoom();
    this.wake();
  }

  ask(msg: M, options?: AskOptions): Promise<unknown> {
    const timeoutMs = options?.timeoutMs ?? this.env.defaultAskTimeoutMs;
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        reject(
          new EthhookError('ETHHOOK_ERR_ASK_TIMEOUT', `no reply from ${this.path} within ${timeoutMs} ms`, {
            actor: this.path,
            messageType: messageType(msg),
            timeoutMs,
          }),
        );
      }, timeoutMs);
      const reply: Reply = {
        resolve: (v) => {
          if (!settled) {
            settled = true;
            clearTimeout(timer);
            resolve(v);
          }
        },
        reject: (e) => {
          if (!settled) {
            settled = true;
            clearTimeout(timer);
            reject(e);
          }
        },
      };
      if (this.terminated) {
        this.deadLetter(msg, 'stopped', reply);
        return;
      }
      const r = this.mailbox.offer(msg, reply);
      if (r.accepted) {
        if (r.evicted) this.deadLetter(r.evicted.msg, 'overflow', r.evicted.reply);
        this.wake();
      } else if (this.mailbox.overflow === 'backpressure') {
        void this.offerWhenRoom(msg, reply, () => settled);
      } else {
        this.deadLetter(msg, 'overflow', reply);
      }
    });
  }

  private async offerWhenRoom(msg: M, reply: Reply, gaveUp: () => boolean): Promise<void> {
    while (!gaveUp()) {
      if (this.mailbox.offer(msg, reply).accepted) {
        this.wake();
        return;
      }
      await this.mailbox.waitForRoom();
    }
  }

  private wake(): void {
    if (!this.scheduled && this.inFlight === null && this.stateNow === 'running') {
      this.scheduled = true;
      this.env.dispatcher.schedule(this);
    }
  }

  // ---- the drain loop -------------------------------------------------------------------------

  runSlice(max: number): { handled: number; more: boolean } {
    const b = this.behaviour;
    if (this.stateNow !== 'running' || this.inFlight !== null || b === null) {
      this.scheduled = false;
      return NOT_RUNNING;
    }
    const limit = max < this.throughput ? max : this.throughput;
    const ctx = this.ctx!;
    const mb = this.mailbox;
    const metrics = this.env.metrics;
    const t0 = metrics ? performance.now() : 0;
    let handled = 0;
    let sync = 0;
    while (handled < limit) {
      if (mb.hasSystem) {
        this.serveSystem();
        if (this.stateNow !== 'running') break;
        continue;
      }
      let msg: M;
      let reply: Reply | undefined;
      let strikes = 0;
      if (this.pending !== null) {
        ({ msg, reply, strikes } = this.pending as Pending & { msg: M });
        this.pending = null;
      } else if (mb.size > 0) {
        msg = mb.take();
        reply = mb.lastReply;
      } else {
        break;
      }
      handled++;
      let result: unknown;
      try {
        result = b.receive(msg, ctx);
      } catch (err) {
        this.panic(msg, reply, strikes, err, 'panic');
        break;
      }
      if (isThenable(result)) {
        this.awaitHandler(result, msg, reply, strikes, metrics ? performance.now() : 0);
        break;
      }
      sync++;
      if (reply !== undefined) reply.resolve(result);
    }
    this.stats.handled += sync;
    if (metrics && sync > 0) this.stats.observeBatch(sync, (performance.now() - t0) / 1000);
    const more = this.stateNow === 'running' && this.inFlight === null && (this.pending !== null || !mb.isEmpty());
    if (!more) this.scheduled = false;
    return { handled, more };
  }

  private awaitHandler(result: PromiseLike<unknown>, msg: M, reply: Reply | undefined, strikes: number, t0: number): void {
    const token = {};
    this.inFlight = token;
    Promise.resolve(result).then(
      (value) => {
        this.stats.handled++;
        if (this.env.metrics) this.stats.observeDuration((performance.now() - t0) / 1000);
        if (reply !== undefined) reply.resolve(value);
        if (this.inFlight !== token) return;
        this.inFlight = null;
        this.scheduled = false;
        if (this.stateNow === 'running' && (this.pending !== null || !this.mailbox.isEmpty())) this.wake();
      },
      (err) => {
        if (this.inFlight !== token) {
          // Abandoned at stop: the message was not handled; the next incarnation gets it.
          this.keepForRetry(msg, reply, strikes + 1);
          return;
        }
        this.inFlight = null;
        this.scheduled = false;
        if (this.stateNow === 'running') this.panic(msg, reply, strikes, err, 'panic');
        else this.keepForRetry(msg, reply, strikes + 1);
      },
    );
  }

  private serveSystem(): void {
    const signal = this.mailbox.shiftSystem()!;
    if (signal.kind === 'stop') {
      this.stateNow = 'stopping';
      signal.done();
    } else {
      const b = this.behaviour;
      try {
        signal.done(b?.health ? b.health() : { ok: true });
      } catch (err) {
        signal.done({ ok: false, detail: describeError(err).message as string });
      }
    }
  }

  // ---- failures ----------------------------------------------------------------------------

  private panic(msg: M, reply: Reply | undefined, strikes: number, err: unknown, reason: 'panic' | 'crash'): void {
    this.stats.panicked++;
    this.lastPanic = { at: Date.now(), message: String(describeError(err).message ?? err).slice(0, LAST_PANIC_CHARS) };
    const type = messageType(msg);
    this.log.error(
      { err: describeError(err), messageType: type, incarnation: this.incarnationNo, code: 'ETHHOOK_ERR_ACTOR_PANIC' },
      'handler panicked',
    );
    this.env.emit({ type: 'panic', path: this.path, error: err, messageType: type, at: Date.now() });
    this.keepForRetry(msg, reply, strikes + 1);
    this.failed(reason, err);
  }

  private keepForRetry(msg: M, reply: Reply | undefined, strikes: number): void {
    if (strikes >= this.maxConsecutivePanics) {
      this.log.error(
        { messageType: messageType(msg), strikes, code: 'ETHHOOK_ERR_POISON_MESSAGE' },
        'message panicked the actor too many times in a row; sent to dead letters',
      );
      this.deadLetter(msg, 'poison', reply);
    } else {
      this.pending = { msg, reply, strikes };
    }
  }

  private failed(reason: RestartReason, err: unknown): void {
    this.stateNow = 'failed';
    this.stopHealthChecks();
    this.parent.childFailed(this, reason, err);
  }

  /** `ctx.fail` from the given incarnation; stale reports (an older incarnation) are ignored. */
  failFromOutside(incarnation: number, error: unknown, reason: 'crash' | 'health'): void {
    if (incarnation !== this.incarnationNo || (this.stateNow !== 'running' && this.stateNow !== 'starting')) return;
    this.log.error(
      { err: describeError(error), reason, incarnation, code: reason === 'crash' ? 'ETHHOOK_ERR_ACTOR_CRASH' : undefined },
      `actor ${reason === 'crash' ? 'crashed' : 'failed its health check'}`,
    );
    if (reason === 'crash') this.env.emit({ type: 'crash', path: this.path, error, at: Date.now() });
    this.failed(reason, error);
  }

  exitNormally(incarnation: number): void {
    if (incarnation !== this.incarnationNo || this.stateNow !== 'running') return;
    queueMicrotask(() => this.parent.childExited(this));
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  async start(): Promise<void> {
    this.terminated = false;
    this.incarnationNo++;
    this.stateNow = 'starting';
    const inc = this.incarnationNo;
    const ctx = new CellContext(this, inc, this.log);
    const placement = this.spec.placement;
    const placed =
      placement === undefined || placement.mode === 'local'
        ? null
        : createPlacedBehaviour(placement, { logger: this.log, stopTimeoutMs: this.shutdownTimeoutMs });
    const behaviour = placed === null ? this.spec.behaviour!() : (placed as Behaviour<M>);
    this.behaviour = behaviour;
    this.placed = placed;
    this.ctx = ctx;
    try {
      await behaviour.preStart?.(ctx);
    } catch (err) {
      if (inc === this.incarnationNo) this.stateNow = 'failed';
      throw err;
    }
    if (inc !== this.incarnationNo || this.stateNow !== 'starting') return;
    this.stateNow = 'running';
    this.log.debug({ incarnation: inc }, 'actor started');
    this.env.emit({ type: 'started', path: this.path, incarnation: inc, at: Date.now() });
    this.startHealthChecks();
    if (this.pending !== null || !this.mailbox.isEmpty()) this.wake();
  }

  async stop(why: StopWhy): Promise<void> {
    if (this.stateNow === 'stopped' || this.stateNow === 'idle') return;
    const deadline = Date.now() + this.shutdownTimeoutMs;
    this.stopHealthChecks();
    if (this.stateNow === 'running') {
      const stopped = new Promise<void>((done) => this.mailbox.pushSystem({ kind: 'stop', done: () => done() }));
      this.wake();
      const r = await withTimeout(stopped, this.shutdownTimeoutMs);
      if (!r.ok)
        this.log.warn(
          { code: 'ETHHOOK_ERR_SHUTDOWN_TIMEOUT', timeoutMs: this.shutdownTimeoutMs },
          'handler still running at stop; abandoning it',
        );
    }
    this.stateNow = 'stopping';
    const b = this.behaviour;
    const ctx = this.ctx;
    if (b && ctx) {
      const hook =
        why.cause !== 'shutdown' && why.cause !== 'manual-stop' && why.cause !== 'normal' && b.preRestart
          ? () => b.preRestart!(why.cause as RestartReason, why.error, ctx)
          : () => b.postStop?.(ctx);
      const r = await withTimeout(Promise.resolve().then(hook), Math.max(1, deadline - Date.now()));
      if (!r.ok)
        this.log.warn(
          {
            err: r.timedOut ? undefined : describeError(r.error),
            timedOut: r.timedOut,
            code: r.timedOut ? 'ETHHOOK_ERR_SHUTDOWN_TIMEOUT' : undefined,
          },
          'stop hook failed',
        );
    }
    this.behaviour = null;
    this.placed = null;
    this.ctx = null;
    this.inFlight = null;
    this.stateNow = 'stopped';
    this.env.emit({
      type: 'stopped',
      path: this.path,
      at: Date.now(),
      normal: why.cause === 'shutdown' || why.cause === 'manual-stop' || why.cause === 'normal',
    });
  }

  /** Ends the actor for good (temporary child, system shutdown): queued messages become dead letters. */
  terminate(reason: DeadLetterReason): void {
    this.terminated = true;
    if (this.pending) {
      this.deadLetter(this.pending.msg, reason, this.pending.reply);
      this.pending = null;
    }
    for (const { msg, reply } of this.mailbox.drainAll()) this.deadLetter(msg, reason, reply);
  }

  // ---- health checks ------------------------------------------------------------------------

  private startHealthChecks(): void {
    const hc = this.spec.healthCheck;
    if (!hc || !this.behaviour?.health) return;
    this.healthFailures = 0;
    const inc = this.incarnationNo;
    this.healthTimer = setInterval(() => void this.probeHealth(inc, hc.intervalMs, hc.failures), hc.intervalMs);
    this.healthTimer.unref();
  }

  private stopHealthChecks(): void {
    if (this.healthTimer) clearInterval(this.healthTimer);
    this.healthTimer = null;
  }

  private async probeHealth(inc: number, timeoutMs: number, allowed: number): Promise<void> {
    if (inc !== this.incarnationNo || this.stateNow !== 'running') return;
    // health() may answer with a promise: resolving `answer` with it waits for its report.
    const answer = new Promise<HealthReport>((done) =>
      this.mailbox.pushSystem({ kind: 'health', done: (v) => done(v as HealthReport | Promise<HealthReport>) }),
    );
    this.wake();
    const r = await withTimeout(answer, timeoutMs);
    const ok = r.ok && r.value.ok;
    this.healthFailures = ok ? 0 : this.healthFailures + 1;
    if (this.healthFailures >= allowed) {
      const detail = r.ok ? r.value.detail : 'health check timed out';
      this.failFromOutside(inc, new Error(`health check failed ${this.healthFailures} times: ${detail ?? 'not ok'}`), 'health');
    }
  }

  // ---- dead letters -------------------------------------------------------------------------

  private deadLetter(msg: unknown, reason: DeadLetterReason, reply: Reply | undefined): void {
    this.stats.deadLetters[reason]++;
    this.env.deadLetter(this.path, reason, msg);
    if (reply !== undefined) {
      const code =
        reason === 'poison'
          ? 'ETHHOOK_ERR_POISON_MESSAGE'
          : reason === 'rejected' || reason === 'overflow'
            ? 'ETHHOOK_ERR_MAILBOX_FULL'
            : reason === 'shutdown'
              ? 'ETHHOOK_ERR_SYSTEM_SHUTDOWN'
              : 'ETHHOOK_ERR_ACTOR_STOPPED';
      reply.reject(
        new EthhookError(code, `message to ${this.path} went to dead letters (${reason})`, {
          actor: this.path,
          reason,
          messageType: messageType(msg),
        }),
      );
    }
  }

  // ---- observation -----------------------------------------------------------------------------

  get pid(): number | null {
    if (this.spec.placement === undefined || this.spec.placement.mode === 'local') return process.pid;
    return this.placed?.pid() ?? null;
  }

  snapshot(): ActorSnapshot {
    return {
      path: this.path,
      name: this.name,
      kind: 'worker',
      state: this.stateNow,
      restartType: this.restartType,
      placement: this.spec.placement?.mode ?? 'local',
      pid: this.pid,
      incarnation: this.incarnationNo,
      mailbox: { size: this.mailbox.size, capacity: this.mailbox.capacity, overflow: this.mailbox.overflow },
      restarts: this.stats.totalRestarts,
      panics: this.stats.panicked,
      ...(this.lastPanic ? { lastPanic: { ...this.lastPanic } } : {}),
    };
  }
}
