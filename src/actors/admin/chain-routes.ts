/**
 * The admin routes over the chain listeners (`/pipeline/chains/chain-listener:<chainId>`):
 *
 *   POST /admin/chains/:chainId/reset-cursor  operate, audited  { "fromBlock": <n> | "latest" }
 *        200 { chain: { chainId, name, fromBlock }, actor: <snapshot> }
 *
 * A reset stops the chain's listener (waiting for it: nothing is emitted or persisted meanwhile),
 * forgets the chain's cursor, reorg window and block 0 (CursorStore.reset), and starts the listener
 * again: it verifies the chain anew and emits from `fromBlock`, or from the confirmed head at its
 * next session for `latest`. The recovery from ETHHOOK_ERR_CHAIN_MISMATCH (a chain reset) and from
 * ETHHOOK_ERR_REORG_TOO_DEEP (runbooks/chains.md). Nothing is retracted: what was emitted from the
 * forgotten cursor stays delivered. A chain id this node does not follow is a 404
 * ETHHOOK_ERR_CHAIN_NOT_CONFIGURED naming the `chainId` field; a bad body a 400 naming `fromBlock`. In a
 * cluster only the instance holding the chain's lease resets its cursor (its writes fenced by the
 * lease); another answers 409 ETHHOOK_ERR_CLUSTER_NOT_HOLDER naming the holder.
 */
import { z } from 'zod';
import { EthhookError } from '../../runtime/errors.ts';
import type { ActorRef, ActorSnapshot, ActorState } from '../../runtime/types.ts';
import { chainListenerName, chainListenerPath } from '../../tree.ts';
import type { ChainFailoverReply, ChainStatus } from '../chain-listener/index.ts';
import { defineRoute, type Route } from './router.ts';

/** `POST /admin/chains/:chainId/reset-cursor`. */
export const ResetCursorBody = z.strictObject({
  fromBlock: z.union([z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), z.literal('latest')], {
    error: 'must be a block number (an integer >= 0) or "latest"',
  }),
});
export type ResetCursorBody = z.infer<typeof ResetCursorBody>;

/** The longest hold an operator's failover may set: a day. */
export const MAX_FAILOVER_HOLD_MS = 86_400_000;

/** `POST /admin/chains/:chainId/failover`. */
export const FailoverBody = z.strictObject({
  provider: z.string({ error: "must be the name of one of the chain's providers" }).min(1).max(32),
  holdMs: z.number().int().min(0).max(MAX_FAILOVER_HOLD_MS, { error: 'must be an integer from 0 to 86400000 (a day)' }).default(3_600_000),
});
export type FailoverBody = z.infer<typeof FailoverBody>;

const ASK_TIMEOUT_MS = 5_000;

/** What the routes need of the node. */
export interface ChainRoutesDeps {
  /** Undefined while the node is still starting. */
  system: () =>
    | {
        stopActor(path: string): Promise<ActorSnapshot>;
        startActor(path: string): Promise<ActorSnapshot>;
        lookup(path: string): ActorRef | undefined;
        find(path: string): { readonly state: ActorState } | undefined;
      }
    | undefined;
  chains: ReadonlyArray<{ chainId: number; name: string }>;
  /** The chain's cursor store: in a cluster, its writes fenced by the chain's lease. */
  cursors: (chainId: number) => { reset(chainId: number, from: number | 'latest'): Promise<void> };
  /**
   * A cluster's view of the chain leases (src/cluster/coordinator.ts): a cursor is reset by the instance
   * that ingests the chain. Absent: this node ingests every chain.
   */
  leases?: { holds(chainId: number): boolean; holder(chainId: number): Promise<string | null> };
}

