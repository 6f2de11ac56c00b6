/**
 * The world a chaos run acts on, shared by every fault (faults.ts) and the runner (run.ts):
 *
 * - `chain`: a real anvil (automine: a block per transaction) with the Tick contract `contract`; the
 *   runner and the faults reach it directly. `chainLock` serializes what changes the chain's shape
 *   (a tick, a reorg, a flood), so a reorg never orphans a transaction whose receipt is being awaited.
 * - `proxy`: a loopback TCP proxy in front of anvil's port. The node reaches the chain (WebSocket and
 *   HTTP alike) only through it, so cutting it cuts the node's chain connections and nothing else.
 * - `receiver`: the customer's HTTP server; one path per endpoint, signatures checked per path. Healthy,
 *   it answers 200 after 5..80 ms (`healthy`), so a kill often lands while requests are in flight.
 * - `cluster` (cluster.ts): the node processes, and the runner as their process manager: one node on
 *   one data dir, or with `cluster: N` a cluster of N instances on one PostgreSQL schema (leases of
 *   CHAOS_CLUSTER_TIMING). It records exits nobody asked for and starts those processes again.
 *   `close()` stops every instance with SIGTERM and resolves with how they exited (`FinalExit`).
 * - `contractLogs(fromBlock)`: the contract's logs as the chain gives them now, each with its block's
 *   timestamp; `orphaned`: the logs the reorg fault took off the chain (read just before each reorg).
 * - `admin(...)`: an admin API call that survives node churn (`ChaosCluster.admin`).
 * - `random`: the run's seeded draws made at injection time (which instance a fault hits: who is up
 *   then is not in the plan).
 * - `record(...)`: the timeline of what happened, in seconds since `startedAt`; `injected(...)` also
 *   counts a fault that really happened.
 * - `pg` (`store: 'postgres'`): the node's store is PostgreSQL, on a server of the run's own
 *   (test/support/pg-server.ts: its own data directory and port, under os.tmpdir() as
 *   `ethhook-chaos-pg-*`), which the store-outage fault stops and starts; without it, LevelDB in the
 *   node's data dir. Either way a node keeps its data dir (its master key) across restarts. A cluster
 *   needs PostgreSQL: its instances share the schema `ethhook` and one master key.
 */
import { TICK_TOPIC } from '../src/dev-chain/contract.ts';
import { Serial } from '../src/runtime/serial.ts';
import type { EndpointCreated, SubscriptionAnswer } from '../test/support/admin-answers.ts';
import type { ApiAnswer } from '../test/support/node-process.ts';
import { startPgServer, type PgServer } from '../test/support/pg-server.ts';
import { startTcpProxy, type TcpProxy } from '../test/support/tcp-proxy.ts';
import { mulberry32, startReceiver, type Behaviour, type Receiver } from '../test/support/receiver.ts';
import { CHAIN_ID, nodeChain, startTickChain, type TickChain } from '../test/e2e/e2e-chain.ts';
import { CHAOS_CLUSTER_TIMING, ChaosCluster, type ChaosInstance, type FinalExit } from './cluster.ts';
import type { ChainLog } from './invariant.ts';
import type { ChaosStore } from './scenarios.ts';

/** Actors the actor faults pick from (names, as the admin API accepts them). */
export const CHAOS_ACTORS = ['deliverer', 'matcher', `chain-listener:${CHAIN_ID}`] as const;

/** The subscriptions the invariant is checked on: which endpoint path, which filter. */
const SUBSCRIPTIONS = [
  { path: '/a', filter: { topics: [TICK_TOPIC] } },
  { path: '/a', filter: { confirmations: 2 } },
  { path: '/b', filter: {} },
] as const;
/** The deepest subscription's confirmations: blocks mined at the end so every log is deep enough. */
export const MAX_CONFIRMATIONS = 2;

export interface TimelineEntry {
  /** Seconds since the run started. */
  t: number;
  kind: string;
  detail: string;
}

export interface ChaosContextOptions {
  /** Seed of the receiver's answer delays. */
  seed: number;
  signal?: AbortSignal;
  /** The node's store; default `level`. */
  store?: ChaosStore;
  /** Instances of a cluster on PostgreSQL; undefined for one node. */
  cluster?: number;
}

/** A healthy receiver: 200 after 5..80 ms (seeded). */
function healthyReceiver(seed: number): Behaviour {
  const random = mulberry32(seed);
  return () => ({ status: 200, body: 'ok', delayMs: 5 + Math.floor(random() * 75) });
}

