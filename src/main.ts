/**
 * runNode: builds a node from its configuration and runs it until SIGTERM/SIGINT or a fatal escalation.
 *
 * Order: logger and metrics registry → the store (src/store/open.ts: LevelDB, or PostgreSQL with its
 * migrations applied; `/ready` names it while it does not answer) and master key (checked against the store's
 * key check and its secrets: a key not the store's stops the start, ETHHOOK_ERR_MASTER_KEY_MISMATCH) → embedded
 * dev chain (when enabled and no chain is configured; its cursor is cleared, as anvil starts a new chain
 * every time) → the demo
 * (src/demo/: when the dev chain runs, `demo.enabled` and no `governance.url` of the operator's: its
 * receiver and governance server, which then is the
 * governance stream the node follows) → the live event streams' hub (on PostgreSQL behind the stream
 * relay, which shares the logs an instance ingests with every instance's stream clients) → the cluster
 * coordinator (src/cluster/coordinator.ts: this instance's heartbeat and its share of the leases, taken
 * before the tree so each chain listener starts in its mode) → the pipeline notices (on PostgreSQL also
 * through the notice bus to every instance) → the supervision tree (src/tree.ts: deliverer, matcher publishing into the hub, one listener per chain, the
 * backfill, the governance-stream when there is a governance URL, admin with the /v1, governance, stream and
 * console routes (the console's time series are sampled from the start, src/console/series.ts);
 * a deliverer placed `forked`/`threaded` by `runtime.actors.deliverer.placement` runs in a child with
 * the same settings and reaches the store through a `deliverer-store` actor, see
 * src/actors/deliverer/placed.ts; in-process it uses the store directly)
 * → signal handlers → the `node running` line saying where everything is (and, with the demo, the
 * same as a short block on stderr and a `status` line every `demo.statusIntervalMs`).
 * On the way out: the tree stops in reverse order within `node.shutdownDeadlineMs` (from the signal the
 * admin API refuses changes), then the notice bus, the coordinator (leases released, this instance gone
 * from the cluster), the stream relay, the demo's services, the dev chain and the store close. Returns the process exit code (0 after a clean
 * shutdown, 1 after a failure).
 */
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { startMallocTrim } from './malloc-trim.ts';
import { RUNNING_V8_FLAGS } from './v8-flags.mjs';
import { Registry } from 'prom-client';
import { createAdminBehaviour } from './actors/admin/behaviour.ts';
import { ADMIN_TOKEN_FILE } from './actors/admin/dev-token.ts';
import { chainRoutes } from './actors/admin/chain-routes.ts';
import { governanceRoutes } from './actors/admin/governance-routes.ts';
import { v1Routes } from './actors/admin/v1/index.ts';
import { pipelineNotices, type PipelineNotices } from './pipeline-notices.ts';
import { applyClusterNotice, clusterNotices, reloadAll } from './cluster/notices.ts';
import { startPgNoticeBus } from './store/postgres/notice-bus.ts';
import { createDeliverer } from './actors/deliverer/deliverer.ts';
import { placedDelivererSpec } from './actors/deliverer/placed.ts';
import { delivererSettings } from './actors/deliverer/settings.ts';
import { createDelivererStore } from './actors/deliverer/store-port.ts';
import {
  ChainReadiness,
  chainConfigSchema,
  createChainListener,
  exportChainSeries,
  type ChainConfig,
} from './actors/chain-listener/index.ts';
import { createGovernanceStream } from './actors/governance/index.ts';
import { createStoreApplier } from './actors/governance/store-applier.ts';
import { createMatcher } from './actors/matcher/matcher.ts';
import { createBackfill } from './actors/backfill/backfill.ts';
import { chainLease, ClusterCoordinator, GOVERNANCE_LEASE } from './cluster/coordinator.ts';
import { fencedKv } from './store/fenced-kv.ts';
import { LocalClusterStore } from './cluster/local-store.ts';
import { clusterRoutes } from './actors/admin/cluster-routes.ts';
import { consoleRoutes } from './actors/admin/console-routes.ts';
import { endpointFor } from './actors/admin/v1/views.ts';
import { ConsoleSeries } from './console/series.ts';
import { PgClusterStore } from './store/postgres/cluster.ts';
import { ethhookVersion } from './version.ts';
import type { NodeConfig } from './config/schema.ts';
import { demoBanner, type NodeWhereabouts } from './demo/banner.ts';
import { startDemo, startStatusLine, type Demo } from './demo/index.ts';
import { startDevChain, type DevChain } from './dev-chain/index.ts';
import { describeError, isEthhookError } from './runtime/errors.ts';
import { createLogger, type Logger } from './runtime/log.ts';
import { registerProcessMetrics } from './runtime/metrics.ts';
import { ActorSystem } from './runtime/system.ts';
import { CursorStore } from './store/cursors.ts';
import type { Kv } from './store/kv.ts';
import { EndpointStore } from './store/endpoints.ts';
import type { OutboxStore } from './store/outbox/contract.ts';
import type { PgPool } from './store/postgres/pool.ts';
import { DEFAULT_CLAIM_MS } from './store/postgres/outbox.ts';
import { deliveryLimitsFor } from './store/delivery-limits.ts';
import { openStore } from './store/open.ts';
import { loadMasterKey } from './store/secrets.ts';
import { SubscriptionStore } from './store/subscriptions.ts';
import { BackfillStore } from './store/backfills.ts';
import { startStreamRelay } from './store/postgres/stream-relay.ts';
import { SSE_EVENTS_PATH, StreamHub, WS_EVENTS_PATH, streamTransports, type StreamEvent } from './streams/index.ts';
import { startTree } from './supervision/index.ts';
import { ACTOR_PATHS, buildTree, chainListenerName, cellDefaults, type AnyBehaviourFactory, type NodeBehaviours } from './tree.ts';

