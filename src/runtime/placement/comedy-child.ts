/**
 * One placed child, started and stopped through comedy 2.1.7 (`mode: 'forked' | 'threaded'`).
 *
 * `startComedyChild` creates a comedy system for this one child (its root actor is the `ctx` bridge that
 * serves the child's context calls), creates the actor from child-host.cjs by module path with the
 * `ChildParameters` as comedy `customParameters`, and resolves once the child has built its behaviour
 * and run `preStart` (it asks the child `started`). It rejects with ETHHOOK_ERR_PLACEMENT (the child's
 * own error as `cause`) when the child fails to start, exits while starting, or does not answer within
 * `startTimeoutMs`; the child is then gone.
 *
 * comedy is used as-is where it serves us (fork / worker creation, message transport, request-reply,
 * the destroy handshake, the child's parent ping) and worked around where it does not — each point below
 * was read in node_modules/comedy/lib and checked by test/integration/placement*.test.ts:
 * - No public crash event: ForkedActorParent marks itself 'crashed' on the process `exit`, and
 *   ThreadedActorParent only logs the worker `exit` and leaves in-flight requests pending forever.
 *   So we listen to the ChildProcess / Worker comedy holds (`workerProcess` / `worker`) ourselves.
 *   A Worker `error` without a listener would also be rethrown in the parent: we listen to it.
 * - Restarts are the supervisor's: comedy respawns only with `onCrash: 'respawn'`, which we never set.
 * - Its actor system installs SIGINT/SIGTERM handlers that call `process.exit(0)`: removed at once, the
 *   kernel owns the signals. Its logs are turned off (`test: true` is its only switch that also
 *   silences the logger-configuration banner; it also skips reading `actors.json`).
 * - Leftovers after a crash: the 1 s request-timeout interval (not unref'd, it would keep the node alive)
 *   and the parent `exit` listener are only removed by a completed destroy handshake, so `release()`
 *   removes them. A worker thread keeps running after comedy's destroy: `stop()` terminates it.
 * - The child's execArgv is the parent's (comedy does not take one): child-host.cjs loads tsx itself,
 *   and a parent started with `-e` / `-p` is refused (every child would run that script again).
 */
import type { ChildProcess } from 'node:child_process';
import type { Worker } from 'node:worker_threads';
import { EthhookError } from '../errors.ts';
import { sourcePath } from '../source-dir.ts';
import { TOPIC_STARTED, deserializeError, isReply, type ChildParameters } from './protocol.ts';

const HOST_MODULE = sourcePath('runtime/placement/child-host.cjs');
function adjustExitListenerLimit(by: number): void {
  const max = process.getMaxListeners();
  if (max !== 0) process.setMaxListeners(Math.max(10, max + by));
}

/** Part of a stop's budget kept for the SIGKILL / terminate fallback. */
const KILL_RESERVE_MS = 1_000;
/** After SIGKILL, how long to wait for the exit event before giving up on it (it comes within ms). */
const KILL_GRACE_MS = 2_000;

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

export interface ComedyChild {
  /** Child pid (forked) or this process's pid (threaded). */
  readonly pid: number;
  /** Sends one request and resolves with the child's answer (a `Reply`, see protocol.ts). */
  request(topic: string, msg?: unknown): PromiseLike<unknown>;
  /** Called once when the process or thread ends, whatever the cause. */
  onExit(listener: (exit: ChildExit) => void): void;
  readonly exited: boolean;
  /**
   * Destroy handshake (runs the child's postStop), then waits for the end; SIGKILL / terminate when that
   * has not happened a little before `timeoutMs` (the fallback's reserve: min(1 s, timeoutMs / 5)).
   */
  stop(timeoutMs: number): Promise<void>;
  /** Frees comedy's parent-side leftovers once the child has ended on its own. */
  release(): void;
}

/** The comedy 2.1.7 internals relied on (not in its index.d.ts). */
interface ComedySystem {
  rootActor(): PromiseLike<unknown>;
  createActor(definition: string, parent: unknown, config: object): PromiseLike<ComedyProxy>;
  destroy(): PromiseLike<void>;
  sigintHandler?: () => void;
  sigtermHandler?: () => void;
}
interface ComedyProxy {
  initialize(): PromiseLike<unknown>;
  getWrapped(): ComedyActor;
}
interface ComedyActor {
  sendAndReceive(topic: string, ...message: unknown[]): PromiseLike<unknown>;
  destroy(): PromiseLike<unknown>;
  workerProcess?: ChildProcess;
  worker?: Worker;
  timeoutWorkerInterval?: NodeJS.Timeout;
  exitHandler?: () => void;
}

