/**
 * The child side of a placed behaviour, inside the process (forked) or worker thread (threaded) that
 * comedy created. Loaded by child-host.cjs through tsx.
 *
 * - Imports the behaviour module, calls `module[exportName](args)` (it may return a promise) and runs
 *   the behaviour's `preStart` with a child-side `ActorContext`. A failure there is kept and answered to
 *   the parent's `started` request rather than thrown at comedy, which would reduce it to a message and
 *   print it to the console.
 * - `receive`, `health` and `preRestart` answer `Reply` envelopes (protocol.ts), so a handler that throws
 *   reaches the parent as a rejection with its name, code and stack.
 * - The context: `log` is a pino logger of this process bound to the actor path. `self`, `lookup`,
 *   `fail` and `stopSelf` are forwarded to the parent, which owns the mailboxes and the supervisor.
 *   Calls made before the parent has confirmed the start (from `preStart`) are held until then, so a
 *   `preStart` may start work that talks to the parent but must not await an answer from it.
 *   `lookup` cannot know synchronously whether the actor exists, so it always returns a forwarding ref:
 *   a `tell` to an unknown actor is logged by the parent and dropped, `send` and `ask` reject with
 *   ETHHOOK_ERR_ACTOR_NOT_FOUND. `tell` returns true once handed to the parent (the parent's mailbox
 *   decides later).
 * - The parent decides when a forked child ends: comedy's SIGINT/SIGTERM handlers (exit 0) are replaced
 *   by ones that ignore the signal, so a signal to the whole process group (Ctrl-C, systemd's
 *   control-group kill) stops the node through its graceful shutdown instead of killing children under
 *   it, which the parent would report as crashes. The child exits when its IPC channel closes (the
 *   parent died) instead of waiting for comedy's 15 s parent ping; SIGKILL still ends it at once.
 */
import { threadId } from 'node:worker_threads';
import { EthhookError } from '../errors.ts';
import { createLogger, type Logger } from '../log.ts';
import type { ActorContext, ActorRef, AskOptions, Behaviour, RestartReason } from '../types.ts';
import {
  TOPIC_CTX,
  deserializeError,
  isReply,
  serializeError,
  toReply,
  type ChildParameters,
  type CtxRequest,
  type Reply,
  type SerializedError,
} from './protocol.ts';

/** The part of comedy's child-side actor (ForkedActorChild / ThreadedActorChild) this module uses. */
interface ComedySelf {
  getCustomParameters(): ChildParameters;
  getParent(): {
    send(topic: string, msg: unknown): PromiseLike<unknown>;
    sendAndReceive(topic: string, msg: unknown): PromiseLike<unknown>;
  };
  getSystem(): { sigintHandler?: () => void; sigtermHandler?: () => void };
}

export interface ChildRuntime {
  /** Whether the behaviour was built and its preStart succeeded (the parent asks once, after creation). */
  started(): Reply;
  receive(msg: unknown): Reply | Promise<Reply>;
  health(): Reply | Promise<Reply>;
  preRestart(req: { reason: RestartReason; error: SerializedError }): Reply | Promise<Reply>;
  stop(): Promise<void>;
}

type ImportModule = (url: string) => Promise<Record<string, unknown>>;

export async function startChildRuntime(self: ComedySelf, importModule: ImportModule): Promise<ChildRuntime> {
  const params = self.getCustomParameters();
  takeOverSignals(self, params.mode);
  const log = createLogger({ level: params.logLevel }).child({
    actor: params.path,
    placement: params.mode,
    ...(params.mode === 'threaded' ? { threadId } : {}),
  });
  const parent = self.getParent();
  // comedy answers the parent's create request only after preStart, and the parent takes the first
  // message back as that answer: context calls wait until the parent's `started` request has come.
  let parentListening!: () => void;
  const listening = new Promise<void>((resolve) => (parentListening = resolve));
  const ctx = childContext(params, gated(parent, listening), log);
  let behaviour: Behaviour;
  try {
    behaviour = await buildBehaviour(params, importModule);
    await behaviour.preStart?.(ctx);
  } catch (err) {
    const failure: Reply = { ok: false, error: serializeError(err) };
    return { started: () => failure, receive: () => failure, health: () => failure, preRestart: () => failure, stop: async () => {} };
  }

  return {
    started: () => {
      parentListening();
      return { ok: true, value: null };
    },
    receive: (msg) => toReply(() => behaviour.receive(msg, ctx)),
    health: () => toReply(() => (behaviour.health ? behaviour.health() : { ok: true })),
    preRestart: (req) => toReply(() => behaviour.preRestart?.(req.reason, deserializeError(req.error), ctx)),
    async stop() {
      try {
        await behaviour.postStop?.(ctx);
      } catch (err) {
        log.error({ err }, 'postStop of the placed behaviour failed');
      }
    },
  };
}