export function chainRoutes({ system, chains, cursors, leases }: ChainRoutesDeps): Route[] {
  const configured = (param: string) => {
    const chain = /^[1-9][0-9]{0,15}$/.test(param) ? chains.find((c) => c.chainId === Number(param)) : undefined;
    if (!chain) {
      throw new EthhookError(
        'ETHHOOK_ERR_CHAIN_NOT_CONFIGURED',
        `this node follows no chain ${param} (it follows ${chains.map((c) => c.chainId).join(', ') || 'none'})`,
        { field: 'chainId' },
      );
    }
    return chain;
  };
  const ask = async <R>(chainId: number, msg: object): Promise<R> => {
    const sys = system();
    if (sys === undefined) throw new EthhookError('ETHHOOK_ERR_ADMIN_NOT_READY', 'the node is still starting');
    const path = chainListenerPath(chainId);
    const ref = sys.lookup(path);
    const state = sys.find(path)?.state ?? 'stopped';
    if (!ref || state === 'stopped' || state === 'stopping') {
      throw new EthhookError(
        'ETHHOOK_ERR_ACTOR_STOPPED',
        `the chain listener is stopped; start it with POST /admin/actors/start {"actor":"${chainListenerName(chainId)}"}`,
        { actor: path },
      );
    }
    return ref.ask<R>(msg, { timeoutMs: ASK_TIMEOUT_MS });
  };
  return [
    defineRoute<FailoverBody>({
      method: 'POST',
      path: '/admin/chains/:chainId/failover',
      auth: 'operate',
      body: FailoverBody,
      audit: {
        action: 'chain.failover',
        target: ({ params, body }) => `${chainListenerPath(Number(params.chainId))} off ${body.provider}`,
      },
      handle: async ({ params, body, log }) => {
        const chain = configured(params.chainId!);
        const reply = await ask<ChainFailoverReply>(chain.chainId, {
          type: 'chain.failover',
          provider: body.provider,
          holdMs: body.holdMs,
        });
        if (!reply.ok) throw new EthhookError(reply.error.code, reply.error.message, reply.error.context);
        const { ok: _ok, ...failover } = reply;
        log.warn({ chainId: chain.chainId, chain: chain.name, ...failover, holdMs: body.holdMs }, 'chain provider failover by an operator');
        return { json: { chain: { chainId: chain.chainId, name: chain.name }, failover } };
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/admin/chains/:chainId',
      auth: 'read',
      handle: async ({ params }) => {
        const chain = configured(params.chainId!);
        return { json: { chain: await ask<ChainStatus>(chain.chainId, { type: 'chain.status' }) } };
      },
    }),
    defineRoute<ResetCursorBody>({
      method: 'POST',
      path: '/admin/chains/:chainId/reset-cursor',
      auth: 'operate',
      body: ResetCursorBody,
      audit: {
        action: 'chain.reset-cursor',
        target: ({ params, body }) => `${chainListenerPath(Number(params.chainId))} from ${body.fromBlock}`,
      },
      handle: async ({ params, body, log }) => {
        const chain = configured(params.chainId!);
        const sys = system();
        if (sys === undefined) throw new EthhookError('ETHHOOK_ERR_ADMIN_NOT_READY', 'the node is still starting');
        if (leases && !leases.holds(chain.chainId)) {
          const holder = await leases.holder(chain.chainId);
          throw new EthhookError(
            'ETHHOOK_ERR_CLUSTER_NOT_HOLDER',
            `chain ${chain.chainId} is ingested by ${holder === null ? 'no instance right now' : `instance ${holder}`}, not this one: reset its cursor there (GET /v1/cluster lists the holders)`,
            { field: 'chainId', holder },
          );
        }
        const path = chainListenerPath(chain.chainId);
        await sys.stopActor(path);
        // The listener is started again whatever the store said, so a failed reset leaves it as it was.
        const failed = await cursors(chain.chainId)
          .reset(chain.chainId, body.fromBlock)
          .then(
            () => null,
            (err: unknown) => ({ err }),
          );
        const actor = await sys.startActor(path);
        if (failed) throw failed.err;
        log.warn(
          { chainId: chain.chainId, chain: chain.name, fromBlock: body.fromBlock },
          'chain cursor reset: its reorg window and block 0 are forgotten',
        );
        return { json: { chain: { chainId: chain.chainId, name: chain.name, fromBlock: body.fromBlock }, actor } };
      },
    }),
  ];
}
