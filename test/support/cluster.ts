/**
 * A cluster of real ethhook node processes on ONE PostgreSQL schema, for the cluster end-to-end
 * scenarios (test/e2e/cluster-*.e2e.test.ts): real anvils, a real governance server, real receivers.
 *
 * `useCluster(options)`, called while a test file is collected, registers the file's beforeAll (start
 * everything) and afterAll (stop everything it started: every node SIGKILLed, receivers, governance
 * server, anvils, PostgreSQL, temp dirs) and returns the handle, usable once beforeAll ran.
 * - PostgreSQL: a new schema on the run's server (testStore), or, with `ownPostgres`, a server of the
 *   file's own that `pg.stop()` / `pg.start()` can take away and bring back.
 * - Chains: `chains` anvils (automine: a block per transaction), chain ids 31337, 31338, ..., named
 *   `chain-<id>` in the nodes' config, each with a Tick contract, followed with 0 confirmations (so a
 *   delivered log can be orphaned and must be retracted).
 * - Endpoints: `endpoints` of them (ids `ep_<n>`, path `/ep_<n>`, secrets of their own), alternating
 *   over two loopback receivers that verify every signature (and answer 200, after `replyDelayMs`); each endpoint has one subscription per
 *   chain (`sub_<n>_<chainId>`) to that chain's contract. They reach the cluster as signed governance
 *   messages, as an operator's would; `start` waits until every instance reports the log's height.
 *   `subscribe(id, { endpoint, ... })` creates one more subscription to the chain's contract through
 *   instance `id`'s admin API (with `fromBlock`/`toBlock`: a backfill), checked like the others.
 * - Instances: `instances` nodes at start, ids `i1`, `i2`, ... (each with a dir of its own for its config),
 *   the same store section and master key, `cluster: { leaseMs, heartbeatMs }` (defaults 3,000 / 1,000), a short
 *   retry schedule and breaker cool-down, `deliverer` over that section, and `backfill` as the config's. `add()` starts one more; `kill(id)` is `kill -9` (waited for);
 *   `terminate(id)` is SIGTERM (resolves with the exit); `pause(id)` / `resume(id)` are SIGSTOP /
 *   SIGCONT; `restart(id)` starts a dead instance again on its dir and id. Each waits for the instance
 *   to run and to report the governance height. An instance that exits without the harness stopping it
 *   is recorded in `unexpectedExits`.
 * - Reading the cluster: `view()` is GET /v1/cluster from a running instance; `lease(chainId)` is the
 *   chain's lease row (holder, epoch) while it is unexpired; `waitForHolder(chainId, accept, ms)` polls
 *   it. Requests to an instance give up after 5 s (a paused instance never answers).
 * - Traffic: `startTraffic({ blocksPerSecond, logsPerBlock })` mines, on every chain, blocks of
 *   `logsPerBlock` (inclusive range, at most 20) Tick logs at that pace until `stop()`; `mine(logs)`
 *   mines one such block in between (resolving once it is mined); `reorg(depth, { chainId,
 *   deliveredWithinMs, before })` replaces the chain's top `depth` blocks by blocks of 21..23 logs
 *   (never a traffic size, so no new block can equal an orphaned one), keeping the orphaned logs for
 *   the check; with `deliveredWithinMs` it first waits until the logs it orphans were delivered (so
 *   they must be retracted), then runs `before` (a fault), traffic held meanwhile. A chain's ticks and
 *   reorgs are serialized.
 * - The store itself: `lockTable(table)` holds a table against writes from a session of the test's;
 *   `fencedWriteWaiting()` says whether a fenced transaction (one that checked a lease) waits on a lock.
 * - `expectNothingLost(ms)` mines one more block on every chain (so each reorg is seen), then waits until
 *   the invariant of chaos/invariant.ts, checked per (endpoint, chain), owes nothing: every canonical
 *   log delivered as `log.created` to its endpoint, every delivered orphaned log retracted by a
 *   `log.removed`, duplicates only under one webhook-id with one body, every signature valid, every
 *   payload as the chain says, nothing else received; no dead letter. It asserts each check and resolves
 *   with the figures.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { checkInvariant, FAILURES, type ChainLog, type Verdict } from '../../chaos/invariant.ts';
import type { ClusterStatus } from '../../src/cluster/coordinator.ts';
import { webhookId } from '../../src/actors/matcher/jobs.ts';
import { tickCalldata } from '../../src/dev-chain/contract.ts';
import { deployTickContract, devAccount, sendTicks, waitForReceipt } from '../../src/dev-chain/tick-contract.ts';
import { startGovernanceServer, type GovernanceServer } from '../../src/governance-server/index.ts';
import { Serial } from '../../src/runtime/serial.ts';
import { generateWebhookSecret } from '../../src/store/secrets.ts';
import { sleep, succeeded, waitUntil } from '../e2e/e2e-chain.ts';
import type { GovernanceStatusAnswer, SubscriptionAnswer } from './admin-answers.ts';
import { startAnvil, type TestAnvil } from './anvil.ts';
import { makeKey, tempDir } from './governance.ts';
import { createNodeDir, killAllNodes, spawnNodeProcess, testStore, type NodeDir, type NodeProcess } from './node-process.ts';
import { startPgServer, type PgServer } from './pg-server.ts';
import { mulberry32, startReceiver, type ReceivedRequest, type Receiver, type Reply } from './receiver.ts';

export interface ClusterOptions {
  instances: number;
  chains?: number;
  endpoints?: number;
  ownPostgres?: boolean;
  leaseMs?: number;
  heartbeatMs?: number;
  /** Over the harness's `deliverer` section (e.g. `perEndpointConcurrency`). */
  deliverer?: Record<string, unknown>;
  /** The receivers answer each request after this long (a backlog builds, so every instance claims jobs). */
  replyDelayMs?: number;
  /** The config's `backfill` section. */
  backfill?: Record<string, unknown>;
}

