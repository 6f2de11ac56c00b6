/**
 * The admin routes over the cluster (src/cluster/coordinator.ts):
 *
 *   GET  /v1/cluster              read              { cluster: { self, leaseMs, heartbeatMs, instances, leases } }
 *        instances: [{ id, version, startedAt, heartbeatAt, live, claims, leases: [name], heights: { chainId: n } }]
 *        (heartbeatAt, leases and heights as of each instance's last heartbeat; claims: outbox jobs it has
 *        in hand now), leases: [{ name, holder, epoch, expiresAt }] (`chain:<chainId>`, `governance`).
 *   POST /admin/cluster/release   operate, audited  { "chain": <chainId> }  { released: { chain, holder, holdMs } }
 *        hands the chain's ingestion to another instance (planned maintenance): its holder stops and may
 *        not take it back for `holdMs` (2 × leaseMs); another live instance takes it within a heartbeat.
 *        Any instance answers it, holder or not. A chain the cluster does not follow: 404
 *        ETHHOOK_ERR_CLUSTER_CHAIN_UNKNOWN naming `chain`.
 *
 * A LevelDB node is a cluster of one: it lists itself and its leases.
 */
import { z } from 'zod';
import type { ClusterCoordinator } from '../../cluster/coordinator.ts';
import { defineRoute, type Route } from './router.ts';

export const ReleaseBody = z.strictObject({
  chain: z.number({ error: 'must be the id of a chain the cluster follows' }).int().positive().max(Number.MAX_SAFE_INTEGER),
});
export type ReleaseBody = z.infer<typeof ReleaseBody>;

export function clusterRoutes(coordinator: Pick<ClusterCoordinator, 'status' | 'release'>): Route[] {
  return [
    defineRoute({
      method: 'GET',
      path: '/v1/cluster',
      auth: 'read',
      handle: async () => ({ json: { cluster: await coordinator.status() } }),
    }),
    defineRoute<ReleaseBody>({
      method: 'POST',
      path: '/admin/cluster/release',
      auth: 'operate',
      body: ReleaseBody,
      audit: { action: 'cluster.release', target: ({ body }) => `chain:${body.chain}` },
      handle: async ({ body }) => ({ json: { released: await coordinator.release(body.chain) } }),
    }),
  ];
}
