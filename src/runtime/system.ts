/**
 * ActorSystem: the running tree. It owns the dispatcher, the registry of nodes by path, dead-letter
 * accounting, the stream of supervision events, the kernel metrics and the graceful shutdown.
 *
 * The tree itself is built and supervised by the supervision layer: start a node with
 * `startSystem(rootSpec, options)` from `src/supervision/index.ts`. The system is the root's parent:
 * if the root supervisor escalates, the node logs why, shuts down and `exited` resolves with code 1.
 *
 * Manual operations (`restartActor`, `stopActor`, `startActor`) accept a path (`/pipeline/deliverer`)
 * or a unique name (`deliverer`) and go through the node's own supervisor, like any restart.
 * Lookups (`find`, `lookup`) answer undefined for a path or name that picks out no single actor;
 * `findOrThrow` and the manual operations throw ETHHOOK_ERR_ACTOR_NOT_FOUND or _AMBIGUOUS instead.
 */
import { Registry } from 'prom-client';
import { ActorCell, messageType, type CellDefaults, type CellEnv } from './cell.ts';
import { Dispatcher } from './dispatcher.ts';
import { EthhookError, describeError } from './errors.ts';
import { createLogger, type Logger } from './log.ts';
import { registerKernelMetrics, type MeasuredActor } from './metrics.ts';
import type { ParentLink, TreeNode } from './node.ts';
import type { ActorRef, ActorSnapshot, DeadLetterReason, RestartReason, SupervisionEvent } from './types.ts';

export interface SystemOptions {
  logger?: Logger;
  /** Where kernel metrics are registered; a fresh registry when omitted. */
  registry?: Registry;
  /** Time each message for `actor_message_duration_seconds` (counters are always kept). Default true. */
  metrics?: boolean;
  defaults?: Partial<CellDefaults>;
  askTimeoutMs?: number;
  /** Messages one run of the dispatcher handles before yielding to the event loop. */
  turnBudget?: number;
  shutdownDeadlineMs?: number;
  /** At most one dead-letter log line per actor and reason in this period (the count is always exact). */
  deadLetterLogIntervalMs?: number;
}

/** What `/ready` reports of the tree (ActorSystem.readiness). */
export interface Readiness {
  ready: boolean;
  /** Why not ready, one line each. */
  reasons: string[];
  /** Paths of the actors manually stopped, outermost only (their subtrees are stopped with them). */
  manuallyStopped: string[];
}

export interface Exit {
  code: number;
  reason: string;
}

/** How long a shutdown may take for the whole tree (`shutdownDeadlineMs`) when none is given. */
export const DEFAULT_SHUTDOWN_DEADLINE_MS = 10_000;

export const DEFAULT_CELL: CellDefaults = {
  capacity: 1024,
  overflow: 'backpressure',
  throughput: 256,
  maxConsecutivePanics: 3,
  shutdownTimeoutMs: 5000,
};

export class ActorSystem implements ParentLink {
  readonly path = '';
  readonly logger: Logger;
  readonly registry: Registry;
  readonly defaults: CellDefaults;
  readonly cellEnv: CellEnv;
  readonly exited: Promise<Exit>;
  private readonly dispatcher: Dispatcher;
  private readonly nodes = new Map<string, TreeNode>();
  private readonly listeners = new Set<(e: SupervisionEvent) => void>();
  private readonly deadLetterLog = new Map<string, { lastAt: number; suppressed: number }>();
  private readonly deadLetterLogIntervalMs: number;
  private readonly shutdownDeadlineMs: number;
  private root: TreeNode | null = null;
  private shutdownPromise: Promise<boolean> | null = null;
  private resolveExit!: (e: Exit) => void;
  /** Set when the root escalated: the node then exits non-zero whatever the shutdown's outcome. */
  private failure: string | null = null;

  constructor(options: SystemOptions = {}) {
    this.logger = options.logger ?? createLogger();
    this.registry = options.registry ?? new Registry();
    this.defaults = { ...DEFAULT_CELL, ...options.defaults };
    this.dispatcher = new Dispatcher(this.defaults.throughput, options.turnBudget ?? 4096);
    this.deadLetterLogIntervalMs = options.deadLetterLogIntervalMs ?? 10_000;
    this.shutdownDeadlineMs = options.shutdownDeadlineMs ?? DEFAULT_SHUTDOWN_DEADLINE_MS;
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
    this.cellEnv = {
      dispatcher: this.dispatcher,
      logger: this.logger,
      metrics: options.metrics ?? true,
      defaultAskTimeoutMs: options.askTimeoutMs ?? 5000,
      emit: (e) => this.emit(e),
      deadLetter: (path, reason, msg) => this.recordDeadLetter(path, reason, msg),
      lookup: (p) => this.lookup(p),
    };
    registerKernelMetrics(this.registry, () => this.measured());
  }