/** GET /v1/cluster's `cluster`. */
export type ClusterView = ClusterStatus;

export interface Lease {
  holder: string;
  epoch: number;
}

export type InstanceState = 'running' | 'paused' | 'dead';

export interface Instance {
  readonly id: string;
  readonly dir: NodeDir;
  /** The current process (the last one started). */
  node: NodeProcess;
  state: InstanceState;
}

export interface ClusterChain {
  readonly chainId: number;
  readonly name: string;
  readonly anvil: TestAnvil;
  readonly contract: string;
  /** Logs reorgs took off this chain, as the chain gave them just before. */
  readonly orphaned: ChainLog[];
  /** The contract's logs from `fromBlock`, with their block timestamps. */
  logs(fromBlock?: number): Promise<ChainLog[]>;
  head(): Promise<number>;
}

export interface Traffic {
  /** Logs mined so far, every chain together. */
  readonly logs: number;
  /** Stops after the ticks in progress; resolves with what was mined. */
  stop(): Promise<{ blocks: number; logs: number; errors: number }>;
}

export interface ReorgOptions {
  /** Default: the first chain. */
  chainId?: number;
  /** Wait (traffic held) until every log of the blocks to orphan is delivered to every endpoint, at most this long. */
  deliveredWithinMs?: number;
  /** Runs after that wait, traffic still held, right before the reorg (a fault to make meanwhile). */
  before?: () => Promise<void>;
}

export interface SubscribeOptions {
  /** `ep_<n>`. */
  endpoint: string;
  /** Default: the first chain. */
  chainId?: number;
  fromBlock?: number;
  toBlock?: number;
}

export interface Delivered {
  /** From the call until nothing was owed, ms; and what was owed at the call (chaos/invariant.ts `owed`). */
  settledMs: number;
  owedAtStart: number;
  expected: number;
  requests: number;
  duplicates: number;
  retries: number;
  orphanedDelivered: number;
  removed: number;
}

