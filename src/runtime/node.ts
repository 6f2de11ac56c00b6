/**
 * What the actor system knows of a node of the tree, whether a worker (runtime/cell.ts) or a
 * supervisor (supervision/supervisor.ts). The runtime only talks to supervisors through `ParentLink`,
 * so it never imports the supervision layer.
 */
import type { ActorStats } from './stats.ts';
import type { ActorSnapshot, ActorState, RestartReason, RestartType } from './types.ts';

export interface TreeNode {
  readonly path: string;
  readonly name: string;
  readonly kind: 'worker' | 'supervisor';
  readonly restartType: RestartType;
  readonly shutdownTimeoutMs: number;
  readonly stats: ActorStats;
  readonly state: ActorState;
  parent: ParentLink;
  /** Starts a new incarnation (workers) or the children in order (supervisors). Rejects if it fails. */
  start(): Promise<void>;
  /** Stops gracefully within the node's shutdown timeout; never rejects. */
  stop(why: StopWhy): Promise<void>;
  snapshot(): ActorSnapshot;
  children(): readonly TreeNode[];
}

export interface StopWhy {
  /** Why the node stops: a restart reason, or `shutdown`/`manual-stop`/`escalation` for stops that end it. */
  cause: RestartReason | 'shutdown' | 'manual-stop' | 'normal';
  error?: unknown;
}

/** The parent's side: how a child reports failures and how manual operations reach the right supervisor. */
export interface ParentLink {
  readonly path: string;
  childFailed(child: TreeNode, reason: RestartReason, error: unknown): void;
  childExited(child: TreeNode): void;
  restartChild(child: TreeNode, reason: RestartReason): Promise<void>;
  stopChild(child: TreeNode): Promise<void>;
  startChild(child: TreeNode): Promise<void>;
  /** True while `child` stays stopped because of a manual stop, until a manual start or restart. */
  isManuallyStopped(child: TreeNode): boolean;
}
