/**
 * The ChainListener actor: `createChainListener(options)` returns the kernel behaviour that follows one
 * chain (listener.ts, follower.ts) and runs under the `chains` supervisor at
 * `/pipeline/chains/chain-listener:<chainId>`.
 *
 * Each block goes to `target` (the matcher) with `ask`; the cursor advances only on a `{ ok: true }`
 * reply. Any other reply, a timeout or a missing target is logged and the same message is asked again
 * after a backoff, forever: the listener never skips a block to get unstuck.
 *
 * It answers `{ type: 'chain.status' }` with a ChainStatus, and `{ type: 'chain.failover', provider,
 * holdMs }` (an operator moving the chain off a provider) with a ChainFailoverReply. `health()` fails only after a fatal error
 * (reorg deeper than the window, another chain, a cursor store without an orphaned block's logs), which
 * is also reported with `ctx.fail` so the supervisor sees a panic.
 */
import type { Registry } from 'prom-client';
import { EthhookError } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log.ts';
import type { ActorContext, Behaviour } from '../../runtime/types.ts';
import type { Kv } from '../../store/kv.ts';
import { CursorStore } from '../../store/cursors.ts';
import { backoffDelay, orStop, sleep } from './backoff.ts';
import type { ChainConfig } from '../../config/chain.ts';
import { throwIfStopped, type EmittedBlock } from './follower.ts';
import { ChainListener } from './listener.ts';
import {
  chainBlockAckSchema,
  type ChainBlockMessage,
  type ChainFailoverReply,
  type ChainListenerRequest,
  type ChainLog,
  type ChainStatus,
} from './messages.ts';
import { getChainMetrics } from './metrics.ts';
import type { ChainReadiness } from './readiness.ts';
import { pipelineStages } from '../../pipeline-stages.ts';

export { chainConfigSchema, type ChainConfig, type ChainConfigInput } from '../../config/chain.ts';
export { chainErrorCodes } from './errors.ts';
export {
  chainBlockMessageSchema,
  chainLogSchema,
  type ChainBlockMessage,
  type ChainFailoverReply,
  type ChainLog,
  type ChainStatus,
} from './messages.ts';
export { exportChainSeries, getChainMetrics } from './metrics.ts';
export { ChainReadiness } from './readiness.ts';

export interface ChainListenerOptions {
  chain: ChainConfig;
  store: Kv;
  /** Path of the actor that receives the blocks (`/pipeline/matcher`). */
  target: string;
  /** Defaults to the actor's own logger. */
  logger?: Logger;
  registry: Registry;
  /** Told when the chain's node was reached and the start block pinned (the node's /ready). */
  readiness?: ChainReadiness;
}

export function createChainListener(options: ChainListenerOptions): Behaviour<ChainListenerRequest> {
  const { chain, target } = options;
  const stages = pipelineStages(options.registry);
  let listener: ChainListener | null = null;

  const emit = async (ctx: ActorContext<ChainListenerRequest>, log: Logger, msg: ChainBlockMessage, signal: AbortSignal) => {
    if (!msg.removed) stages.reached('fetched', msg.seenAt, Date.now());
    for (let attempt = 1; ; attempt++) {
      throwIfStopped(signal);
      const ref = ctx.lookup(target);
      let why: string;
      if (!ref) {
        why = 'target not found';
      } else {
        try {
          const reply = chainBlockAckSchema.safeParse(await orStop(ref.ask(msg, { timeoutMs: chain.ackTimeoutMs }), signal));
          if (reply.success && reply.data.ok) return;
          why = 'target did not acknowledge';
        } catch (err) {
          throwIfStopped(signal);
          why = err instanceof Error ? err.message : String(err);
        }
      }
      if (attempt === 1 || attempt % 10 === 0) {
        log.warn({ target, block: msg.blockNumber, removed: msg.removed, attempt, why }, 'block not acknowledged: asking again');
      }
      await sleep(backoffDelay(attempt, chain.reconnect), signal);
    }
  };

  const stop = async () => {
    const current = listener;
    listener = null;
    await current?.stop();
  };

  return {
    async preStart(ctx) {
      const log = (options.logger ?? ctx.log).child({ chain: chain.name, chainId: chain.chainId });
      listener = new ChainListener({
        config: chain,
        cursors: new CursorStore<EmittedBlock, ChainLog>(options.store),
        metrics: getChainMetrics(options.registry),
        log,
        emit: (msg, signal) => emit(ctx, log, msg, signal),
        onFatal: (err) => ctx.fail(err),
        onReady: () => options.readiness?.ready(chain.chainId),
      });
      await listener.start();
    },
    receive(msg): ChainStatus | ChainFailoverReply {
      if (msg?.type === 'chain.status' && listener) return listener.status();
      if (
        msg?.type === 'chain.failover' &&
        listener &&
        typeof msg.provider === 'string' &&
        Number.isSafeInteger(msg.holdMs) &&
        msg.holdMs >= 0
      ) {
        try {
          return { ok: true, ...listener.failover(msg.provider, msg.holdMs) };
        } catch (err) {
          if (err instanceof EthhookError) return { ok: false, error: { code: err.code, message: err.message, context: err.context } };
          throw err;
        }
      }
      throw new EthhookError('ETHHOOK_ERR_CHAIN_UNKNOWN_MESSAGE', 'chain listener: unknown message', {
        chainId: chain.chainId,
        messageType: String((msg as { type?: unknown } | null)?.type),
      });
    },
    postStop: stop,
    preRestart: stop,
    health() {
      return listener?.health() ?? { ok: false, detail: 'not started' };
    },
  };
}