export interface Cluster {
  readonly options: Required<ClusterOptions>;
  readonly chains: readonly ClusterChain[];
  readonly receivers: readonly Receiver[];
  /** The file's own PostgreSQL (`ownPostgres`), else undefined. */
  readonly pg: PgServer | undefined;
  readonly instances: ReadonlyMap<string, Instance>;
  readonly unexpectedExits: string[];
  running(): Instance[];
  /** Distinct webhook-ids answered 2xx, every receiver together. */
  delivered(): number;
  add(): Promise<Instance>;
  kill(id: string): Promise<void>;
  terminate(id: string): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  pause(id: string): void;
  resume(id: string): void;
  restart(id: string): Promise<Instance>;
  view(): Promise<ClusterView>;
  lease(chainId: number): Promise<Lease | undefined>;
  waitForHolder(chainId: number, accept: (lease: Lease) => boolean, timeoutMs: number): Promise<Lease>;
  /** A metric of one instance (undefined when absent or unanswered). */
  metric(id: string, name: string, labels?: Record<string, string>): Promise<number | undefined>;
  startTraffic(pattern: { blocksPerSecond: number; logsPerBlock: readonly [number, number]; seed?: number }): Traffic;
  /**
   * Locks `table` of the store (EXCLUSIVE: reads pass, writes wait) from a session of the test's own;
   * resolves with the release. `fencedWriteWaiting()` says whether a transaction that checked a lease
   * fence (it holds its share lock on `cluster_leases`) now waits on a lock.
   */
  lockTable(table: string): Promise<() => Promise<void>>;
  fencedWriteWaiting(): Promise<boolean>;
  /** Mines one block of `logs` Tick logs (1..20) on the chain, between the traffic's blocks. */
  mine(logs: number, chainId?: number): Promise<void>;
  /** POST /v1/subscriptions on instance `id` (see the header); the subscription is checked by `expectNothingLost`. */
  subscribe(id: string, options: SubscribeOptions): Promise<SubscriptionAnswer>;
  reorg(depth: number, options?: ReorgOptions): Promise<number>;
  expectNothingLost(timeoutMs: number): Promise<Delivered>;
}

const FIRST_CHAIN_ID = 31337;
const MAX_TRAFFIC_LOGS = 20;
const REORG_LOGS = [21, 23] as const;
const API_TIMEOUT_MS = 5_000;
const START_TIMEOUT_MS = 60_000;
/** The metrics `report` shows of each instance. */
const REPORTED = [
  'chain_height',
  'chain_lease_held',
  'matcher_jobs_enqueued_total',
  'webhook_deliveries_total',
  'webhook_queue_depth',
  'store_up',
];

