/**
 * `ethhook chain reset-cursor` for a stopped node: opens the node's store (`store.kind`: LevelDB's
 * `<dataDir>/db`, or the PostgreSQL store) itself and
 * does what `POST /admin/chains/:chainId/reset-cursor` does to a running one (CursorStore.reset):
 * forgets the chain's cursor, reorg window and block 0, and sets where its listener starts at the next
 * start of the node (block `from`, or the confirmed head for `latest`). A running node holds the
 * LevelDB lock: that is refused (ETHHOOK_ERR_STORE_LOCKED), never waited for; use the admin route. On
 * a PostgreSQL store the same is refused while any instance of the cluster is live (its heartbeat in
 * `cluster_instances` younger than `cluster.leaseMs`, src/cluster/store.ts).
 * The chain must be one the configuration follows (its `chains`, or the dev chain when it runs).
 */
import { join, resolve } from 'node:path';
import type { NodeConfig } from './config/schema.ts';
import { Registry } from 'prom-client';
import { EthhookError, isEthhookError } from './runtime/errors.ts';
import { createLogger } from './runtime/log.ts';
import { CursorStore } from './store/cursors.ts';
import { openStore, type OpenedStore } from './store/open.ts';
import { PgClusterStore } from './store/postgres/cluster.ts';

export interface ChainResetRequest {
  chainId: number;
  from: number | 'latest';
}

/** The chains a node with this configuration follows: id and name. */
export function followedChains(config: NodeConfig): Array<{ chainId: number; name: string }> {
  if (config.chains.length > 0) return config.chains.map((c) => ({ chainId: c.chainId, name: c.name }));
  return config.devChain.enabled ? [{ chainId: config.devChain.chainId, name: 'dev' }] : [];
}

export async function resetChainCursorOffline(config: NodeConfig, request: ChainResetRequest): Promise<{ dbDir: string; chain: string }> {
  const chain = followedChains(config).find((c) => c.chainId === request.chainId);
  if (!chain) {
    const ids =
      followedChains(config)
        .map((c) => c.chainId)
        .join(', ') || 'none';
    throw new EthhookError(
      'ETHHOOK_ERR_CHAIN_NOT_CONFIGURED',
      `the configuration follows no chain ${request.chainId} (it follows ${ids})`,
      { chainId: request.chainId },
    );
  }
  const dataDir = resolve(config.node.dataDir);
  const dbDir = config.store.kind === 'postgres' ? `postgres schema ${config.store.schema}` : join(dataDir, 'db');
  let store: OpenedStore;
  try {
    store = await openStore(config.store, {
      dataDir,
      owner: config.node.id,
      logger: createLogger({ level: 'silent' }),
      registry: new Registry(),
    });
  } catch (err) {
    if (isEthhookError(err, 'ETHHOOK_ERR_STORE_LOCKED')) {
      throw new EthhookError(
        'ETHHOOK_ERR_STORE_LOCKED',
        `the store ${dbDir} is held by a running node: stop it first, or reset the running node with POST /admin/chains/${request.chainId}/reset-cursor`,
        { dbDir },
        { cause: err },
      );
    }
    throw err;
  }
  try {
    if (store.pg) {
      const live = await new PgClusterStore(store.pg, { id: config.node.id, version: '' }, 5_000).liveIds(config.cluster.leaseMs);
      if (live.length > 0) {
        throw new EthhookError(
          'ETHHOOK_ERR_STORE_LOCKED',
          `the store ${dbDir} is used by running instances (${live.join(', ')}): stop them first, or reset the cursor through the instance that ingests the chain with POST /admin/chains/${request.chainId}/reset-cursor`,
          { dbDir, instances: live },
        );
      }
    }
    await new CursorStore(store.kv).reset(request.chainId, request.from);
  } finally {
    await store.close();
  }
  return { dbDir, chain: chain.name };
}
