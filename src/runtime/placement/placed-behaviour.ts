/**
 * The parent-side proxy of a behaviour placed in a child process (`forked`) or worker thread
 * (`threaded`). The kernel's actor cell runs it like any behaviour; the ref and the mailbox stay here.
 *
 * - `preStart(ctx)` starts the child through comedy: the child imports `module`, builds the behaviour with
 *   `module[exportName](args)` and runs its `preStart`. Rejects with ETHHOOK_ERR_PLACEMENT if that fails.
 * - `receive(msg)` sends the message to the child and resolves with what the child's `receive` returned,
 *   or rejects with the child's error (name, code, context and stack kept), so the kernel counts a panic.
 *   The kernel awaits each receive before the next, so FIFO and one-at-a-time hold across the boundary.
 * - A child that ends on its own (`kill -9`, uncaught exception, `process.exit`) is reported once through
 *   `ctx.fail(error, 'crash')` with an ETHHOOK_ERR_ACTOR_CRASH error; in-flight and later receives reject
 *   with that error. The supervisor decides the restart; comedy never respawns.
 * - `postStop` runs the child's `postStop` and ends the child within `stopTimeoutMs` (default 5000), then
 *   SIGKILLs it (forked) or terminates the thread. `preRestart` forwards to the child's `preRestart` and
 *   then ends the child the same way, so a restart never leaves the old child running. Both are idempotent.
 * - `health()` asks the child's `health()` (ok when it has none); not ok once the child is gone.
 * - `pid()` is the child's pid (threaded: this process's pid), null while no child is running.
 *
 * Options: `logger` (its level is the child's log level), `startTimeoutMs` (default 30000: a forked child
 * loads comedy and tsx before the module), `stopTimeoutMs` (default 5000), `healthTimeoutMs` (default 2000).
 */
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { EthhookError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { ActorContext, ActorRef, Behaviour, HealthReport, RestartReason } from '../types.ts';
import { describeExit, startComedyChild, type ChildExit, type ComedyChild } from './comedy-child.ts';
import {
  TOPIC_HEALTH,
  TOPIC_PRE_RESTART,
  TOPIC_RECEIVE,
  deserializeError,
  isReply,
  parseCtxRequest,
  serializeError,
  toReply,
  type ChildParameters,
  type CtxRequest,
  type Reply,
} from './protocol.ts';

export interface PlacedSpec {
  mode: 'forked' | 'threaded';
  /** Absolute path or file: URL of an ESM module (.ts or .js). */
  module: string;
  exportName: string;
  /** Passed to the factory; must survive JSON (forked) or structured clone (threaded). */
  args?: unknown;
}

export interface PlacementOptions {
  logger: Logger;
  startTimeoutMs?: number;
  stopTimeoutMs?: number;
  healthTimeoutMs?: number;
}

/** A behaviour run elsewhere: `pid()` names the process that runs it (the cell's snapshot reports it). */
export type PlacedBehaviour = Behaviour & { pid(): number | null };

const specSchema = z.object({
  mode: z.enum(['forked', 'threaded']),
  module: z.string().refine((m) => m.startsWith('file:') || isAbsolute(m), 'must be an absolute path or a file: URL'),
  exportName: z.string().min(1),
  args: z.unknown().optional(),
});

export function createPlacedBehaviour(spec: PlacedSpec, options: PlacementOptions): PlacedBehaviour {
  const parsed = specSchema.safeParse(spec);
  if (!parsed.success) {
    throw new EthhookError('ETHHOOK_ERR_INVALID_SPEC', 'invalid placement spec', {
      issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
    });
  }
  return new PlacedProxy(parsed.data, options);
}

class PlacedProxy implements PlacedBehaviour {
  private child: ComedyChild | null = null;
  private ctx: ActorContext | null = null;
  /** Set once the child is gone or stopping: every later receive rejects with it. */
  private gone: Error | null = null;
  private stopping: Promise<void> | null = null;
  private readonly inflight = new Set<(err: Error) => void>();

  constructor(
    private readonly spec: PlacedSpec,
    private readonly options: PlacementOptions,
  ) {}

  pid(): number | null {
    return this.child && !this.gone ? this.child.pid : null;
  }

  async preStart(ctx: ActorContext): Promise<void> {
    this.ctx = ctx;
    const params: ChildParameters = {
      mode: this.spec.mode,
      moduleUrl: this.spec.module.startsWith('file:') ? this.spec.module : pathToFileURL(this.spec.module).href,
      exportName: this.spec.exportName,
      args: this.spec.args,
      path: ctx.path,
      name: ctx.name,
      incarnation: ctx.incarnation,
      logLevel: this.options.logger.level,
    };
    const child = await startComedyChild(params, (req) => this.serveContext(req), this.options.startTimeoutMs ?? 30_000);
    this.child = child;
    child.onExit((exit) => this.onChildExit(exit));
    ctx.log.info({ placement: this.spec.mode, childPid: child.pid }, 'placed actor started');
  }

  receive(msg: unknown): Promise<unknown> {
    const child = this.child;
    if (!child || this.gone) return Promise.reject(this.gone ?? this.notRunning());
    return new Promise((resolve, reject) => {
      this.inflight.add(reject);
      child.request(TOPIC_RECEIVE, msg).then(
        (reply) => {
          this.inflight.delete(reject);
          if (isReply(reply)) {
            if (reply.ok) resolve(reply.value);
            else reject(deserializeError(reply.error, { actor: this.ctx?.path, placement: this.spec.mode }));
          } else reject(this.transportError('malformed reply from the placed child'));
        },
        (err: unknown) => {
          this.inflight.delete(reject);
          reject(this.gone ?? this.transportError(`message did not reach the placed child: ${errorMessage(err)}`, err));
        },
      );
    });
  }

  async health(): Promise<HealthReport> {
    const child = this.child;
    if (!child || this.gone) return { ok: false, detail: this.gone?.message ?? 'placed child not started' };
    try {
      const reply = await withTimeout(child.request(TOPIC_HEALTH), this.options.healthTimeoutMs ?? 2_000);
      if (!isReply(reply)) return { ok: false, detail: 'malformed health reply from the placed child' };
      return reply.ok ? (reply.value as HealthReport) : { ok: false, detail: reply.error.message };
    } catch (err) {
      return { ok: false, detail: `placed child health check failed: ${errorMessage(err)}` };
    }
  }

  async preRestart(reason: RestartReason, error: unknown): Promise<void> {
    const child = this.child;
    if (child && !this.gone) {
      const req = { reason, error: serializeError(error) };
      await withTimeout(child.request(TOPIC_PRE_RESTART, req), this.options.stopTimeoutMs ?? 5_000).catch((err: unknown) =>
        this.ctx?.log.warn({ err }, 'preRestart of the placed child failed'),
      );
    }
    await this.stop();
  }

  postStop(): Promise<void> {
    return this.stop();
  }

  private stop(): Promise<void> {
    this.stopping ??= this.stopChild();
    return this.stopping;
  }

  private async stopChild(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const pid = child.pid;
    this.gone ??= new EthhookError('ETHHOOK_ERR_ACTOR_STOPPED', 'placed actor is stopping', {
      actor: this.ctx?.path,
    });
    await child.stop(this.options.stopTimeoutMs ?? 5_000);
    this.rejectInflight(this.gone);
    this.ctx?.log.info({ placement: this.spec.mode, childPid: pid }, 'placed actor stopped');
  }

  private onChildExit(exit: ChildExit): void {
    if (this.gone) return; // stopping: the exit was asked for
    const err = new EthhookError('ETHHOOK_ERR_ACTOR_CRASH', `placed ${this.spec.mode} child ended unexpectedly (${describeExit(exit)})`, {
      actor: this.ctx?.path,
      placement: this.spec.mode,
      pid: this.child?.pid,
      exitCode: exit.code,
      signal: exit.signal,
    });
    this.gone = err;
    this.child?.release();
    this.ctx?.fail(err, 'crash');
    this.rejectInflight(err);
  }

  private rejectInflight(err: Error): void {
    for (const reject of this.inflight) reject(err);
    this.inflight.clear();
  }

  /** Serves the child's context calls (protocol.ts `ctx` requests) against the real parent context. */
  private serveContext(input: unknown): Reply | Promise<Reply> {
    return toReply(() => {
      const ctx = this.ctx;
      if (!ctx) throw this.notRunning();
      const req = parseCtxRequest(input);
      return this.applyContextRequest(ctx, req);
    });
  }

  private applyContextRequest(ctx: ActorContext, req: CtxRequest): unknown {
    switch (req.op) {
      case 'fail':
        return ctx.fail(deserializeError(req.error, { actor: ctx.path, placement: this.spec.mode }), req.reason);
      case 'stopSelf':
        return ctx.stopSelf();
      case 'tell': {
        const ref = this.resolveRef(ctx, req.target);
        if (ref) return ref.tell(req.msg);
        ctx.log.warn({ target: req.target }, 'tell from a placed child to an unknown actor dropped');
        return false;
      }
      case 'send':
        return this.requireRef(ctx, req.target).send(req.msg);
      case 'ask':
        return this.requireRef(ctx, req.target).ask(req.msg, { timeoutMs: req.timeoutMs });
    }
  }

  private resolveRef(ctx: ActorContext, target: string | null): ActorRef | undefined {
    return target === null ? ctx.self : ctx.lookup(target);
  }

  private requireRef(ctx: ActorContext, target: string | null): ActorRef {
    const ref = this.resolveRef(ctx, target);
    if (!ref) throw new EthhookError('ETHHOOK_ERR_ACTOR_NOT_FOUND', `no actor ${target}`, { actor: ctx.path, target });
    return ref;
  }

  private notRunning(): EthhookError {
    return new EthhookError('ETHHOOK_ERR_ACTOR_STOPPED', 'placed actor is not running', { actor: this.ctx?.path });
  }

  private transportError(message: string, cause?: unknown): EthhookError {
    return new EthhookError(
      'ETHHOOK_ERR_PLACEMENT',
      message,
      { actor: this.ctx?.path, placement: this.spec.mode, pid: this.child?.pid },
      { cause },
    );
  }
}

function withTimeout<T>(work: PromiseLike<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    Promise.resolve(work).then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