  // ---- building --------------------------------------------------------------------------------

  register(node: TreeNode): void {
    if (this.nodes.has(node.path))
      throw new EthhookError('ETHHOOK_ERR_INVALID_SPEC', `duplicate actor path ${node.path}`, { actor: node.path });
    this.nodes.set(node.path, node);
  }

  async startRoot(root: TreeNode): Promise<void> {
    this.root = root;
    root.parent = this;
    await root.start();
  }

  // ---- lookup ----------------------------------------------------------------------------------

  lookup<T = unknown>(pathOrName: string): ActorRef<T> | undefined {
    const node = this.find(pathOrName);
    return node instanceof ActorCell ? (node.ref as ActorRef<T>) : undefined;
  }

  /** The node at a path or of a unique name; undefined when there is none, or when several share the name. */
  find(pathOrName: string): TreeNode | undefined {
    if (pathOrName.startsWith('/')) return this.nodes.get(pathOrName);
    const matches = this.named(pathOrName);
    return matches.length === 1 ? matches[0] : undefined;
  }

  /** `find` for operations that must name what is wrong: throws ETHHOOK_ERR_ACTOR_NOT_FOUND or _AMBIGUOUS. */
  findOrThrow(pathOrName: string): TreeNode {
    const node = this.find(pathOrName);
    if (node !== undefined) return node;
    if (pathOrName.startsWith('/'))
      throw new EthhookError('ETHHOOK_ERR_ACTOR_NOT_FOUND', `no actor at ${pathOrName}`, { actor: pathOrName });
    const matches = this.named(pathOrName);
    if (matches.length > 1)
      throw new EthhookError(
        'ETHHOOK_ERR_ACTOR_AMBIGUOUS',
        `several actors are named ${pathOrName}: ${matches.map((m) => m.path).join(', ')}`,
        { actor: pathOrName },
      );
    throw new EthhookError('ETHHOOK_ERR_ACTOR_NOT_FOUND', `no actor named ${pathOrName}`, { actor: pathOrName });
  }

  private named(name: string): TreeNode[] {
    return [...this.nodes.values()].filter((n) => n.name === name);
  }

  // ---- manual operations (admin API) ---------------------------------------------------------

  async restartActor(pathOrName: string): Promise<ActorSnapshot> {
    const node = this.findOrThrow(pathOrName);
    await node.parent.restartChild(node, 'manual');
    return node.snapshot();
  }

  async stopActor(pathOrName: string): Promise<ActorSnapshot> {
    const node = this.findOrThrow(pathOrName);
    await node.parent.stopChild(node);
    return node.snapshot();
  }

  async startActor(pathOrName: string): Promise<ActorSnapshot> {
    const node = this.findOrThrow(pathOrName);
    await node.parent.startChild(node);
    return node.snapshot();
  }

  // ---- the root's parent ---------------------------------------------------------------------

  childFailed(child: TreeNode, reason: RestartReason, error: unknown): void {
    this.logger.fatal(
      { actor: child.path, reason, err: describeError(error), code: 'ETHHOOK_ERR_RESTART_INTENSITY' },
      'root supervisor gave up; the node stops',
    );
    this.failure = `root escalation: ${describeError(error).message as string}`;
    void this.shutdown(this.failure);
  }

  childExited(child: TreeNode): void {
    this.childFailed(child, 'escalation', new Error('root supervisor exited'));
  }

  async restartChild(child: TreeNode, reason: RestartReason): Promise<void> {
    child.stats.restarts[reason]++;
    await child.stop({ cause: reason });
    await child.start();
  }

  async stopChild(child: TreeNode): Promise<void> {
    await child.stop({ cause: 'manual-stop' });
  }

  async startChild(child: TreeNode): Promise<void> {
    if (child.state !== 'running') await child.start();
  }

  /** A stopped root leaves nothing running: never a pause that keeps the node ready. */
  isManuallyStopped(): boolean {
    return false;
  }

  // ---- observation -----------------------------------------------------------------------------

