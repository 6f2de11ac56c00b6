/**
 * The kernel's public vocabulary: behaviours, refs, contexts and the specs that build a tree.
 *
 * - A behaviour is an object with `receive(msg, ctx)`; what `receive` returns (or resolves to) is the
 *   reply to an `ask`. Optional hooks: `preStart`, `postStop`, `preRestart(reason)`, `health()`.
 * - A ref (`ActorRef`) owns the mailbox. Restarts replace the behaviour instance, never the ref, so
 *   queued messages survive them.
 * - Messages are plain, serializable data: they may cross a process boundary (forked placement).
 */
import type { Logger } from './log.ts';

export type OverflowPolicy = 'backpressure' | 'drop-oldest' | 'drop-newest';

/** The closed set of reasons a restart is counted under (`actor_restarts_total{reason}`). */
export const RESTART_REASONS = ['panic', 'crash', 'health', 'manual', 'escalation', 'dependency'] as const;
export type RestartReason = (typeof RESTART_REASONS)[number];

export const DEAD_LETTER_REASONS = [
  'overflow', // dropped by drop-oldest / drop-newest
  'stopped', // sent to an actor that is stopped for good (temporary child, system shut down)
  'poison', // panicked the actor maxConsecutivePanics times in a row
  'shutdown', // still queued when the system stopped
  'rejected', // refused by backpressure and not retried by the sender (tell returned false)
] as const;
export type DeadLetterReason = (typeof DEAD_LETTER_REASONS)[number];

export type ActorState = 'idle' | 'starting' | 'running' | 'restarting' | 'stopping' | 'stopped' | 'failed';

export interface HealthReport {
  ok: boolean;
  detail?: string;
}

export interface AskOptions {
  /** Rejects with ETHHOOK_ERR_ASK_TIMEOUT after this many ms. Default 5000. */
  timeoutMs?: number;
}

export interface ActorRef<M = unknown> {
  readonly path: string;
  readonly name: string;
  /** Enqueues. Returns false when the message was not accepted (full under backpressure, or dropped). */
  tell(msg: M): boolean;
  /** Enqueues, waiting for room when the mailbox is full under backpressure. */
  send(msg: M): Promise<void>;
  /** Enqueues and resolves with what the behaviour's `receive` returned. */
  ask<R = unknown>(msg: M, options?: AskOptions): Promise<R>;
}

export interface ActorContext<M = unknown> {
  readonly self: ActorRef<M>;
  readonly path: string;
  readonly name: string;
  /** pino child logger bound to `{ actor: path }`. */
  readonly log: Logger;
  /** 1 for the first incarnation, +1 for each restart. */
  readonly incarnation: number;
  /** Looks up another actor by path (`/pipeline/matcher`) or unique name. */
  lookup<T = unknown>(pathOrName: string): ActorRef<T> | undefined;
  /**
   * Reports a failure that did not come from a handler (a placed child process died, a socket layer gave
   * up): the supervisor treats it like a panic with the given reason.
   */
  fail(error: unknown, reason?: 'crash' | 'health'): void;
  /** Ends this actor normally: a transient or temporary child is then not restarted. */
  stopSelf(): void;
}

export interface Behaviour<M = unknown> {
  preStart?(ctx: ActorContext<M>): void | Promise<void>;
  receive(msg: M, ctx: ActorContext<M>): unknown;
  postStop?(ctx: ActorContext<M>): void | Promise<void>;
  preRestart?(reason: RestartReason, error: unknown, ctx: ActorContext<M>): void | Promise<void>;
  health?(): HealthReport | Promise<HealthReport>;
}

export type BehaviourFactory<M = unknown> = () => Behaviour<M>;

export interface MailboxSpec {
  capacity: number;
  overflow: OverflowPolicy;
  /** Messages handled per drain before yielding to other actors and the event loop. */
  throughput?: number;
}

export type RestartType = 'permanent' | 'transient' | 'temporary';
export type Strategy = 'one-for-one' | 'one-for-all' | 'rest-for-one';

export interface IntensitySpec {
  maxRestarts: number;
  withinMs: number;
}

export interface BackoffSpec {
  minMs: number;
  maxMs: number;
  factor: number;
  /** 0..1: the delay is drawn uniformly from [d*(1-jitter), d*(1+jitter)], clamped to [minMs, maxMs]. */
  jitter: number;
  /** After this long without a failure the next delay starts again at minMs. */
  resetAfterMs: number;
}

/**
 * Where a worker's behaviour runs. `local` is in this process (the default). `forked` and `threaded`
 * run it through comedy in a child process or worker thread; the module must export a factory
 * function named `exportName` returning the behaviour.
 */
export type PlacementSpec = { mode: 'local' } | { mode: 'forked' | 'threaded'; module: string; exportName: string; args?: unknown };

export interface WorkerSpec<M = unknown> {
  kind: 'worker';
  name: string;
  /** Builds the behaviour of each incarnation. Required for local workers; placed ones build it in the child. */
  behaviour?: BehaviourFactory<M>;
  restart?: RestartType;
  shutdownTimeoutMs?: number;
  mailbox?: Partial<MailboxSpec>;
  placement?: PlacementSpec;
  /** A message that panics the actor this many times in a row goes to dead letters. Default 3. */
  maxConsecutivePanics?: number;
  /** Polls `behaviour.health()`; `failures` failed polls in a row restart it with reason `health`. */
  healthCheck?: { intervalMs: number; failures: number };
}

export interface SupervisorSpec {
  kind: 'supervisor';
  name: string;
  strategy: Strategy;
  intensity?: IntensitySpec;
  backoff?: Partial<BackoffSpec>;
  restart?: RestartType;
  shutdownTimeoutMs?: number;
  children: ChildSpec[];
}

export type ChildSpec = WorkerSpec<unknown> | SupervisorSpec;

/** What observers of the tree see (`system.events`), and what the admin API logs as audit context. */
export type SupervisionEvent =
  | { type: 'started'; path: string; incarnation: number; at: number }
  | { type: 'stopped'; path: string; at: number; normal: boolean }
  | { type: 'panic'; path: string; error: unknown; messageType: string; at: number }
  | { type: 'crash'; path: string; error: unknown; at: number }
  | { type: 'restarting'; path: string; reason: RestartReason; delayMs: number; at: number }
  | { type: 'escalated'; path: string; error: unknown; at: number }
  | { type: 'dead-letter'; path: string; reason: DeadLetterReason; messageType: string; at: number }
  | { type: 'shutdown'; path: '/'; at: number; reason: string };

/** A node of the tree as the admin API shows it (`GET /actors/health`). */
export interface ActorSnapshot {
  path: string;
  name: string;
  kind: 'worker' | 'supervisor';
  state: ActorState;
  restartType: RestartType;
  placement: PlacementSpec['mode'];
  pid: number | null;
  incarnation: number;
  mailbox: { size: number; capacity: number; overflow: OverflowPolicy } | null;
  restarts: number;
  panics: number;
  /** A worker's latest panic in this process: when, and its error's message (at most 500 characters). */
  lastPanic?: { at: number; message: string };
  children?: ActorSnapshot[];
}