/** `p`, or a rejection after `ms`; `p`'s own later rejection is swallowed. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  p.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

interface ChainState extends ClusterChain {
  from: string;
  deployBlock: number;
  lock: Serial;
  tick(n: number): Promise<void>;
}

async function startChain(chainId: number): Promise<ChainState> {
  const anvil = await startAnvil({ chainId });
  const rpc = (method: string, params: unknown[]) => anvil.rpc(method, params);
  const from = await devAccount(rpc);
  const contract = await deployTickContract(rpc, from);
  const head = async () => Number.parseInt(await anvil.rpc<string>('eth_blockNumber'), 16);
  return {
    chainId,
    name: `chain-${chainId}`,
    anvil,
    contract,
    from,
    deployBlock: await head(),
    orphaned: [],
    lock: new Serial(),
    head,
    async tick(n: number) {
      await waitForReceipt(rpc, await sendTicks(rpc, from, contract, n));
    },
    async logs(fromBlock = 0): Promise<ChainLog[]> {
      const logs = await anvil.rpc<ChainLog[]>('eth_getLogs', [
        { fromBlock: `0x${fromBlock.toString(16)}`, toBlock: 'latest', address: contract },
      ]);
      for (const log of logs) if (typeof log.blockTimestamp !== 'string') throw new Error(`anvil gave a log without blockTimestamp`);
      return logs;
    },
  };
}

export function useCluster(opts: ClusterOptions): Cluster {
  const options: Required<ClusterOptions> = {
    chains: 1,
    endpoints: 2,
    ownPostgres: false,
    leaseMs: 3_000,
    heartbeatMs: 1_000,
    deliverer: {},
    replyDelayMs: 0,
    backfill: {},
    ...opts,
  };
  const sharedStore = options.ownPostgres ? undefined : testStore('postgres');
  let pgServer: PgServer | undefined;
  let store: Record<string, unknown> = {};
  const chains: ChainState[] = [];
  const receivers: Receiver[] = [];
  const instances = new Map<string, Instance>();
  const unexpectedExits: string[] = [];
  const secrets = new Map<string, string>();
  const endpointIds = Array.from({ length: options.endpoints }, (_, n) => `ep_${n}`);
  const subscriptionId = (endpoint: string, chainId: number) => `sub_${endpoint.slice(3)}_${chainId}`;
  /** Per `<endpoint>|<chainId>`, the subscriptions `subscribe` created. */
  const extraSubscriptions = new Map<string, string[]>();
  let governance: GovernanceServer;
  let keys: Awaited<ReturnType<typeof tempDir>>;
  let publicPem = '';
  let nextId = 1;
  /** `delivered()`'s count, kept up as requests arrive: how many requests of each receiver it has read. */
  const deliveredIds = new Set<string>();
  const seen = [0, 0];
  // One key for the whole cluster, as an operator's Secret gives it: a secret one instance sealed, any opens.
  const masterKey = randomBytes(32).toString('hex');

  const chainOf = (chainId: number): ChainState => {
    const c = chains.find((x) => x.chainId === chainId);
    if (!c) throw new Error(`no chain ${chainId} in this cluster`);
    return c;
  };

  const configOf = (id: string): Record<string, unknown> => ({
    node: { id },
    store,
    cluster: { leaseMs: options.leaseMs, heartbeatMs: options.heartbeatMs },
    chains: chains.map((c) => ({
      chainId: c.chainId,
      name: c.name,
      wsUrl: c.anvil.wsUrl,
      httpUrl: c.anvil.httpUrl,
      startBlock: 0,
      confirmations: 0,
    })),
    governance: { url: governance.url, publicKeys: [publicPem], reconnect: { minMs: 50, maxMs: 500 } },
    security: { allowPrivateTargets: true },
    // A breaker opened by a slow moment of this 2-core machine closes after a second, not the default minute.
    deliverer: {
      requestTimeoutMs: 10_000,
      retry: { scheduleMs: [0, 200, 500, 1_000, 2_000, 4_000], jitter: 0.2 },
      circuitBreaker: { cooldownMs: 1_000 },
      ...options.deliverer,
    },
    backfill: options.backfill,
  });

  const governanceHeight = async (node: NodeProcess): Promise<number | undefined> => {
    const status = await within(node.api<GovernanceStatusAnswer>('GET', '/admin/governance/status'), API_TIMEOUT_MS, 'governance status');
    return status.body.governance?.height;
  };

  /** Starts (or starts again) instance `id` and waits until it runs and has every governance message. */
  const launch = async (id: string, dir: NodeDir): Promise<Instance> => {
    const node = await spawnNodeProcess({
      dir,
      config: configOf(id),
      env: { ETHHOOK_MASTER_KEY: masterKey },
      startTimeoutMs: START_TIMEOUT_MS,
    });
    const instance: Instance = instances.get(id) ?? { id, dir, node, state: 'running' };
    instance.node = node;
    instance.state = 'running';
    instances.set(id, instance);
    node.child.once('exit', (code, signal) => {
      if (instance.node !== node) return;
      if (instance.state !== 'dead')
        unexpectedExits.push(`${id} (pid ${node.pid}): ${code ?? signal}; stderr: ${node.stderr.slice(-1_000)}`);
      instance.state = 'dead';
    });
    await node.running;
    const height = governance.head;
    await waitUntil(
      async () => (await governanceHeight(node).catch(() => undefined)) === height,
      30_000,
      `${id} at governance height ${height}`,
    );
    return instance;
  };

  const add = async (): Promise<Instance> => launch(`i${nextId++}`, await createNodeDir());

  const get = (id: string): Instance => {
    const instance = instances.get(id);
    if (!instance) throw new Error(`no instance ${id}`);
    return instance;
  };

  const delivered = (): number => {
    for (const [n, r] of receivers.entries()) {
      for (; seen[n]! < r.requests.length; seen[n]!++) {
        const req = r.requests[seen[n]!]!;
        if (succeeded(req) && req.webhookId !== undefined) deliveredIds.add(req.webhookId);
      }
    }
    return deliveredIds.size;
  };

  const running = () => [...instances.values()].filter((i) => i.state === 'running');

  const view = async (): Promise<ClusterView> => {
    let last: unknown;
    for (const instance of running()) {
      try {
        const answer = await within(
          instance.node.api<{ cluster: ClusterView }>('GET', '/v1/cluster'),
          API_TIMEOUT_MS,
          `${instance.id} GET /v1/cluster`,
        );
        if (answer.status === 200) return answer.body.cluster;
        last = `${instance.id}: ${answer.status} ${JSON.stringify(answer.body)}`;
      } catch (err) {
        last = err;
      }
    }
    throw new Error(`no running instance answered GET /v1/cluster (last: ${String(last)})`);
  };

  const lease = async (chainId: number): Promise<Lease | undefined> => {
    const row = (await view()).leases.find((l) => l.name === `chain:${chainId}`);
    if (!row || row.holder === null || Date.parse(row.expiresAt) <= Date.now()) return undefined;
    return { holder: row.holder, epoch: row.epoch };
  };

  /** The store's sessions in a transaction or waiting (a lock held by a paused instance shows here). */
  const busySessions = async (): Promise<string[]> => {
    const client = new pg.Client({ connectionString: store.url as string });
    await client.connect();
    try {
      const { rows } = await client.query<Record<string, unknown>>(
        `SELECT pid, state, wait_event_type, wait_event, round(extract(epoch FROM clock_timestamp() - xact_start)::numeric, 1) AS xact_s,
                left(regexp_replace(query, '\\s+', ' ', 'g'), 160) AS query
           FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' AND state <> 'idle'`,
      );
      return rows.map((r) => `  pg ${JSON.stringify(r)}`);
    } finally {
      await client.end();
    }
  };

  /** Each instance's state, leases, a few figures and its last warnings and errors: printed when a test fails. */
  const report = async (): Promise<string> => {
    const lines = [`cluster view: ${JSON.stringify(await view().catch((err: unknown) => String(err)))}`];
    for (const i of instances.values()) {
      const figures =
        i.state === 'running'
          ? await within(i.node.api<string>('GET', '/metrics'), API_TIMEOUT_MS, 'metrics')
              .then((m) =>
                String(m.body)
                  .split('\n')
                  .filter((l) => REPORTED.some((name) => l.startsWith(name)))
                  .join('; '),
              )
              .catch((err: unknown) => String(err))
          : '';
      const problems = i.node.logs
        .filter((l) => (l.level ?? 0) >= 40)
        .slice(-8)
        .map((l) => JSON.stringify(l).slice(0, 600));
      lines.push(`${i.id} (pid ${i.node.pid}, ${i.state}): ${figures}`, ...problems.map((p) => `  ${p}`));
    }
    lines.push(...(await busySessions().catch((err: unknown) => [`pg_stat_activity: ${String(err)}`])));
    return lines.join('\n');
  };

  const cluster: Cluster = {
    options,
    chains,
    receivers,
    get pg() {
      return pgServer;
    },
    instances,
    unexpectedExits,
    running,
    delivered,
    add,
    async kill(id) {
      const instance = get(id);
      instance.state = 'dead';
      instance.node.kill('SIGKILL');
      await instance.node.waitForExit(10_000);
    },
    async terminate(id) {
      const instance = get(id);
      instance.state = 'dead';
      instance.node.kill('SIGTERM');
      return instance.node.waitForExit(30_000);
    },
    pause(id) {
      const instance = get(id);
      instance.state = 'paused';
      instance.node.kill('SIGSTOP');
    },
    resume(id) {
      const instance = get(id);
      instance.node.kill('SIGCONT');
      instance.state = 'running';
    },
    async restart(id) {
      const instance = get(id);
      if (instance.state !== 'dead') throw new Error(`${id} is ${instance.state}: kill or terminate it first`);
      return launch(id, instance.dir);
    },
    view,
    lease,
    async waitForHolder(chainId, accept, timeoutMs) {
      let found: Lease | undefined;
      await waitUntil(
        async () => {
          found = await lease(chainId).catch(() => undefined);
          return found !== undefined && accept(found);
        },
        timeoutMs,
        () => `a holder of chain ${chainId}'s lease as wanted (last: ${JSON.stringify(found)})`,
      );
      return found!;
    },
    async metric(id, name, labels) {
      return within(get(id).node.metric(name, labels), API_TIMEOUT_MS, `${id} /metrics`).catch(() => undefined);
    },
    startTraffic({ blocksPerSecond, logsPerBlock, seed = 1 }) {
      const [min, max] = logsPerBlock;
      if (min < 1 || max > MAX_TRAFFIC_LOGS || min > max) throw new Error(`logsPerBlock must lie within 1..${MAX_TRAFFIC_LOGS}`);
      const random = mulberry32(seed);
      const pauseMs = 1_000 / blocksPerSecond;
      let on = true;
      const sent = { blocks: 0, logs: 0, errors: 0 };
      const loops = chains.map(async (chain) => {
        while (on) {
          const n = min + Math.floor(random() * (max - min + 1));
          try {
            await chain.lock.run(() => chain.tick(n));
            sent.blocks++;
            sent.logs += n;
          } catch {
            // A transaction a reorg raced: the check reads what the chain holds, whatever was sent.
            sent.errors++;
          }
          await sleep(pauseMs * (0.5 + random()));
        }
      });
      return {
        get logs() {
          return sent.logs;
        },
        async stop() {
          on = false;
          await Promise.all(loops);
          return { ...sent };
        },
      };
    },
    async lockTable(table) {
      const client = new pg.Client({ connectionString: store.url as string });
      await client.connect();
      await client.query('BEGIN');
      await client.query(
        `LOCK TABLE ${client.escapeIdentifier(store.schema as string)}.${client.escapeIdentifier(table)} IN EXCLUSIVE MODE`,
      );
      return async () => {
        await client.query('COMMIT');
        await client.end();
      };
    },
    async fencedWriteWaiting() {
      const client = new pg.Client({ connectionString: store.url as string });
      await client.connect();
      try {
        const { rows } = await client.query(
          `SELECT 1 FROM pg_stat_activity a WHERE a.wait_event_type = 'Lock' AND EXISTS (
             SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE l.pid = a.pid AND l.granted AND l.mode = 'RowShareLock' AND c.relname = 'cluster_leases' AND n.nspname = $1)`,
          [store.schema],
        );
        return rows.length > 0;
      } finally {
        await client.end();
      }
    },
    async mine(logs, chainId = FIRST_CHAIN_ID) {
      if (logs < 1 || logs > MAX_TRAFFIC_LOGS) throw new Error(`a block of 1..${MAX_TRAFFIC_LOGS} logs, not ${logs}`);
      const chain = chainOf(chainId);
      await chain.lock.run(() => chain.tick(logs));
    },
    async subscribe(id, { endpoint, chainId = FIRST_CHAIN_ID, fromBlock, toBlock }) {
      const chain = chainOf(chainId);
      const answer = await within(
        get(id).node.api<SubscriptionAnswer>('POST', '/v1/subscriptions', {
          endpointId: endpoint,
          chainId,
          addresses: [chain.contract],
          ...(fromBlock === undefined ? {} : { fromBlock }),
          ...(toBlock === undefined ? {} : { toBlock }),
        }),
        API_TIMEOUT_MS,
        `${id} POST /v1/subscriptions`,
      );
      if (answer.status !== 201) throw new Error(`${id} POST /v1/subscriptions: ${answer.status} ${JSON.stringify(answer.body)}`);
      const key = `${endpoint}|${chainId}`;
      extraSubscriptions.set(key, [...(extraSubscriptions.get(key) ?? []), answer.body.subscription.id]);
      return answer.body;
    },
    async reorg(depth, { chainId = FIRST_CHAIN_ID, deliveredWithinMs, before } = {}) {
      const chain = chainOf(chainId);
      return chain.lock.run(async () => {
        const head = await chain.head();
        if (head - depth <= chain.deployBlock)
          throw new Error(`chain ${chainId}: head ${head} too close to the contract for a reorg of ${depth}`);
        const orphaned = await chain.logs(head - depth + 1);
        if (deliveredWithinMs !== undefined) {
          // Blocks mined since the contract was deployed were never retracted: their webhook-ids are generation 0.
          const ids = orphaned.flatMap((log) =>
            endpointIds.map((e) =>
              webhookId(chainId, log.blockHash, Number.parseInt(log.logIndex, 16), subscriptionId(e, chainId), 'log.created'),
            ),
          );
          await waitUntil(
            () => {
              delivered();
              return ids.every((id) => deliveredIds.has(id));
            },
            deliveredWithinMs,
            `the ${orphaned.length} logs of chain ${chainId}'s top ${depth} blocks delivered before the reorg`,
          );
        }
        await before?.();
        const tx = (n: number) => ({ from: chain.from, to: chain.contract, data: tickCalldata(n) });
        const branch = Array.from({ length: depth }, (_, i) => [tx(REORG_LOGS[0] + (i % (REORG_LOGS[1] - REORG_LOGS[0] + 1))), i] as const);
        await chain.anvil.rpc('anvil_reorg', [depth, branch]);
        chain.orphaned.push(...orphaned);
        return orphaned.length;
      });
    },
    async expectNothingLost(timeoutMs) {
      const started = Date.now();
      for (const chain of chains) await chain.lock.run(() => chain.anvil.mine(1));
      const canonical = new Map<number, ChainLog[]>();
      for (const chain of chains) canonical.set(chain.chainId, await chain.logs());
      // A request whose body names no chain of the cluster is checked with the first chain: unexpected there.
      const homeChain = (r: ReceivedRequest): number => {
        const chainId = (r.json as { data?: { chainId?: unknown } } | undefined)?.data?.chainId;
        return chains.some((c) => c.chainId === chainId) ? (chainId as number) : FIRST_CHAIN_ID;
      };
      const verdict = (): Verdict[] => {
        const all = receivers.flatMap((r) => r.requests);
        const verdicts: Verdict[] = [];
        for (const endpoint of endpointIds) {
          const mine = all.filter((r) => r.path === `/${endpoint}`);
          for (const chain of chains) {
            verdicts.push(
              checkInvariant({
                chainId: chain.chainId,
                canonical: canonical.get(chain.chainId)!,
                orphaned: [...chain.orphaned],
                subscriptions: [subscriptionId(endpoint, chain.chainId), ...(extraSubscriptions.get(`${endpoint}|${chain.chainId}`) ?? [])],
                requests: mine.filter((r) => homeChain(r) === chain.chainId),
              }),
            );
          }
        }
        return verdicts;
      };
      const sum = (vs: Verdict[], key: keyof Verdict) => vs.reduce((s, v) => s + (v[key] as number), 0);
      let verdicts = verdict();
      const owedAtStart = sum(verdicts, 'owed');
      // Checked twice a second: each check reads every request, in the process that answers them.
      await waitUntil(
        async () => {
          verdicts = verdict();
          if (verdicts.every((v) => v.owed === 0)) return true;
          await sleep(500);
          return false;
        },
        timeoutMs,
        () =>
          `nothing owed (lost ${sum(verdicts, 'lost')} of ${sum(verdicts, 'expected')}, e.g. ${verdicts
            .flatMap((v) => v.lostSample)
            .slice(0, 3)
            .join(', ')}; missing removals ${sum(verdicts, 'missingRemovals')})`,
      );
      const strays = receivers.flatMap((r) => r.requests).filter((r) => !endpointIds.some((e) => r.path === `/${e}`));
      expect(
        strays.map((r) => r.path),
        'requests to no endpoint',
      ).toEqual([]);
      const summary = FAILURES.map((k) => `${k} ${sum(verdicts, k)}`).join(', ');
      for (const check of FAILURES) expect(sum(verdicts, check), `${check}: ${summary}`).toBe(0);
      const expected = sum(verdicts, 'expected');
      expect(expected).toBeGreaterThan(0);
      expect(sum(verdicts, 'delivered')).toBe(expected);
      const dead = await within(
        running()[0]!.node.api<{ data: unknown[] }>('GET', '/v1/dead-letters?limit=1000'),
        API_TIMEOUT_MS,
        'GET /v1/dead-letters',
      );
      expect(dead.status).toBe(200);
      expect(dead.body.data).toEqual([]);
      return {
        settledMs: Date.now() - started,
        owedAtStart,
        expected,
        requests: sum(verdicts, 'requests'),
        duplicates: sum(verdicts, 'duplicates'),
        retries: sum(verdicts, 'retries'),
        orphanedDelivered: sum(verdicts, 'orphanedDelivered'),
        removed: sum(verdicts, 'removed'),
      };
    },
  };

  beforeAll(async () => {
    keys = await tempDir('ethhook-cluster-');
    const key = await makeKey(keys.dir, 'gov');
    publicPem = key.publicPem;
    const [server] = await Promise.all([
      startGovernanceServer({ keyFile: key.file }),
      (async () => {
        if (!options.ownPostgres) return;
        pgServer = await startPgServer();
      })(),
      ...Array.from({ length: options.chains }, async (_, n) => {
        chains[n] = await startChain(FIRST_CHAIN_ID + n);
      }),
    ]);
    governance = server;
    store = pgServer ? { kind: 'postgres', url: pgServer.url, schema: 'cluster' } : sharedStore!;
    const behaviour = (): Reply => ({ status: 200, body: 'ok', ...(options.replyDelayMs > 0 ? { delayMs: options.replyDelayMs } : {}) });
    for (let n = 0; n < 2; n++)
      receivers.push(await startReceiver({ behaviour, secrets: (path) => [secrets.get(path)].filter((s) => s !== undefined) }));
    for (const [n, id] of endpointIds.entries()) {
      const secret = generateWebhookSecret();
      secrets.set(`/${id}`, secret);
      await governance.append('endpoint.upsert', { id, url: `${receivers[n % receivers.length]!.url}/${id}`, secret });
      for (const chain of chains) {
        await governance.append('subscription.upsert', {
          id: subscriptionId(id, chain.chainId),
          endpointId: id,
          chainId: chain.chainId,
          addresses: [chain.contract],
        });
      }
    }
    await Promise.all(Array.from({ length: options.instances }, () => add()));
  }, 120_000);

  afterEach(async ({ task }) => {
    if (task.result?.state === 'fail') console.error(await report());
  });

  afterAll(async () => {
    await killAllNodes();
    await Promise.all(receivers.map((r) => r.close()));
    await governance?.close();
    await Promise.all(chains.map((c) => c.anvil.stop()));
    await pgServer?.close();
    await Promise.all([...instances.values()].map((i) => i.dir.remove()));
    await keys?.remove();
  });

  return cluster;
}
