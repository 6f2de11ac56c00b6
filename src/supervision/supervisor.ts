/**
 * Supervisor: OTP supervision of an ordered list of children (workers or supervisors).
 *
 * Options (SupervisorSpec):
 * - `strategy`: one-for-one | one-for-all | rest-for-one (see strategy.ts).
 * - `intensity` { maxRestarts = 5, withinMs = 30000 }: more restarts than that in the window and the
 *   supervisor stops its children (reverse order) and escalates to its parent (reason `escalation`).
 * - `backoff` { minMs, maxMs, factor, jitter, resetAfterMs }: delay before each automatic restart,
 *   per child, reset after a healthy period.
 * - children start in order and stop in reverse; each has a restart type:
 *   permanent — always restarted; transient — restarted after a failure, not after a normal exit;
 *   temporary — never restarted (its queued messages become dead letters).
 * Restart reasons: the failed child counts `panic`, `crash` or `health`; siblings restarted with it count
 * `dependency`; a supervisor restarted because it escalated counts `escalation`; admin restarts `manual`.
 * Manual stop keeps a child stopped (no automatic restart) until a manual start or restart.
 *
 * Every operation on the children (failure handling, manual operations, stop) runs one at a time through
 * a Serial queue (runtime/serial.ts), so a restart never interleaves with another.
 */
