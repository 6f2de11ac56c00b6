/**
 * The ChainListener actor: `createChainListener(options)` returns the kernel behaviour that follows one
 * chain (listener.ts, follower.ts) and runs under the `chains` supervisor at
 * `/pipeline/chains/chain-listener:<chainId>`.
 *
 * Each block goes to `target` (the matcher) with `ask`; the cursor advances only on a `{ ok: true }`
 * reply. Any other reply, a timeout or a missing target is logged and the same message is asked again
 * after a backoff, forever: the listener never skips a block to get unstuck. A `chain.finality`
 * message (the chain's finality moved between blocks, messages.ts) is asked once, with the fence too;
 * the listener sends it again after its next finality poll if it was not acknowledged.
 *
 * In a cluster (src/cluster/coordinator.ts) the chain's `lease` gate decides the mode: while this
 * instance holds the lease the listener ingests, its cursor writes fenced by the lease (src/store/
 * fenced-kv.ts) and every block sent with the fence, which the matcher's writes carry; otherwise it
 * only follows the heads (listener.ts, `follow`). Each change of the gate stops the listener and starts
 * it again in the other mode, reading the cursor afresh from the store (another instance may have
 * moved it). A write refused with ETHHOOK_ERR_LEASE_LOST makes the coordinator check the lease at once.
 * Without a gate the listener ingests.
 *
 * It answers `{ type: 'chain.status' }` with a ChainStatus, and `{ type: 'chain.failover', provider,
 * holdMs }` (an operator moving the chain off a provider) with a ChainFailoverReply, and `{ type:
 * 'chain.history', from, to, filter }` (a Backfill, src/actors/backfill/) with a HistoryReadReply. `health()` fails only after a fatal error
 * (reorg deeper than the window, another chain, a cursor store without an orphaned block's logs), which
 * is also reported with `ctx.fail` so the supervisor sees a panic.
 */
import type { Registry } from 'prom-client';
import { EthhookError } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log.ts';
import type { ActorContext, Behaviour } from '../../runtime/types.ts';
import { isLeaseLost, type LeaseGate } from '../../cluster/coordinator.ts';
import type { Kv, KvFence } from '../../store/kv.ts';
import { CursorStore } from '../../store/cursors.ts';
import { fencedKv } from '../../store/fenced-kv.ts';
import { backoffDelay, orStop, sleep } from './backoff.ts';
import type { ChainConfig } from '../../config/chain.ts';
import { throwIfStopped, type EmittedBlock } from './follower.ts';
import { ChainListener } from './listener.ts';
import {
  chainBlockAckSchema,
  type ChainBlockMessage,
  type ChainFailoverReply,
  type ChainFinalityMessage,
  type ChainHistoryRequest,
  type ChainListenerRequest,
  type HistoryReadReply,
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
  type HistoryBlock,
  type HistoryReadReply,
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
  /** The chain's lease in the cluster; absent: this instance always ingests. */
  lease?: LeaseGate;
}