  snapshot(): ActorSnapshot {
    if (!this.root) throw new EthhookError('ETHHOOK_ERR_SYSTEM_SHUTDOWN', 'the system has no root yet');
    return this.root.snapshot();
  }

  /**
   * Ready when every permanent actor runs, or is manually stopped (`stopActor`: an operator's decision,
   * listed in `manuallyStopped`, outermost path only, and not a reason). Any other permanent actor
   * not running (failed, restarting after a crash, stopped by an escalating supervisor) is a reason,
   * one line per actor, and so is a shutdown in progress.
   */
  readiness(): Readiness {
    const reasons: string[] = [];
    const manuallyStopped: string[] = [];
    if (this.shutdownPromise) reasons.push('the node is shutting down');
    const visit = (node: TreeNode): void => {
      if (node.parent.isManuallyStopped(node)) {
        manuallyStopped.push(node.path);
        return;
      }
      if (node.restartType === 'permanent' && node.state !== 'running') reasons.push(`${node.path} is ${node.state}`);
      node.children().forEach(visit);
    };
    if (this.root) visit(this.root);
    return { ready: reasons.length === 0, reasons, manuallyStopped };
  }

  onEvent(listener: (e: SupervisionEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: SupervisionEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.logger.warn({ err: describeError(err) }, 'supervision event listener threw');
      }
    }
  }

  private *measured(): Iterable<MeasuredActor> {
    const stopped = this.readiness().manuallyStopped;
    for (const node of this.nodes.values()) {
      const cell = node instanceof ActorCell ? node : null;
      yield {
        path: node.path,
        stats: node.stats,
        mailboxSize: cell ? cell.mailbox.size : null,
        mailboxCapacity: cell ? cell.mailbox.capacity : null,
        up: node.state === 'running',
        manuallyStopped: stopped.some((path) => node.path === path || node.path.startsWith(`${path}/`)),
      };
    }
  }

  private recordDeadLetter(path: string, reason: DeadLetterReason, msg: unknown): void {
    const key = `${path}|${reason}`;
    const now = Date.now();
    const entry = this.deadLetterLog.get(key);
    if (!entry || now - entry.lastAt >= this.deadLetterLogIntervalMs) {
      this.logger.warn({ actor: path, reason, messageType: messageType(msg), suppressed: entry?.suppressed ?? 0 }, 'dead letter');
      this.deadLetterLog.set(key, { lastAt: now, suppressed: 0 });
    } else {
      entry.suppressed++;
    }
    if (this.listeners.size > 0) this.emit({ type: 'dead-letter', path, reason, messageType: messageType(msg), at: now });
  }

  // ---- shutdown --------------------------------------------------------------------------------

  /** Whether a shutdown began (SIGTERM, SIGINT, a fatal escalation): the node is draining. */
  get stopping(): boolean {
    return this.shutdownPromise !== null;
  }

  /**
   * Stops the tree in reverse start order, each actor within its shutdown timeout and the whole within
   * `deadlineMs`. Messages still queued afterwards are counted as dead letters (`shutdown`).
   * Resolves true when everything stopped in time.
   */
  shutdown(reason: string, deadlineMs = this.shutdownDeadlineMs): Promise<boolean> {
    if (this.shutdownPromise) return this.shutdownPromise;
    this.logger.info({ reason, deadlineMs }, 'shutting down');
    this.emit({ type: 'shutdown', path: '/', at: Date.now(), reason });
    const root = this.root;
    this.shutdownPromise = (async () => {
      let inTime = true;
      if (root) {
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), deadlineMs)));
        inTime = await Promise.race([root.stop({ cause: 'shutdown' }).then(() => true as const), deadline]);
        clearTimeout(timer);
        if (!inTime)
          this.logger.error({ deadlineMs, code: 'ETHHOOK_ERR_SHUTDOWN_TIMEOUT' }, 'shutdown deadline passed with actors still stopping');
      }
      for (const node of this.nodes.values()) if (node instanceof ActorCell) node.terminate('shutdown');
      this.logger.info({ inTime }, 'stopped');
      this.resolveExit({ code: this.failure !== null || !inTime ? 1 : 0, reason });
      return inTime;
    })();
    return this.shutdownPromise;
  }

  /** SIGTERM/SIGINT run a graceful shutdown; returns a function that removes the handlers. */
  installSignalHandlers(deadlineMs = this.shutdownDeadlineMs): () => void {
    const onSignal = (signal: NodeJS.Signals) => void this.shutdown(`signal ${signal}`, deadlineMs);
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    return () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    };
  }
}