import { ActorCell, type CellDefaults, type CellEnv } from '../runtime/cell.ts';
import { EthhookError, describeError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/log.ts';
import type { ParentLink, StopWhy, TreeNode } from '../runtime/node.ts';
import { Serial } from '../runtime/serial.ts';
import { ActorStats } from '../runtime/stats.ts';
import type { ActorSnapshot, ActorState, IntensitySpec, RestartReason, RestartType, Strategy, SupervisorSpec } from '../runtime/types.ts';
import { RestartBackoff } from './backoff.ts';
import { RestartIntensity } from './intensity.ts';
import { childrenToRestart } from './strategy.ts';

export const DEFAULT_INTENSITY: IntensitySpec = { maxRestarts: 5, withinMs: 30_000 };

export interface TreeEnv {
  readonly cellEnv: CellEnv;
  readonly defaults: CellDefaults;
  readonly logger: Logger;
  register(node: TreeNode): void;
}

export class Supervisor implements TreeNode, ParentLink {
  readonly kind = 'supervisor' as const;
  readonly name: string;
  readonly path: string;
  readonly restartType: RestartType;
  readonly shutdownTimeoutMs: number;
  readonly stats = new ActorStats();
  readonly strategy: Strategy;
  parent!: ParentLink;
  private readonly kids: TreeNode[] = [];
  private readonly intensity: RestartIntensity;
  private readonly backoffs = new Map<TreeNode, RestartBackoff>();
  private readonly manuallyStopped = new Set<TreeNode>();
  private readonly restarting = new Set<TreeNode>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly log: Logger;
  private stateNow: ActorState = 'idle';
  private readonly queue = new Serial();
  private incarnationNo = 0;

  constructor(
    readonly spec: SupervisorSpec,
    parentPath: string | null,
    private readonly env: TreeEnv,
  ) {
    this.name = spec.name;
    this.path = parentPath === null ? '/' : parentPath === '/' ? `/${spec.name}` : `${parentPath}/${spec.name}`;
    this.restartType = spec.restart ?? 'permanent';
    this.strategy = spec.strategy;
    this.intensity = new RestartIntensity(spec.intensity ?? DEFAULT_INTENSITY);
    this.log = env.logger.child({ actor: this.path });
    env.register(this);
    for (const childSpec of spec.children) {
      const child: TreeNode =
        childSpec.kind === 'supervisor'
          ? new Supervisor(childSpec, this.path, env)
          : new ActorCell(childSpec, this.path, env.cellEnv, env.defaults);
      child.parent = this;
      if (child instanceof ActorCell) env.register(child);
      this.kids.push(child);
      this.backoffs.set(child, new RestartBackoff(spec.backoff));
    }
    // A supervisor's shutdown budget covers its children's, stopped one after another.
    this.shutdownTimeoutMs = spec.shutdownTimeoutMs ?? this.kids.reduce((sum, k) => sum + k.shutdownTimeoutMs, 0) + 1000;
  }

  get state(): ActorState {
    return this.stateNow;
  }
  children(): readonly TreeNode[] {
    return this.kids;
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  start(): Promise<void> {
    return this.queue.run(async () => {
      this.incarnationNo++;
      this.stateNow = 'starting';
      this.intensity.reset();
      this.manuallyStopped.clear();
      const started: TreeNode[] = [];
      for (const child of this.kids) {
        try {
          await child.start();
          started.push(child);
        } catch (err) {
          this.log.error({ child: child.path, err: describeError(err) }, 'child failed to start; stopping the ones started');
          for (const s of started.reverse()) await s.stop({ cause: 'shutdown' });
          await child.stop({ cause: 'shutdown' });
          this.stateNow = 'failed';
          throw err;
        }
      }
      this.stateNow = 'running';
      this.env.cellEnv.emit({ type: 'started', path: this.path, incarnation: this.incarnationNo, at: Date.now() });
    });
  }

  stop(why: StopWhy): Promise<void> {
    if (this.stateNow === 'stopped' || this.stateNow === 'idle') return Promise.resolve();
    this.stateNow = 'stopping';
    this.clearTimers();
    return this.queue.run(async () => {
      await this.stopAll(
        why.cause === 'shutdown' || why.cause === 'manual-stop' || why.cause === 'normal' ? why : { cause: 'dependency', error: why.error },
      );
      this.stateNow = 'stopped';
      this.env.cellEnv.emit({ type: 'stopped', path: this.path, at: Date.now(), normal: true });
    });
  }

  private async stopAll(why: StopWhy): Promise<void> {
    for (const child of [...this.kids].reverse()) await child.stop(why);
  }

  // ---- failures (from children) ------------------------------------------------------------

  childFailed(child: TreeNode, reason: RestartReason, error: unknown): void {
    void this.queue.run(() => this.handleFailure(child, reason, error));
  }

  childExited(child: TreeNode): void {
    void this.queue.run(async () => {
      if (child.restartType === 'permanent') {
        await this.handleFailure(child, 'crash', new Error(`permanent actor ${child.path} stopped itself`));
        return;
      }
      await child.stop({ cause: 'normal' });
      if (child.restartType === 'temporary' && child instanceof ActorCell) child.terminate('stopped');
    });
  }

  private async handleFailure(child: TreeNode, reason: RestartReason, error: unknown): Promise<void> {
    if (this.stateNow !== 'running' || !this.kids.includes(child)) return;
    if (child.restartType === 'temporary') {
      this.log.warn({ child: child.path, reason }, 'temporary child failed; not restarted');
      await child.stop({ cause: 'normal' });
      if (child instanceof ActorCell) child.terminate('stopped');
      return;
    }
    const now = Date.now();
    if (this.intensity.record(now)) {
      await this.escalate(child, reason, error);
      return;
    }
    const set = childrenToRestart(this.strategy, this.kids, child).filter((c) => c === child || !this.manuallyStopped.has(c));
    for (const c of [...set].reverse()) {
      await c.stop(c === child ? { cause: reason, error } : { cause: 'dependency' });
      this.restarting.add(c);
    }
    for (const c of set) c.stats.restarts[c === child ? reason : 'dependency']++;
    const delayMs = this.backoffs.get(child)!.next(now);
    for (const c of set) {
      this.env.cellEnv.emit({ type: 'restarting', path: c.path, reason: c === child ? reason : 'dependency', delayMs, at: now });
    }
    this.log.warn({ child: child.path, reason, delayMs, restarting: set.map((c) => c.path) }, 'restarting after failure');
    if (delayMs === 0) {
      // setTimeout(0) waits a millisecond; a zero backoff restarts on the next turn.
      setImmediate(() => void this.queue.run(() => this.startSet(set)));
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.queue.run(() => this.startSet(set));
    }, delayMs);
    this.timers.add(timer);
  }

  private async startSet(set: TreeNode[]): Promise<void> {
    if (this.stateNow !== 'running') return;
    for (const c of set) {
      this.restarting.delete(c);
      if (this.manuallyStopped.has(c) || c.state === 'running') continue;
      try {
        await c.start();
      } catch (err) {
        this.log.error({ child: c.path, err: describeError(err) }, 'restart failed');
        for (const rest of set) this.restarting.delete(rest);
        await this.handleFailure(c, c.kind === 'supervisor' ? 'escalation' : 'panic', err);
        return;
      }
    }
  }

  private async escalate(child: TreeNode, reason: RestartReason, error: unknown): Promise<void> {
    const { maxRestarts, withinMs } = this.intensity.spec;
    const err = new EthhookError(
      'ETHHOOK_ERR_RESTART_INTENSITY',
      `${this.path} exceeded ${maxRestarts} restarts in ${withinMs} ms (last: ${child.path}, ${reason})`,
      { actor: this.path, child: child.path, reason },
      { cause: error },
    );
    this.log.error(
      { code: err.code, child: child.path, reason, maxRestarts, withinMs },
      'restart intensity exceeded; stopping children and escalating',
    );
    this.clearTimers();
    this.restarting.clear();
    await this.stopAll({ cause: 'shutdown' });
    this.stateNow = 'failed';
    this.env.cellEnv.emit({ type: 'escalated', path: this.path, error: err, at: Date.now() });
    this.parent.childFailed(this, 'escalation', err);
  }

  // ---- manual operations ---------------------------------------------------------------------

  restartChild(child: TreeNode, reason: RestartReason): Promise<void> {
    return this.queue.run(async () => {
      this.manuallyStopped.delete(child);
      this.restarting.delete(child);
      child.stats.restarts[reason]++;
      this.env.cellEnv.emit({ type: 'restarting', path: child.path, reason, delayMs: 0, at: Date.now() });
      this.log.info({ child: child.path, reason }, 'restarting on request');
      await child.stop({ cause: reason });
      await child.start();
    });
  }

  stopChild(child: TreeNode): Promise<void> {
    return this.queue.run(async () => {
      this.manuallyStopped.add(child);
      this.restarting.delete(child);
      this.log.info({ child: child.path }, 'stopping on request');
      await child.stop({ cause: 'manual-stop' });
    });
  }

  startChild(child: TreeNode): Promise<void> {
    return this.queue.run(async () => {
      this.manuallyStopped.delete(child);
      this.restarting.delete(child);
      if (child.state === 'running') return;
      this.log.info({ child: child.path }, 'starting on request');
      await child.start();
    });
  }

  isManuallyStopped(child: TreeNode): boolean {
    return this.manuallyStopped.has(child);
  }

  // ---- internals -----------------------------------------------------------------------------

  private clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  snapshot(): ActorSnapshot {
    return {
      path: this.path,
      name: this.name,
      kind: 'supervisor',
      state: this.stateNow,
      restartType: this.restartType,
      placement: 'local',
      pid: process.pid,
      incarnation: this.incarnationNo,
      mailbox: null,
      restarts: this.stats.totalRestarts,
      panics: 0,
      children: this.kids.map((k) => {
        const snap = k.snapshot();
        return this.restarting.has(k) && snap.state === 'stopped' ? { ...snap, state: 'restarting' as const } : snap;
      }),
    };
  }
}