export async function startComedyChild(
  params: ChildParameters,
  bridge: (req: unknown) => unknown,
  startTimeoutMs: number,
): Promise<ComedyChild> {
  if (params.mode === 'forked') refuseEvalExecArgv(params.path);
  // Imported on first use: a node that places nothing would pay ~10 MB of heap for comedy (bluebird,
  // babel-polyfill, winston) and the 17 MB buffer its bson allocates at load.
  const { createSystem } = await import('comedy');
  // comedy adds a process 'exit' listener per forked child (removed by release): past ten children
  // Node would warn of a leak that is not one, so each child raises the limit by one while it lives.
  adjustExitListenerLimit(1);
  let limitReleased = false;
  const system = createSystem({
    test: true,
    config: {},
    loggerConfig: { categories: { Default: 'Silent' } },
    root: { ctx: bridge },
  }) as unknown as ComedySystem;
  if (system.sigintHandler) process.removeListener('SIGINT', system.sigintHandler);
  if (system.sigtermHandler) process.removeListener('SIGTERM', system.sigtermHandler);

  const root = await system.rootActor();
  // createActor + initialize rather than root.createChild: a failed createChild loses the actor object,
  // and with it the interval and process we must clean up.
  const proxy = await system.createActor(`/${HOST_MODULE}`, root, {
    mode: params.mode,
    name: params.name,
    customParameters: params,
  });
  const actor = proxy.getWrapped();
  const ctx = { path: params.path, placement: params.mode };

  let exit: ChildExit | null = null;
  const exitListeners: Array<(e: ChildExit) => void> = [];
  const onEnd = (e: ChildExit): void => {
    if (exit) return;
    exit = e;
    for (const l of exitListeners) l(e);
  };

  const initializing = Promise.resolve(proxy.initialize());
  let settled = false;
  initializing.then(
    () => (settled = true),
    () => (settled = true),
  );
  // comedy forks (or creates the worker) a few ticks into initialize(); hook its exit as soon as it exists.
  while (!actor.workerProcess && !actor.worker && !settled) await new Promise((r) => setImmediate(r));
  const proc = actor.workerProcess ?? null;
  const worker = actor.worker ?? null;
  let workerError: Error | undefined;
  proc?.once('exit', (code, signal) => onEnd({ code, signal }));
  worker?.on('error', (err) => (workerError = err));
  worker?.once('exit', (code) => onEnd({ code, signal: null, error: workerError }));

  const release = (): void => {
    if (!limitReleased) {
      limitReleased = true;
      adjustExitListenerLimit(-1);
    }
    if (actor.timeoutWorkerInterval) clearInterval(actor.timeoutWorkerInterval);
    if (actor.exitHandler) process.removeListener('exit', actor.exitHandler);
    Promise.resolve(system.destroy()).catch(() => {});
  };
  const ended = (ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      if (exit || (!proc && !worker)) return resolve(true);
      const timer = setTimeout(() => resolve(false), ms);
      exitListeners.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  const kill = async (): Promise<void> => {
    if (worker) await worker.terminate();
    else if (proc && !exit) {
      proc.kill('SIGKILL');
      await ended(KILL_GRACE_MS);
    }
  };

  try {
    const ready = initializing
      .then(() => actor.sendAndReceive(TOPIC_STARTED))
      .then((reply) => {
        if (!isReply(reply)) throw new Error('malformed answer to "started"');
        if (!reply.ok) {
          const cause = deserializeError(reply.error);
          throw new EthhookError('ETHHOOK_ERR_PLACEMENT', `placed behaviour failed to start: ${cause.message}`, ctx, { cause });
        }
      });
    const outcome = await Promise.race([
      ready.then(() => 'started' as const),
      ended(startTimeoutMs).then((gone) => (gone ? ('exited' as const) : ('timeout' as const))),
    ]);
    if (outcome !== 'started') {
      throw new EthhookError(
        'ETHHOOK_ERR_PLACEMENT',
        outcome === 'exited'
          ? `placed ${params.mode} child exited while starting (${describeExit(exit)})`
          : `placed ${params.mode} child did not start within ${startTimeoutMs} ms`,
        ctx,
      );
    }
  } catch (err) {
    await kill();
    release();
    if (err instanceof EthhookError) throw err;
    throw new EthhookError('ETHHOOK_ERR_PLACEMENT', `placed ${params.mode} child failed to start: ${errorMessage(err)}`, ctx, {
      cause: err,
    });
  }

  return {
    pid: proc?.pid ?? process.pid,
    request: (topic, msg) => actor.sendAndReceive(topic, msg),
    onExit(listener) {
      if (exit) listener(exit);
      else exitListeners.push(listener);
    },
    get exited() {
      return exit !== null;
    },
    async stop(timeoutMs) {
      if (!exit) {
        // Keep part of the budget for the SIGKILL / terminate fallback, so the whole stop fits in it.
        const deadline = Date.now() + timeoutMs - Math.min(KILL_RESERVE_MS, timeoutMs / 5);
        const destroyed = await Promise.race([
          Promise.resolve(actor.destroy()).then(
            () => true,
            () => false,
          ),
          ended(Math.max(0, deadline - Date.now())).then(() => false),
        ]);
        // Forked: the child exits by itself after the handshake. Threaded: comedy leaves the thread alive.
        const gone = destroyed && proc ? await ended(Math.max(0, deadline - Date.now())) : false;
        if (!gone) await kill();
      }
      release();
    },
    release,
  };
}

/**
 * comedy forks with this process's execArgv: under `node -e` / `-p` every child would evaluate the script
 * again instead of running comedy's worker — and fork children of its own if the script places actors.
 */
function refuseEvalExecArgv(path: string): void {
  const flag = process.execArgv.find((a) => /^(--eval|--print)(=|$)|^-[a-z]*[ep]$/.test(a));
  if (flag) {
    throw new EthhookError('ETHHOOK_ERR_PLACEMENT', `cannot fork a placed actor from a process started with ${flag}`, {
      path,
      placement: 'forked',
    });
  }
}

export function describeExit(exit: ChildExit | null): string {
  if (!exit) return 'still running';
  const parts = [exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`];
  if (exit.error) parts.push(exit.error.message);
  return parts.join(', ');
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
