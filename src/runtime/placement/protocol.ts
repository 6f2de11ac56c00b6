/**
 * What the parent and a placed child say to each other over comedy, on both sides of the boundary.
 *
 * - Parent → child, comedy topics: `started` (asked once after creation: did the behaviour build and its
 *   preStart succeed? answers a `Reply<null>`), `receive` (one kernel message; answers a `Reply`), `health` (answers
 *   a `Reply<HealthReport>`), `preRestart` (answers a `Reply<void>`). Stopping is comedy's own `destroy`,
 *   which runs the behaviour's `postStop` in the child.
 * - Child → parent, comedy topic `ctx` on the parent-side bridge actor: the child's `ActorContext` calls
 *   that only the parent can serve (tell/send/ask to itself or to another actor, `fail`, `stopSelf`).
 * - Every answer is a `Reply` envelope rather than a comedy rejection, because comedy turns a thrown error
 *   into its bare message; the envelope keeps the name, the `ETHHOOK_ERR_*` code, the context and the stack.
 *
 * Both sides are our own code, but a `ctx` request still crosses a process boundary, so the parent parses
 * it (`parseCtxRequest`) before acting on it.
 */
import { z } from 'zod';
import { EthhookError } from '../errors.ts';

export const TOPIC_STARTED = 'started';
export const TOPIC_RECEIVE = 'receive';
export const TOPIC_HEALTH = 'health';
export const TOPIC_PRE_RESTART = 'preRestart';
export const TOPIC_CTX = 'ctx';

export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  context?: Record<string, unknown>;
  stack?: string;
}

export type Reply<T = unknown> = { ok: true; value: T } | { ok: false; error: SerializedError };

/** What the parent sends in comedy's `customParameters` so the child can build the behaviour. */
export interface ChildParameters {
  mode: 'forked' | 'threaded';
  /** file: URL of the behaviour module. */
  moduleUrl: string;
  exportName: string;
  args: unknown;
  path: string;
  name: string;
  incarnation: number;
  logLevel: string;
}

const targetSchema = z.string().min(1).nullable(); // null = the placed actor itself

const ctxRequestSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('tell'), target: targetSchema, msg: z.unknown() }),
  z.object({ op: z.literal('send'), target: targetSchema, msg: z.unknown() }),
  z.object({ op: z.literal('ask'), target: targetSchema, msg: z.unknown(), timeoutMs: z.number().positive().optional() }),
  z.object({
    op: z.literal('fail'),
    reason: z.enum(['crash', 'health']).optional(),
    error: z.object({
      name: z.string(),
      message: z.string(),
      code: z.string().optional(),
      context: z.record(z.string(), z.unknown()).optional(),
      stack: z.string().optional(),
    }),
  }),
  z.object({ op: z.literal('stopSelf') }),
]);

export type CtxRequest = z.infer<typeof ctxRequestSchema>;

export function parseCtxRequest(input: unknown): CtxRequest {
  const parsed = ctxRequestSchema.safeParse(input);
  if (!parsed.success) {
    throw new EthhookError('ETHHOOK_ERR_PLACEMENT', 'malformed context request from a placed child', {
      issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
    });
  }
  return parsed.data;
}

/**
 * Duck-typed rather than `instanceof EthhookError`: in a child, the behaviour module and this one may hold
 * different copies of errors.ts (each tsx import has its own namespace).
 */
export function serializeError(err: unknown): SerializedError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const { code, context } = err as { code?: unknown; context?: unknown };
  return {
    name: err.name,
    message: err.message,
    stack: err.stack,
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof context === 'object' && context !== null ? { context: { ...context } } : {}),
  };
}

/** Rebuilds a child's error in this process: an `EthhookError` when it had a code, an `Error` otherwise. */
export function deserializeError(e: SerializedError, extraContext: Record<string, unknown> = {}): Error {
  const err = e.code
    ? new EthhookError(e.code, e.message, { ...e.context, ...extraContext })
    : Object.assign(new Error(e.message), { context: extraContext });
  err.name = e.name;
  if (e.stack) err.stack = e.stack;
  return err;
}

export function isReply(value: unknown): value is Reply {
  return typeof value === 'object' && value !== null && typeof (value as { ok?: unknown }).ok === 'boolean';
}

/** Runs `fn` and wraps its outcome in a `Reply`, without an extra promise when `fn` is synchronous. */
export function toReply(fn: () => unknown): Reply | Promise<Reply> {
  let value: unknown;
  try {
    value = fn();
  } catch (err) {
    return { ok: false, error: serializeError(err) };
  }
  if (value !== null && typeof value === 'object' && typeof (value as PromiseLike<unknown>).then === 'function') {
    return Promise.resolve(value).then(
      (v): Reply => ({ ok: true, value: v }),
      (err): Reply => ({ ok: false, error: serializeError(err) }),
    );
  }
  return { ok: true, value };
}