async function buildBehaviour(params: ChildParameters, importModule: ImportModule): Promise<Behaviour> {
  const mod = await importModule(params.moduleUrl);
  const factory = mod[params.exportName];
  if (typeof factory !== 'function') {
    throw new EthhookError('ETHHOOK_ERR_PLACEMENT', `${params.moduleUrl} has no function export "${params.exportName}"`, {
      actor: params.path,
    });
  }
  const behaviour: unknown = await (factory as (args: unknown) => unknown)(params.args);
  if (typeof behaviour !== 'object' || behaviour === null || typeof (behaviour as Behaviour).receive !== 'function') {
    throw new EthhookError('ETHHOOK_ERR_PLACEMENT', `"${params.exportName}" did not return a behaviour (no receive)`, {
      actor: params.path,
    });
  }
  return behaviour as Behaviour;
}

function takeOverSignals(self: ComedySelf, mode: ChildParameters['mode']): void {
  if (mode !== 'forked') return; // a worker thread receives no signals
  const system = self.getSystem();
  if (system.sigintHandler) process.removeListener('SIGINT', system.sigintHandler);
  if (system.sigtermHandler) process.removeListener('SIGTERM', system.sigtermHandler);
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
  process.once('disconnect', () => process.exit(0));
}

type Parent = ReturnType<ComedySelf['getParent']>;

/** The parent, with every call held until `ready` resolves. */
function gated(parent: Parent, ready: Promise<void>): Parent {
  return {
    send: (topic, msg) => ready.then(() => parent.send(topic, msg)),
    sendAndReceive: (topic, msg) => ready.then(() => parent.sendAndReceive(topic, msg)),
  };
}

function childContext(params: ChildParameters, parent: Parent, log: Logger): ActorContext {
  const request = (req: CtxRequest): Promise<unknown> => Promise.resolve(parent.sendAndReceive(TOPIC_CTX, req)).then(unwrapReply);
  const ref = (target: string | null, path: string, name: string): ActorRef => ({
    path,
    name,
    tell(msg: unknown): boolean {
      Promise.resolve(parent.send(TOPIC_CTX, { op: 'tell', target, msg } satisfies CtxRequest)).catch((err: unknown) =>
        log.warn({ err, target: path }, 'tell from a placed child did not reach the parent'),
      );
      return true;
    },
    async send(msg: unknown): Promise<void> {
      await request({ op: 'send', target, msg });
    },
    ask<R>(msg: unknown, options?: AskOptions): Promise<R> {
      return request({ op: 'ask', target, msg, timeoutMs: options?.timeoutMs }) as Promise<R>;
    },
  });
  const notify = (req: CtxRequest): void => {
    Promise.resolve(parent.send(TOPIC_CTX, req)).catch((err: unknown) =>
      log.error({ err, op: req.op }, 'a placed child could not reach its parent'),
    );
  };

  return {
    self: ref(null, params.path, params.name),
    path: params.path,
    name: params.name,
    log,
    incarnation: params.incarnation,
    lookup<T>(pathOrName: string): ActorRef<T> {
      return ref(pathOrName, pathOrName, pathOrName.slice(pathOrName.lastIndexOf('/') + 1));
    },
    fail(error: unknown, reason?: 'crash' | 'health'): void {
      notify({ op: 'fail', error: serializeError(error), reason });
    },
    stopSelf(): void {
      notify({ op: 'stopSelf' });
    },
  };
}

function unwrapReply(reply: unknown): unknown {
  if (!isReply(reply)) throw new EthhookError('ETHHOOK_ERR_PLACEMENT', 'malformed reply from the parent');
  if (reply.ok) return reply.value;
  throw deserializeError(reply.error);
}