/** A PostgreSQL outbox claim lasts at least the webhook request's timeout plus this. */
const CLAIM_MARGIN_MS = 15_000;

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
    // The operator's terminal gets the cause too, not only the JSON log on stdout.
    process.stderr.write(
      `ethhook: the node failed to start${isEthhookError(err) ? ` [${err.code}]` : ''}: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    await release();
    return 1;
  }
}

async function startNode(config: NodeConfig, logger: Logger, cleanups: Cleanup[]): Promise<ActorSystem> {
  const dataDir = resolve(config.node.dataDir);
  const registry = new Registry();
  registry.setDefaultLabels({ node: config.node.id });
  registerProcessMetrics(registry);

  const stores = await openStores(config, dataDir, logger, registry, cleanups);
  const devChain =
    config.devChain.enabled && config.chains.length === 0 ? await startNodeDevChain(config, stores.kv, logger, cleanups) : undefined;
  const chains: ChainConfig[] = devChain ? [devChainConfig(devChain)] : [...config.chains];
  const demo = devChain && config.demo.enabled ? await startNodeDemo(config, dataDir, devChain, logger, cleanups) : undefined;
  const governance =
    demo?.governance ??
    (config.governance.url !== undefined ? { url: config.governance.url, publicKeys: config.governance.publicKeys } : undefined);
  const hub = new StreamHub({ registry, log: logger.child({ component: 'streams' }) });
  const publish = await startStreamPublish(config, stores, hub, logger, registry, cleanups);
  const consoleSeries = new ConsoleSeries({ registry });
  consoleSeries.start();
  cleanups.push(async () => consoleSeries.stop());
  const system = new ActorSystem({
    logger,
    registry,
    defaults: cellDefaults(config.runtime),
    shutdownDeadlineMs: config.node.shutdownDeadlineMs,
  });
  // Every chain is visible in /metrics and holds /ready back from the start, reached or not.
  exportChainSeries(registry, chains);
  const readiness = new ChainReadiness(chains);
  const coordinator = await startCoordinator(config, stores, chains, governance !== undefined, registry, logger, cleanups);
  const notices = await startNotices(config, stores, system, logger, cleanups);
  await startTree(
    system,
    buildTree(
      config,
      nodeBehaviours({
        config,
        dataDir,
        logger,
        registry,
        system,
        stores,
        hub,
        publish,
        chains,
        readiness,
        governance,
        coordinator,
        notices,
        consoleSeries,
      }),
    ),
  );

  const where = await whereabouts(config, dataDir, system, { devChain, demo, governance });
  logger.info({ dataDir, chains: chains.map((c) => ({ chainId: c.chainId, name: c.name })), ...where }, 'node running');
  // The young generation grows again once the node runs (src/v8-flags.mjs).
  for (const flag of RUNNING_V8_FLAGS) setFlagsFromString(flag);
  const trim = startMallocTrim(logger.child({ component: 'malloc-trim' }));
  cleanups.push(async () => trim.stop());
  if (demo) {
    const adminToken = where.adminTokenFile === null ? undefined : (await readFile(where.adminTokenFile, 'utf8')).trim();
    process.stderr.write(demoBanner(where, adminToken));
    if (config.demo.statusIntervalMs > 0) {
      const receiver = demo.receiver;
      const stop = startStatusLine({
        registry,
        snapshot: () => system.snapshot(),
        receiver: () => receiver.stats(),
        logger,
        intervalMs: config.demo.statusIntervalMs,
      });
      cleanups.push(async () => stop());
    }
  }
  return system;
}

/**
 * Joins the cluster of the store (src/cluster/coordinator.ts: PostgreSQL, or LevelDB as a cluster of
 * one) and takes this instance's share of the leases before the tree starts, so each chain listener
 * starts in its mode. Left on the way out, after the tree stopped: leases released, instance removed.
 */
async function startCoordinator(
  config: NodeConfig,
  stores: Stores,
  chains: readonly ChainConfig[],
  governance: boolean,
  registry: Registry,
  logger: Logger,
  cleanups: Cleanup[],
): Promise<ClusterCoordinator> {
  const self = { id: config.node.id, version: ethhookVersion() };
  const { leaseMs, heartbeatMs } = config.cluster;
  const store = stores.pg ? new PgClusterStore(stores.pg, self, heartbeatMs) : new LocalClusterStore(self);
  const byName = new Map(chains.map((c) => [c.name, c.chainId]));
  const coordinator = new ClusterCoordinator({
    store,
    self: self.id,
    chains: chains.map((c) => ({ chainId: c.chainId, name: c.name })),
    governance,
    leaseMs,
    heartbeatMs,
    registry,
    logger: logger.child({ component: 'cluster' }),
    heights: async () => {
      const heights: Record<string, number> = {};
      const gauge = registry.getSingleMetric('chain_height');
      for (const v of (await gauge?.get())?.values ?? []) {
        const chainId = byName.get(String(v.labels.chain));
        if (chainId !== undefined && v.value > 0) heights[chainId] = v.value;
      }
      return heights;
    },
  });
  await coordinator.start();
  cleanups.push(() => coordinator.stop());
  return coordinator;
}

interface Stores {
  kv: Kv;
  /** The PostgreSQL pool, on that store. */
  pg?: PgPool;
  masterKey: Buffer;
  endpoints: EndpointStore;
  subscriptions: SubscriptionStore;
  outbox: OutboxStore;
  /** Why the store does not answer now, for `/ready`. */
  unreachable(): string | undefined;
}

/** The store (`store.kind`: LevelDB under `<dataDir>/db`, or PostgreSQL) and the master key that seals its secrets. */
async function openStores(config: NodeConfig, dataDir: string, logger: Logger, registry: Registry, cleanups: Cleanup[]): Promise<Stores> {
  // A paused instance's transaction must not hold the lease rows past the lease (src/cluster/coordinator.ts).
  const idleInTransactionMs = Math.min(
    config.cluster.leaseMs - config.cluster.heartbeatMs,
    config.store.kind === 'postgres' ? config.store.statementTimeoutMs : Infinity,
  );
  // A claim outlasts a request by its timeout plus a margin (the Deliverer sends a job only while 5 s more are left).
  const claimMs = Math.max(DEFAULT_CLAIM_MS, config.deliverer.requestTimeoutMs + CLAIM_MARGIN_MS);
  const store = await openStore(config.store, { dataDir, owner: config.node.id, logger, registry, idleInTransactionMs, claimMs });
  cleanups.push(() => store.close());
  const { kv, outbox } = store;
  const masterKey = await loadMasterKey({ env: process.env, dataDir, logger, allowGenerate: config.security.generateMasterKey });
  const endpoints = new EndpointStore(kv, masterKey);
  // A wrong key would start a node that answers /ready and fails every delivery: refuse it here.
  const key = await endpoints.verifyMasterKey();
  if (key.unreadable.length > 0) {
    logger.error(
      { code: 'ETHHOOK_ERR_SECRET_DECRYPT', endpointIds: key.unreadable, checked: key.checked },
      'some stored webhook secrets do not open under the master key; their endpoints cannot be delivered to',
    );
  }
  const subscriptions = new SubscriptionStore(kv, endpoints);
  return { kv, pg: store.pg, masterKey, endpoints, subscriptions, outbox, unreachable: () => store.unreachable() };
}

/** The embedded anvil of `devChain`, its previous run's cursor cleared. */
async function startNodeDevChain(config: NodeConfig, kv: Kv, logger: Logger, cleanups: Cleanup[]): Promise<DevChain> {
  const { enabled: _, ...options } = config.devChain;
  const chain = await startDevChain({ logger: logger.child({ component: 'dev-chain' }), ...options });
  cleanups.push(() => chain.stop());
  // anvil starts from block 0 every time: the cursor of the previous run's chain would make the
  // listener refuse this one (another block 0), and nothing of that chain can come back.
  await new CursorStore(kv).clear(chain.chainId);
  return chain;
}

function devChainConfig(chain: DevChain): ChainConfig {
  return chainConfigSchema.parse({ chainId: chain.chainId, name: 'dev', wsUrl: chain.wsUrl, httpUrl: chain.httpUrl });
}

/** The demo's receiver and governance server, unless the operator's `governance.url` is to be followed. */
async function startNodeDemo(
  config: NodeConfig,
  dataDir: string,
  chain: DevChain,
  logger: Logger,
  cleanups: Cleanup[],
): Promise<Demo | undefined> {
  if (config.governance.url !== undefined) {
    logger.info('demo off: governance.url is configured, so the node follows that governance stream instead');
    return undefined;
  }
  const demo = await startDemo({ dataDir, chain, logger });
  cleanups.push(() => demo.stop());
  if (!config.security.allowPrivateTargets) {
    logger.warn(
      { receiver: demo.receiver.url },
      'demo: security.allowPrivateTargets is off, so webhooks to the loopback receiver will be refused',
    );
  }
  return demo;
}

interface NodeParts {
  config: NodeConfig;
  dataDir: string;
  logger: Logger;
  registry: Registry;
  system: ActorSystem;
  stores: Stores;
  hub: StreamHub;
  /** The Matcher's publish (startStreamPublish). */
  publish: (event: StreamEvent) => void;
  chains: readonly ChainConfig[];
  readiness: ChainReadiness;
  governance: { url: string; publicKeys: string[] } | undefined;
  coordinator: ClusterCoordinator;
  /** What writers of endpoints and subscriptions tell the pipeline: of this instance and, in a cluster, of every instance. */
  notices: PipelineNotices;
  /** The console's 15 minutes of time series (src/console/series.ts). */
  consoleSeries: ConsoleSeries;
}

/**
 * The pipeline notices of every writer (src/cluster/notices.ts): this instance's actors, and on
 * PostgreSQL the other instances' too, through the notice bus (src/store/postgres/notice-bus.ts), whose
 * notices from the other instances reach this one's actors. The bus is closed before the store.
 */
async function startNotices(
  config: NodeConfig,
  stores: Stores,
  system: ActorSystem,
  logger: Logger,
  cleanups: Cleanup[],
): Promise<PipelineNotices> {
  const local = pipelineNotices((path) => system.lookup(path));
  if (stores.pg === undefined) return local;
  const log = logger.child({ component: 'notice-bus' });
  const bus = await startPgNoticeBus({
    pool: stores.pg,
    origin: config.node.id,
    logger,
    onNotice: (notice) => applyClusterNotice(local, notice, log),
    onResync: () => reloadAll(local, log),
  });
  cleanups.push(() => bus.close());
  return clusterNotices(local, bus);
}

/**
 * Where the Matcher publishes the logs it saw: the hub alone on LevelDB (one instance); on PostgreSQL
 * through the stream relay (src/store/postgres/stream-relay.ts), so that the stream clients of every
 * instance get the logs of the chains this one ingests. The relay is closed before the store.
 */
async function startStreamPublish(
  config: NodeConfig,
  stores: Stores,
  hub: StreamHub,
  logger: Logger,
  registry: Registry,
  cleanups: Cleanup[],
): Promise<(event: StreamEvent) => void> {
  if (stores.pg === undefined) return (event) => void hub.publish(event);
  const relay = await startStreamRelay({ pool: stores.pg, hub, origin: config.node.id, logger, registry });
  cleanups.push(() => relay.close());
  return (event) => relay.publish(event);
}

/** The actors of the tree (src/tree.ts), each built from its part of the configuration. */
function nodeBehaviours(p: NodeParts): NodeBehaviours {
  const { config, registry, system, stores, hub, chains } = p;
  const { kv, endpoints, subscriptions, outbox } = stores;
  const lookup = (path: string) => system.lookup(path);
  const deliverer = delivererSettings(config);
  // Rate limits and breakers shared by the instances on a PostgreSQL store; none on LevelDB (one process).
  const limits = deliveryLimitsFor(kv, config.node.id);
  const delivererPlaced = (config.runtime.actors.deliverer?.placement ?? 'local') !== 'local';
  const governance = p.governance;
  // Governance writes only while this instance holds the cluster's governance lease (fenced by it).
  const governanceLease = p.coordinator.gate(GOVERNANCE_LEASE);
  const fenced = fencedKv(kv, governanceLease);
  const fencedEndpoints = new EndpointStore(fenced, stores.masterKey);
  const governanceStores = { endpoints: fencedEndpoints, subscriptions: new SubscriptionStore(fenced, fencedEndpoints) };
  return {
    admin: () =>
      createAdminBehaviour({
        system,
        config: config.admin,
        registry,
        dataDir: p.dataDir,
        routes: [
          ...v1Routes({
            endpoints,
            subscriptions,
            outbox,
            lookup,
            notices: p.notices,
            backfills: new BackfillStore(kv),
            chains: chains.map((c) => c.chainId),
            config: config.security,
          }),
          ...governanceRoutes(() => system),
          ...chainRoutes({
            system: () => system,
            chains: [...chains],
            cursors: (chainId) => new CursorStore(fencedKv(kv, p.coordinator.gate(chainLease(chainId)))),
            leases: p.coordinator,
          }),
          ...clusterRoutes(p.coordinator),
          ...consoleRoutes({
            node: { id: config.node.id, version: ethhookVersion() },
            registry,
            watch: p.consoleSeries.watch,
            series: p.consoleSeries,
            system: () => system,
            chains: [...chains],
            streams: () => ({
              websocket: { connections: hub.connectionCount('websocket'), max: config.streams.maxWebsocketConnections },
              sse: { connections: hub.connectionCount('sse'), max: config.streams.maxSseConnections },
            }),
            cluster: () => p.coordinator.status(),
            endpoints,
            endpointView: endpointFor,
          }),
        ],
        readiness: () => {
          const store = p.stores.unreachable();
          return store === undefined ? p.readiness.reasons() : [store, ...p.readiness.reasons()];
        },
        streams: streamTransports(hub, config.streams),
      }),
    deliverer: () => createDeliverer({ outbox, endpoints, ...(limits ? { limits } : {}), registry, ...deliverer }),
    ...(delivererPlaced
      ? { delivererStore: () => createDelivererStore({ outbox, endpoints, ...(limits ? { limits } : {}), registry }) }
      : {}),
    placeable: {
      deliverer: placedDelivererSpec({
        ...deliverer,
        ...(limits ? { sharedLimits: true } : {}),
        ...(outbox.claimMs !== undefined ? { claimMs: outbox.claimMs } : {}),
      }),
    },
    matcher: () =>
      createMatcher({
        kv,
        subscriptions,
        outbox,
        logger: p.logger.child({ actor: ACTOR_PATHS.matcher }),
        registry,
        chainConfirmations: new Map(chains.map((c) => [c.chainId, c.confirmations])),
        publish: p.publish,
      }),
    ...(governance
      ? {
          governance: () =>
            createGovernanceStream({
              config: { ...governance, reconnect: config.governance.reconnect },
              kv,
              registry,
              lease: governanceLease,
              onApplied: ({ seq, type }) => hub.publish({ kind: 'governance', seq, type, at: Date.now() }),
              apply: createStoreApplier({
                ...governanceStores,
                notices: p.notices,
                logger: p.logger.child({ actor: ACTOR_PATHS.governanceStream }),
                secretOverlapMs: config.security.secretOverlapMs,
              }),
            }),
        }
      : {}),
    backfill: () =>
      createBackfill({
        kv,
        subscriptions,
        outboxDepth: () => outbox.depth(),
        chains,
        lease: (chainId) => p.coordinator.gate(chainLease(chainId)),
        registry,
        matcher: ACTOR_PATHS.matcher,
        options: config.backfill,
        publish: (event) => void hub.publish(event),
      }),
    chainListeners: new Map<string, AnyBehaviourFactory>(
      chains.map((chain) => [
        chainListenerName(chain.chainId),
        () =>
          createChainListener({
            chain,
            store: kv,
            target: ACTOR_PATHS.matcher,
            registry,
            readiness: p.readiness,
            lease: p.coordinator.gate(chainLease(chain.chainId)),
          }),
      ]),
    ),
  };
}

/** Where everything listens, for the `node running` line and the demo's banner. */
async function whereabouts(
  config: NodeConfig,
  dataDir: string,
  system: ActorSystem,
  started: { devChain: DevChain | undefined; demo: Demo | undefined; governance: { url: string } | undefined },
): Promise<NodeWhereabouts> {
  const address = await system.lookup(ACTOR_PATHS.admin)?.ask<AddressInfo | null>({ type: 'address' });
  const admin = address ? `http://${address.address}:${address.port}` : null;
  const { devChain, demo, governance } = started;
  return {
    admin,
    metrics: admin === null ? null : `${admin}/metrics`,
    console: admin === null ? null : `${admin}/console`,
    streams: admin === null ? null : { ws: `${admin.replace(/^http/, 'ws')}${WS_EVENTS_PATH}`, sse: `${admin}${SSE_EVENTS_PATH}` },
    adminTokenFile: config.admin.tokens.length === 0 ? join(dataDir, ADMIN_TOKEN_FILE) : null,
    anvil: devChain ? { http: devChain.httpUrl, ws: devChain.wsUrl, contract: devChain.contractAddress } : null,
    governance: governance?.url ?? null,
    demoReceiver: demo?.receiver.url ?? null,
  };
}