export class ChaosContext {
  readonly startedAt = Date.now();
  readonly timeline: TimelineEntry[] = [];
  /** Faults injected, by kind. */
  readonly injections = new Map<string, number>();
  /** After each kill of the chain's holder: ms until another instance held the chain, null when none did in time. */
  readonly takeovers: Array<number | null> = [];
  /** The chain's changes, one at a time (the store's Serial: each `run` starts when the previous one ended). */
  readonly chainLock = new Serial();
  readonly cluster: ChaosCluster;
  readonly random: () => number;
  /** Subscription ids the invariant is checked on. */
  readonly subscriptions: string[] = [];
  /** Subscriptions a flood created and has not deleted yet. */
  readonly floodSubscriptions = new Set<string>();
  /** Every log of the contract a reorg took off the chain, as the chain gave it before the reorg. */
  readonly orphaned: ChainLog[] = [];
  /** Block of the contract's deployment: no reorg may reach it. */
  deployBlock = 0;
  contract = '';
  private closing: Promise<FinalExit> | undefined;

  private constructor(
    readonly chain: TickChain,
    readonly proxy: TcpProxy,
    readonly receiver: Receiver,
    /** What the receiver does when no fault breaks it. */
    readonly healthy: Behaviour,
    readonly options: ChaosContextOptions,
    /** Receiver path → the endpoint's secret, read by the receiver to verify signatures. */
    private readonly secrets: Map<string, string>,
    /** The node's PostgreSQL, on a run with `store: 'postgres'`. */
    readonly pg: PgServer | undefined,
  ) {
    this.cluster = new ChaosCluster({
      size: options.cluster,
      config: (id) => this.nodeConfig(id),
      record: (kind, detail) => this.record(kind, detail),
      now: () => this.now(),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    this.random = mulberry32(options.seed + 1);
  }

  /** Starts anvil, the proxy, the receiver (and PostgreSQL); the node is started by `setup()`. */
  static async create(options: ChaosContextOptions): Promise<ChaosContext> {
    if (options.cluster !== undefined && options.store !== 'postgres') throw new Error('chaos: a cluster needs the PostgreSQL store');
    const parts: Array<{ stop(): Promise<void> } | { close(): Promise<void> }> = [];
    try {
      const chain = await startTickChain();
      parts.push(chain);
      const proxy = await startTcpProxy(chain.anvil.port);
      parts.push(proxy);
      const secrets = new Map<string, string>();
      const healthy = healthyReceiver(options.seed);
      const receiver = await startReceiver({ behaviour: healthy, secrets: (path) => [secrets.get(path)].filter((s) => s !== undefined) });
      parts.push(receiver);
      const pg = options.store === 'postgres' ? await startPgServer({ prefix: 'ethhook-chaos-pg-' }) : undefined;
      if (pg) parts.push(pg);
      return new ChaosContext(chain, proxy, receiver, healthy, options, secrets, pg);
    } catch (err) {
      for (const p of parts.reverse()) await ('close' in p ? p.close() : p.stop()).catch(() => undefined);
      throw err;
    }
  }

  get aborted(): boolean {
    return this.options.signal?.aborted ?? false;
  }

  /** Seconds since the run started, one decimal. */
  now(): number {
    return Math.round((Date.now() - this.startedAt) / 100) / 10;
  }

  record(kind: string, detail: string): void {
    this.timeline.push({ t: this.now(), kind, detail });
  }

  /** Records a fault that was really injected, and counts it by kind (a doubled kill counts twice). */
  injected(kind: string, detail: string): void {
    this.record(kind, detail);
    this.injections.set(kind, (this.injections.get(kind) ?? 0) + 1);
  }

  /**
   * A node's configuration: it follows the chain through the proxy, with short timeouts and retries so
   * a run converges; in a cluster, instance `id` with the chaos lease timing.
   */
  nodeConfig(id?: string): Record<string, unknown> {
    const through = `127.0.0.1:${this.proxy.port}`;
    return {
      chains: [
        nodeChain(this.chain, {
          wsUrl: `ws://${through}`,
          httpUrl: `http://${through}`,
          confirmations: 0,
          heartbeatMs: 1_000,
          requestTimeoutMs: 2_000,
          ackTimeoutMs: 5_000,
          pollIntervalMs: 250,
          reconnect: { minMs: 100, maxMs: 1_000 },
        }),
      ],
      security: { allowPrivateTargets: true },
      deliverer: {
        requestTimeoutMs: 1_000,
        // About a minute of attempts: longer than any fault lasts, so no job is dead-lettered by one.
        retry: { scheduleMs: [0, 200, 500, 1_000, 1_000, ...Array.from({ length: 28 }, () => 2_000)], jitter: 0.2 },
        circuitBreaker: { failureThreshold: 5, cooldownMs: 1_000 },
      },
      // A small Matcher mailbox, so a burst of changes meets backpressure (the flood fault).
      runtime: { actors: { matcher: { mailbox: { capacity: 64 } } } },
      ...(this.pg ? { store: { kind: 'postgres', url: this.pg.url } } : {}),
      ...(id === undefined ? {} : { node: { id }, cluster: CHAOS_CLUSTER_TIMING }),
    };
  }

  /** The contract's logs from `fromBlock` to the head, as anvil gives them now (with `blockTimestamp`). */
  async contractLogs(fromBlock = 0): Promise<ChainLog[]> {
    const logs = await this.chain.anvil.rpc<Array<Omit<ChainLog, 'blockTimestamp'> & { blockTimestamp?: string }>>('eth_getLogs', [
      { fromBlock: `0x${fromBlock.toString(16)}`, toBlock: 'latest', address: this.contract },
    ]);
    for (const log of logs) {
      if (typeof log.blockTimestamp !== 'string')
        throw new Error(`chaos: anvil gave a log without blockTimestamp (block ${log.blockHash})`);
    }
    return logs as ChainLog[];
  }

  /** An admin API call on `target`, or on any ready instance, retried across node churn until `deadlineMs`. */
  admin<T = unknown>(method: string, path: string, body?: unknown, deadlineMs = 30_000, target?: ChaosInstance): Promise<ApiAnswer<T>> {
    return this.cluster.admin<T>(method, path, body, deadlineMs, target);
  }

  /** Starts the node(s), then creates the endpoints and the subscriptions through `/v1` (on the instances in turn), on a new contract. */
  async setup(): Promise<void> {
    await this.cluster.create();
    this.contract = await this.chain.deploy();
    this.deployBlock = await this.chain.head();
    const endpoints = new Map<string, string>();
    for (const path of new Set(SUBSCRIPTIONS.map((s) => s.path))) {
      const res = await this.admin<EndpointCreated>('POST', '/v1/endpoints', {
        url: `${this.receiver.url}${path}`,
        description: `chaos ${path}`,
      });
      if (res.status !== 201) throw new Error(`chaos: creating the endpoint ${path} answered ${res.status}: ${JSON.stringify(res.body)}`);
      this.secrets.set(path, res.body.secret);
      endpoints.set(path, res.body.endpoint.id);
    }
    for (const s of SUBSCRIPTIONS) {
      const res = await this.admin<SubscriptionAnswer>('POST', '/v1/subscriptions', {
        endpointId: endpoints.get(s.path),
        chainId: CHAIN_ID,
        addresses: [this.contract],
        ...s.filter,
      });
      if (res.status !== 201) throw new Error(`chaos: creating a subscription answered ${res.status}: ${JSON.stringify(res.body)}`);
      this.subscriptions.push(res.body.subscription.id);
    }
  }

  /**
   * Undoes every fault, whatever state the faults left: PostgreSQL up, chain reachable, receiver
   * answering, every instance running (a paused one continued, a killed one started), every actor of
   * every instance started, flood subscriptions deleted.
   */
  async healAll(): Promise<void> {
    if (this.pg && !this.pg.running) await this.pg.start();
    this.proxy.refuse(false);
    this.receiver.setBehaviour(this.healthy);
    await Promise.all(
      this.cluster.members().map(async (instance) => {
        if (instance.state === 'paused' && instance.node) await this.cluster.resume(instance, instance.node);
        await (
          await this.cluster.start(instance)
        ).running;
      }),
    );
    for (const instance of this.cluster.members()) {
      for (const actor of CHAOS_ACTORS) await this.admin('POST', '/admin/actors/start', { actor }, 30_000, instance);
    }
    for (const id of [...this.floodSubscriptions]) {
      const res = await this.admin('DELETE', `/v1/subscriptions/${id}`);
      if (res.status === 200 || res.status === 404) this.floodSubscriptions.delete(id);
    }
  }

  /**
   * Stops every instance (SIGTERM, then SIGKILL after 15 s), the receiver, the proxy, anvil and
   * PostgreSQL, and removes the data dirs; resolves with how the nodes exited. Safe to call twice.
   */
  close(): Promise<FinalExit> {
    this.closing ??= this.stopEverything();
    return this.closing;
  }

  private async stopEverything(): Promise<FinalExit> {
    const exit = await this.cluster.stop();
    await this.receiver.close().catch(() => undefined);
    await this.proxy.stop().catch(() => undefined);
    await this.chain.stop().catch(() => undefined);
    await this.pg?.close().catch(() => undefined);
    return exit;
  }
}
