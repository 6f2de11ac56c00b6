/**
 * runNode: builds a node from its configuration and runs it until SIGTERM/SIGINT or a fatal escalation.
 *
 * Order: logger and metrics registry → LevelDB store and master key → embedded dev chain (when enabled
 * and no chain is configured) → the supervision tree (src/tree.ts: deliverer, matcher, one listener per
 * chain, admin with the /v1 routes) → signal handlers. On the way out:
 * the tree stops in reverse order within `node.shutdownDeadlineMs`, then the dev chain and the store
 * close. Returns the process exit code (0 after a clean shutdown, 1 after a failure).
 */
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { createAdminBehaviour } from './actors/admin/behaviour.ts';
import { v1Routes } from './actors/admin/v1/index.ts';
import { createDeliverer } from './actors/deliverer/deliverer.ts';
import { chainConfigSchema, chainListenerName, createChainListener, type ChainConfig } from './actors/chain-listener/index.ts';
import { createMatcher } from './actors/matcher/matcher.ts';
import type { NodeConfig } from './config/schema.ts';
import { describeError } from './runtime/errors.ts';
import { createLogger, type Logger } from './runtime/log.ts';
import { ActorSystem } from './runtime/system.ts';
import { openDb, type Db } from './store/db.ts';
import { EndpointStore } from './store/endpoints.ts';
import { Outbox } from './store/outbox.ts';
import { loadMasterKey } from './store/secrets.ts';
import { SubscriptionStore } from './store/subscriptions.ts';
import { startTree } from './supervision/index.ts';
import { buildTree, type AnyBehaviourFactory } from './tree.ts';
import { startDevChain } from './dev-chain/index.ts';

/** Things to release after the tree has stopped, last acquired first. */
type Cleanup = () => Promise<void>;

export async function runNode(config: NodeConfig): Promise<number> {
  const logger = createLogger({ level: config.log.level }).child({ node: config.node.id });
  const cleanups: Cleanup[] = [];
  const release = async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (err) {
        logger.warn({ err: describeError(err) }, 'cleanup failed');
      }
    }
  };
  try {
    const system = await startNode(config, logger, cleanups);
    const removeSignals = system.installSignalHandlers(config.node.shutdownDeadlineMs);
    const exit = await system.exited;
    removeSignals();
    await release();
    logger.info({ code: exit.code, reason: exit.reason }, 'node exited');
    return exit.code;
  } catch (err) {
    logger.fatal({ err: describeError(err) }, 'node failed to start');
    await release();
    return 1;
  }
}

async function startNode(config: NodeConfig, logger: Logger, cleanups: Cleanup[]): Promise<ActorSystem> {
  const dataDir = resolve(config.node.dataDir);
  const registry = new Registry();
  registry.setDefaultLabels({ node: config.node.id });
  collectDefaultMetrics({ register: registry });

  const db: Db = await openDb(join(dataDir, 'db'));
  cleanups.push(() => db.close());
  const masterKey = await loadMasterKey({ env: process.env, dataDir, logger });
  const endpoints = new EndpointStore(db, masterKey);
  const subscriptions = new SubscriptionStore(db, endpoints);
  const outbox = await Outbox.open(db);

  const chains: ChainConfig[] = config.chains.map((c) => chainConfigSchema.parse(c));
  if (config.devChain.enabled && chains.length === 0) {
    const dev = config.devChain;
    const chain = await startDevChain({
      logger: logger.child({ component: 'dev-chain' }),
      chainId: dev.chainId,
      blockTimeMs: dev.blockTimeMs,
      txIntervalMs: dev.txIntervalMs,
      port: dev.port,
      ...(dev.binary ? { binary: dev.binary } : {}),
    });
    cleanups.push(() => chain.stop());
    chains.push(chainConfigSchema.parse({ chainId: chain.chainId, name: 'dev', wsUrl: chain.wsUrl, httpUrl: chain.httpUrl }));
  }

  const system = new ActorSystem({
    logger,
    registry,
    defaults: {
      capacity: config.runtime.mailbox.capacity,
      overflow: config.runtime.mailbox.overflow,
      throughput: config.runtime.mailbox.throughput,
      maxConsecutivePanics: config.runtime.maxConsecutivePanics,
      shutdownTimeoutMs: config.runtime.shutdownTimeoutMs,
    },
    shutdownDeadlineMs: config.node.shutdownDeadlineMs,
  });
  const chainListeners = new Map<string, AnyBehaviourFactory>(
    chains.map((chain) => [chainListenerName(chain.chainId), () => createChainListener({ chain, store: db, target: '/pipeline/matcher', registry })]),
  );
  const tree = buildTree(config, {
    admin: () => createAdminBehaviour({
      system,
      config: config.admin,
      registry,
      dataDir,
      routes: v1Routes({
        endpoints,
        subscriptions,
        outbox,
        lookup: (path) => system.lookup(path),
        config: { allowPrivateTargets: config.security.allowPrivateTargets, requireHttpsTargets: config.security.requireHttpsTargets },
      }),
    }),
    deliverer: () => createDeliverer({
      outbox,
      endpoints,
      registry,
      http: {
        policy: { allowPrivate: config.security.allowPrivateTargets },
        concurrency: config.deliverer.concurrency,
        requestTimeoutMs: config.deliverer.requestTimeoutMs,
      },
      loop: {
        retry: { scheduleMs: config.deliverer.retry.schedule, jitter: config.deliverer.retry.jitter, maxRetryAfterMs: 10 * 3_600_000 },
        guards: { breaker: { failureThreshold: config.deliverer.circuitBreaker.failureThreshold, cooldownMs: config.deliverer.circuitBreaker.openMs } },
      },
    }),
    matcher: () => createMatcher({ db, subscriptions, outbox, logger: logger.child({ actor: '/pipeline/matcher' }), registry }),
    chainListeners,
  });
  await startTree(system, tree);
  const address = await system.lookup('/admin')?.ask<AddressInfo | null>({ type: 'address' });
  logger.info({
    dataDir,
    chains: chains.map((c) => ({ chainId: c.chainId, name: c.name })),
    admin: address ? `http://${address.address}:${address.port}` : null,
    metrics: address ? `http://${address.address}:${address.port}/metrics` : null,
  }, 'node running');
  return system;
}