export function createChainListener(options: ChainListenerOptions): Behaviour<ChainListenerRequest> {
  const { chain, target } = options;
  const stages = pipelineStages(options.registry);
  const gate = options.lease;
  let listener: ChainListener | null = null;
  let unsubscribe: (() => void) | undefined;
  /** Mode changes, one after another. */
  let switching: Promise<void> = Promise.resolve();
  let stopped = false;

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
          if (reply.success && reply.data.ok) return reply.data.persisted === true;
          if (reply.success && reply.data.code === 'ETHHOOK_ERR_LEASE_LOST') gate?.suspect();
          why = reply.success && typeof reply.data.code === 'string' ? `target refused: ${reply.data.code}` : 'target did not acknowledge';
        } catch (err) {
          throwIfStopped(signal);
          if (isLeaseLost(err)) gate?.suspect();
          why = err instanceof Error ? err.message : String(err);
        }
      }
      if (attempt === 1 || attempt % 10 === 0) {
        log.warn({ target, block: msg.blockNumber, removed: msg.removed, attempt, why }, 'block not acknowledged: asking again');
      }
      await sleep(backoffDelay(attempt, chain.reconnect), signal);
    }
  };

  /** A `chain.finality` message, asked once: whether the target acknowledged it. */
  const tellFinality = async (ctx: ActorContext<ChainListenerRequest>, log: Logger, msg: ChainFinalityMessage, signal: AbortSignal) => {
    const ref = ctx.lookup(target);
    if (!ref) return false;
    try {
      const reply = chainBlockAckSchema.safeParse(await orStop(ref.ask(msg, { timeoutMs: chain.ackTimeoutMs }), signal));
      if (reply.success && reply.data.ok) return true;
      if (reply.success && reply.data.code === 'ETHHOOK_ERR_LEASE_LOST') gate?.suspect();
    } catch (err) {
      throwIfStopped(signal);
      if (isLeaseLost(err)) gate?.suspect();
      log.debug({ target, why: err instanceof Error ? err.message : String(err) }, 'chain finality not acknowledged');
    }
    return false;
  };

  const stopListener = async () => {
    const current = listener;
    listener = null;
    await current?.stop();
  };

  /** A listener in the mode `fence` says (ingest while it is defined), in place of the current one. */
  const restart = (ctx: ActorContext<ChainListenerRequest>, fence: KvFence | undefined): Promise<void> => {
    switching = switching.then(async () => {
      await stopListener();
      if (stopped) return;
      const log = (options.logger ?? ctx.log).child({ chain: chain.name, chainId: chain.chainId });
      const store = gate && fence ? fencedKv(options.store, gate) : options.store;
      const next = new ChainListener({
        config: chain,
        cursors: new CursorStore<EmittedBlock, ChainLog>(store),
        metrics: getChainMetrics(options.registry),
        log,
        emit: (msg, signal) => emit(ctx, log, fence ? { ...msg, fence } : msg, signal),
        tellFinality: (finality, anchor, signal) =>
          tellFinality(
            ctx,
            log,
            { type: 'chain.finality', chainId: chain.chainId, finality, anchor, seenAt: Date.now(), ...(fence ? { fence } : {}) },
            signal,
          ),
        onFatal: (err) => ctx.fail(err),
        onReady: () => options.readiness?.ready(chain.chainId),
        mode: gate && !fence ? 'follow' : 'ingest',
      });
      listener = next;
      await next.start();
    });
    return switching;
  };

  /** A Backfill's read; every failure is an answer, not a panic of the listener. */
  const readHistory = async (msg: ChainHistoryRequest): Promise<HistoryReadReply> => {
    try {
      if (!listener)
        throw new EthhookError('ETHHOOK_ERR_LISTENER_STOPPED', 'the chain listener is not running', { chainId: chain.chainId });
      const read = await listener.readHistory(msg.from, msg.to, msg.filter);
      return { ok: true, ...read };
    } catch (err) {
      if (err instanceof EthhookError) return { ok: false, error: { code: err.code, message: err.message, context: err.context } };
      return { ok: false, error: { code: 'ETHHOOK_ERR_RPC_ERROR', message: String((err as Error)?.message ?? err), context: {} } };
    }
  };

  const stop = async () => {
    stopped = true;
    unsubscribe?.();
    await switching.catch(() => undefined);
    await stopListener();
  };

  return {
    async preStart(ctx) {
      stopped = false;
      unsubscribe = gate?.subscribe((fence) => restart(ctx, fence));
      await restart(ctx, gate?.current());
    },
    receive(msg): ChainStatus | ChainFailoverReply | Promise<HistoryReadReply> {
      if (msg?.type === 'chain.status' && listener) return listener.status();
      if (msg?.type === 'chain.history' && Number.isSafeInteger(msg.from) && Number.isSafeInteger(msg.to) && msg.from <= msg.to) {
        return readHistory(msg);
      }
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
