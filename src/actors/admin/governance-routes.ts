/**
 * The admin routes over the GovernanceStream actor (`/governance-stream`, docs/governance.md):
 *
 *   POST /admin/governance/reconnect  operate, audited  drop the connection, connect again now   200 { ok: true }
 *   GET  /admin/governance/status     read              { governance: { connected, height, trustedKeys, lastError } }
 *
 * A node without a governance stream (no `governance.url`, no demo) answers both with 404
 * ETHHOOK_ERR_GOVERNANCE_NOT_CONFIGURED, so an operator sees at once that there is nothing to reconnect.
 * A stream an operator stopped answers 409 ETHHOOK_ERR_ACTOR_STOPPED at once (a stopped actor queues
 * messages unanswered: asking it would only time out).
 */
import { EthhookError } from '../../runtime/errors.ts';
import type { ActorRef, ActorState } from '../../runtime/types.ts';
import type { GovernanceReply, GovernanceStatus } from '../governance/messages.ts';
import { defineRoute, type Route } from './router.ts';
import { ACTOR_PATHS } from '../../tree.ts';

const ASK_TIMEOUT_MS = 5_000;

/** The part of the ActorSystem these routes use. */
export interface GovernanceRoutesSystem {
  lookup(path: string): ActorRef | undefined;
  find(path: string): { readonly state: ActorState } | undefined;
}

export function governanceRoutes(system: () => GovernanceRoutesSystem | undefined): Route[] {
  const ask = async (type: 'governance.reconnect' | 'governance.status'): Promise<GovernanceReply> => {
    const sys = system();
    if (sys === undefined) throw new EthhookError('ETHHOOK_ERR_ADMIN_NOT_READY', 'the node is still starting');
    const ref = sys.lookup(ACTOR_PATHS.governanceStream);
    if (ref === undefined) {
      throw new EthhookError(
        'ETHHOOK_ERR_GOVERNANCE_NOT_CONFIGURED',
        'this node runs no governance stream: set governance.url (and governance.publicKeys) to follow one',
      );
    }
    const state = sys.find(ACTOR_PATHS.governanceStream)?.state ?? 'stopped';
    if (state === 'stopped' || state === 'stopping') {
      throw new EthhookError(
        'ETHHOOK_ERR_ACTOR_STOPPED',
        'the governance stream is stopped; start it with POST /admin/actors/start {"actor":"governance-stream"}',
        { actor: ACTOR_PATHS.governanceStream },
      );
    }
    const reply = await ref.ask<GovernanceReply>({ type }, { timeoutMs: ASK_TIMEOUT_MS });
    if ('ok' in reply && !reply.ok) throw new EthhookError(reply.error.code, reply.error.message, reply.error.context);
    return reply;
  };
  return [
    defineRoute({
      method: 'POST',
      path: '/admin/governance/reconnect',
      auth: 'operate',
      audit: { action: 'governance.reconnect', target: () => ACTOR_PATHS.governanceStream },
      handle: async ({ log }) => {
        await ask('governance.reconnect');
        log.info('governance stream reconnect requested');
        return { json: { ok: true } };
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/admin/governance/status',
      auth: 'read',
      handle: async () => {
        const status = (await ask('governance.status')) as GovernanceStatus;
        return { json: { governance: status } };
      },
    }),
  ];
}
