/**
 * The ClusterCoordinator: this instance's membership in its cluster and the leases it holds.
 * Instances sharing one store (src/cluster/store.ts: PostgreSQL, or a LevelDB node as a cluster of one)
 * are interchangeable; each chain is ingested by the one instance holding its lease `chain:<chainId>`,
 * and governance messages are applied by the one holding `governance`.
 *
 * A round runs every `heartbeatMs` (and sooner, right when a lease it would take expires):
 * 1. renew the leases held. One the store no longer grants (another instance took it after this one
 *    missed its renewals: a pause, a network split) is lost at once. When the store cannot be reached,
 *    every lease is given up locally once `leaseMs - heartbeatMs` passed since the last renewal began,
 *    ahead of its expiry in the store. Fencing (src/store/kv.ts, KvFence) makes the writes of a holder
 *    that believes too long fail anyway; giving up early only keeps it from trying.
 * 2. heartbeat (what it holds, the chain heights it sees) and read the instances: live ones are those
 *    whose heartbeat is younger than `leaseMs`; one silent for FORGET_MS is deleted.
 * 3. spread the chains: hold at most ceil(chains / live instances). Above that, the chain held longest
 *    is released, one per round (after its ingestion stopped), with a hold of two rounds so that
 *    another instance takes it; below, free or expired chain leases are taken up to that number. A
 *    chain lease free for longer than a round (every instance at its share, or the one below it held
 *    off by its own hold, as after an operator's handover) is taken by any instance that may, above
 *    its share: no chain stays without an ingesting instance. The `governance` lease is taken by
 *    whichever instance finds it free first.
 *
 * Each lease name has a LeaseGate: the fence (lease, holder, epoch) while held, undefined otherwise.
 * Its subscribers (the chain listeners, the governance stream) are told every change and are awaited
 * (at most `heartbeatMs`) before a released lease is freed in the store, so ingestion has stopped
 * before another instance begins. A fenced write that fails with ETHHOOK_ERR_LEASE_LOST calls
 * `gate.suspect()`: the next round starts at once.
 *
 * `release(chainId)` is an operator's handover (POST /admin/cluster/release): held here, ingestion stops
 * and the lease is freed; held elsewhere, it is freed in the store and its holder finds it lost at its
 * next renewal. Either way the former holder may not take it back for 2 × `leaseMs`. `stop()` (SIGTERM,
 * after the actors stopped) releases every lease and removes this instance from the store.
 *
 * Metrics: `instance_up{peer}` (1 live, 0 silent; a forgotten peer's series is removed),
 * `cluster_instances_live`, `chain_lease_held{chain}`, `governance_lease_held`,
 * `cluster_lease_changes_total{lease, change}` (acquired, released, lost).
 *
 * Memory: a gate per lease name (chains + 1) and a series per peer seen in the store (peers are
 * forgotten after FORGET_MS).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { describeError, EthhookError, isEthhookError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/log.ts';
import type { KvFence } from '../store/kv.ts';
import type { ClusterStore, InstanceRecord, LeaseRecord } from './store.ts';

/** An instance whose heartbeat is older than this is deleted from the store (and its metric series). */
export const FORGET_MS = 10 * 60_000;
export const DEFAULT_CLUSTER_TIMING = { leaseMs: 15_000, heartbeatMs: 5_000 } as const;
/** A forced release finding the lease row in a fenced write tries again after this. */
const FORCE_RELEASE_RETRY_MS = 20;
/** A round never comes sooner than this after the previous one. */
const MIN_ROUND_MS = 50;
/** After a lease's expiry, the round that takes it waits this much more (the database clock decides). */
const EXPIRY_MARGIN_MS = 25;

export const GOVERNANCE_LEASE = 'governance';
export const chainLease = (chainId: number): string => `chain:${chainId}`;

export type LeaseSubscriber = (fence: KvFence | undefined) => void | Promise<void>;

export class LeaseGate {
  private fence: KvFence | undefined;
  private readonly subscribers = new Set<LeaseSubscriber>();

  constructor(
    readonly name: string,
    private readonly onSuspect: () => void,
  ) {}

  /** The fence to write with while the lease is held here. */
  current(): KvFence | undefined {
    return this.fence;
  }

  /** `fn` is told every change from now on; returns the unsubscribe. */
  subscribe(fn: LeaseSubscriber): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  /** A write fenced by this lease failed with ETHHOOK_ERR_LEASE_LOST: the coordinator checks at once. */
  suspect(): void {
    this.onSuspect();
  }

  /** Sets the fence and waits for the subscribers (at most `waitMs`). */
  async set(fence: KvFence | undefined, waitMs: number, log: Logger): Promise<void> {
    this.fence = fence;
    const told = Promise.allSettled([...this.subscribers].map(async (fn) => fn(fence))).then((results) => {
      for (const r of results) {
        if (r.status === 'rejected') log.error({ lease: this.name, err: describeError(r.reason) }, 'a lease subscriber failed');
      }
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([told, new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
  }
}

export interface ChainRef {
  chainId: number;
  name: string;
}

export interface CoordinatorOptions {
  store: ClusterStore;
  /** This instance's id (node.id). */
  self: string;
  chains: readonly ChainRef[];
  /** Whether this instance takes part in applying governance (it follows a governance stream). */
  governance: boolean;
  leaseMs: number;
  heartbeatMs: number;
  registry: Registry;
  logger: Logger;
  /** The chain heights this instance sees, by chain id, for its heartbeat. */
  heights(): Promise<Record<string, number>>;
}

export interface ClusterStatus {
  self: string;
  leaseMs: number;
  heartbeatMs: number;
  instances: Array<Omit<InstanceRecord, 'info'> & { leases: string[]; heights: Record<string, number> }>;
  leases: Array<Omit<LeaseRecord, 'takeable' | 'expiresInMs'>>;
}

export interface ClusterMetrics {
  instanceUp: Gauge<'peer'>;
  live: Gauge;
  chainLeaseHeld: Gauge<'chain'>;
  governanceLeaseHeld: Gauge;
  changes: Counter<'lease' | 'change'>;
}

const byRegistry = new WeakMap<Registry, ClusterMetrics>();

/** The cluster's metrics, created once per registry. */
export function clusterMetrics(registry: Registry): ClusterMetrics {
  const known = byRegistry.get(registry);
  if (known) return known;
  const registers = [registry];
  const metrics: ClusterMetrics = {
    instanceUp: new Gauge({
      name: 'instance_up',
      help: "1 while a cluster instance's heartbeat is younger than the lease time, 0 once older (as this instance sees the store)",
      labelNames: ['peer'],
      registers,
    }),
    live: new Gauge({ name: 'cluster_instances_live', help: 'Live instances of the cluster, as this instance counts them', registers }),
    chainLeaseHeld: new Gauge({
      name: 'chain_lease_held',
      help: "1 while this instance holds the chain's lease (it ingests the chain), 0 otherwise",
      labelNames: ['chain'],
      registers,
    }),
    governanceLeaseHeld: new Gauge({
      name: 'governance_lease_held',
      help: ' 1 while this instance holds the governance lease (it applies governance messages to the store)',
      registers,
    }),
    changes: new Counter({
      name: 'cluster_lease_changes_total',
      help: 'Leases acquired, released and lost by this instance',
      labelNames: ['lease', 'change'],
      registers,
    }),
  };
  byRegistry.set(registry, metrics);
  return metrics;
}

export class ClusterCoordinator {
  private readonly gates = new Map<string, LeaseGate>();
  private readonly chainNames = new Map<string, string>();
  /** Held here: lease name -> epoch, in the order taken. */
  private readonly held = new Map<string, number>();
  private readonly metrics: ClusterMetrics;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private serial: Promise<unknown> = Promise.resolve();
  private stopped = false;
  /** When the last renewal that succeeded began (performance.now()). */
  private lastRenewal = performance.now();
  private peers = new Set<string>();

  constructor(private readonly options: CoordinatorOptions) {
    this.metrics = clusterMetrics(options.registry);
    this.log = options.logger;
    for (const chain of options.chains) {
      const name = chainLease(chain.chainId);
      this.chainNames.set(name, chain.name);
      this.gates.set(name, new LeaseGate(name, () => this.soon()));
      this.metrics.chainLeaseHeld.set({ chain: chain.name }, 0);
    }
    this.gates.set(GOVERNANCE_LEASE, new LeaseGate(GOVERNANCE_LEASE, () => this.soon()));
    this.metrics.governanceLeaseHeld.set(0);
    for (const name of this.gates.keys())
      for (const change of ['acquired', 'released', 'lost']) this.metrics.changes.inc({ lease: name, change }, 0);
  }

  gate(name: string): LeaseGate {
    const gate = this.gates.get(name);
    if (!gate) throw new Error(`no lease gate named ${name}`);
    return gate;
  }

  /** Runs the first round (so a cluster of one holds its leases when this resolves), then one per period. */
  async start(): Promise<void> {
    const next = await this.exclusive(() => this.round());
    this.schedule(next);
  }

  /** Whether this instance holds the chain's lease now. */
  holds(chainId: number): boolean {
    return this.held.has(chainLease(chainId));
  }

  /** The instance holding the chain's lease, by the store (null: none). */
  async holder(chainId: number): Promise<string | null> {
    const lease = (await this.options.store.leases()).find((l) => l.name === chainLease(chainId));
    return lease && lease.holder !== null && lease.expiresInMs > 0 ? lease.holder : null;
  }

  /** An operator's handover of a chain (see the header). */
  async release(chainId: number): Promise<{ chain: number; holder: string | null; holdMs: number }> {
    const name = chainLease(chainId);
    if (!this.chainNames.has(name)) {
      throw new EthhookError('ETHHOOK_ERR_CLUSTER_CHAIN_UNKNOWN', `this cluster follows no chain ${chainId}`, { field: 'chain', chainId });
    }
    const holdMs = 2 * this.options.leaseMs;
    return this.exclusive(async () => {
      const epoch = this.held.get(name);
      if (epoch !== undefined) {
        await this.drop(name, 'released');
        await this.options.store.release(name, epoch, holdMs);
        this.log.warn({ lease: name, epoch, holdMs }, 'lease released on request');
        return { chain: chainId, holder: this.options.self, holdMs };
      }
      const holder = await this.forceRelease(name, holdMs);
      this.log.warn({ lease: name, holder, holdMs }, 'lease of another instance released on request');
      return { chain: chainId, holder, holdMs };
    });
  }

  /**
   * Frees another instance's lease, trying again while a write fenced by it is in flight
   * (ETHHOOK_ERR_CLUSTER_LEASE_BUSY) for up to two heartbeats: a busy holder's transactions are short.
   */
  private async forceRelease(name: string, holdMs: number): Promise<string | null> {
    const until = performance.now() + 2 * this.options.heartbeatMs;
    for (;;) {
      try {
        return await this.options.store.forceRelease(name, holdMs);
      } catch (err) {
        if (!isEthhookError(err, 'ETHHOOK_ERR_CLUSTER_LEASE_BUSY') || performance.now() > until) throw err;
        await new Promise((resolve) => setTimeout(resolve, FORCE_RELEASE_RETRY_MS));
      }
    }
  }

  async status(): Promise<ClusterStatus> {
    const { store, self, leaseMs, heartbeatMs } = this.options;
    const [instances, leases] = await Promise.all([store.instances(leaseMs, FORGET_MS), store.leases()]);
    return {
      self,
      leaseMs,
      heartbeatMs,
      instances: instances.map(({ info, ...i }) => ({ ...i, leases: info.leases, heights: info.heights })),
      leases: leases.map(({ takeable: _t, expiresInMs: _e, ...l }) => l),
    };
  }

  /** Releases every lease held (ingestion already stopped) and leaves the store. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.exclusive(async () => {
      for (const name of [...this.held.keys()]) await this.drop(name, 'released');
      try {
        await this.options.store.leave();
        this.log.info('left the cluster: leases released');
      } catch (err) {
        this.log.warn({ err: describeError(err) }, 'leaving the cluster failed: its leases expire on their own');
      }
    });
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.serial.then(fn, fn);
    this.serial = run.catch(() => undefined);
    return run;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.exclusive(() => this.round()).then(
        (next) => this.schedule(next),
        () => this.schedule(this.options.heartbeatMs),
      );
    }, delayMs);
    this.timer.unref();
  }

  /** Starts a round at once (a fenced write failed). */
  private soon(): void {
    if (!this.stopped) this.schedule(0);
  }

  /** One round (see the header); resolves with the delay before the next. */
  private async round(): Promise<number> {
    if (this.stopped) return this.options.heartbeatMs;
    await this.renew();
    try {
      return await this.spread();
    } catch (err) {
      this.log.warn({ err: describeError(err) }, 'cluster round failed; trying again next round');
      return this.options.heartbeatMs;
    }
  }

  private async renew(): Promise<void> {
    const { store, leaseMs, heartbeatMs } = this.options;
    const began = performance.now();
    if (this.held.size === 0) {
      this.lastRenewal = began;
      return;
    }
    try {
      const renewed = await store.renew(this.held, leaseMs);
      this.lastRenewal = began;
      for (const name of [...this.held.keys()]) {
        if (!renewed.has(name)) {
          this.log.error(
            { lease: name, epoch: this.held.get(name) },
            'lease lost: another instance holds it now; this one stops writing for it',
          );
          await this.drop(name, 'lost');
        }
      }
    } catch (err) {
      const since = performance.now() - this.lastRenewal;
      this.log.warn({ err: describeError(err), sinceRenewalMs: Math.round(since) }, 'lease renewal failed');
      if (since > leaseMs - heartbeatMs) {
        for (const name of [...this.held.keys()]) {
          this.log.error({ lease: name, sinceRenewalMs: Math.round(since) }, 'lease given up: not renewed in time');
          await this.drop(name, 'lost');
        }
      }
    }
  }

  private async spread(): Promise<number> {
    const { store, leaseMs, heartbeatMs, self } = this.options;
    await store.heartbeat({ leases: [...this.held.keys()], heights: await this.options.heights() });
    const instances = await store.instances(leaseMs, FORGET_MS);
    this.report(instances);
    const live = Math.max(1, instances.filter((i) => i.live).length);
    const chains = [...this.chainNames.keys()];
    const target = Math.ceil(chains.length / live);
    const mine = [...this.held.keys()].filter((name) => name !== GOVERNANCE_LEASE);
    if (mine.length > target) {
      // The lease held longest goes: one just taken (an orphaned chain, below) stays where it went.
      const name = mine[0]!;
      const epoch = this.held.get(name)!;
      await this.drop(name, 'released');
      await store.release(name, epoch, 2 * heartbeatMs);
      this.log.info({ lease: name, held: mine.length, target, live }, 'lease released to spread the chains over the cluster');
      return heartbeatMs;
    }
    const leases = new Map((await store.leases()).map((l) => [l.name, l]));
    const wanted = shuffle(chains.filter((name) => !this.held.has(name)));
    if (this.options.governance && !this.held.has(GOVERNANCE_LEASE)) wanted.push(GOVERNANCE_LEASE);
    let room = target - mine.length;
    let next = heartbeatMs;
    for (const name of wanted) {
      const lease = leases.get(name);
      // A chain free for longer than a round has found no instance below its share: taken anyway, so
      // that no chain goes without an ingesting instance (the spread sends one back next round).
      const orphaned = lease !== undefined && lease.takeable && lease.expiresInMs < -heartbeatMs;
      const isChain = name !== GOVERNANCE_LEASE;
      if (isChain && room <= 0 && !orphaned) continue;
      if (lease && !lease.takeable) {
        if (lease.holder !== self && lease.expiresInMs > 0) next = Math.min(next, lease.expiresInMs + EXPIRY_MARGIN_MS);
        continue;
      }
      const epoch = await store.acquire(name, leaseMs);
      if (epoch === undefined) continue;
      if (isChain) room--;
      await this.take(name, epoch, lease);
    }
    return Math.max(MIN_ROUND_MS, next);
  }

  private async take(name: string, epoch: number, previous: LeaseRecord | undefined): Promise<void> {
    this.held.set(name, epoch);
    this.count(name, 'acquired');
    this.log.info({ lease: name, epoch, previousHolder: previous?.holder ?? null }, 'lease acquired');
    await this.gate(name).set({ type: 'fence', lease: name, holder: this.options.self, epoch }, this.options.heartbeatMs, this.log);
  }

  /** Stops using a lease here (its subscribers told and awaited); the store is the caller's business. */
  private async drop(name: string, change: 'released' | 'lost'): Promise<void> {
    if (!this.held.delete(name)) return;
    this.count(name, change);
    await this.gate(name).set(undefined, this.options.heartbeatMs, this.log);
  }

  private count(name: string, change: 'acquired' | 'released' | 'lost'): void {
    this.metrics.changes.inc({ lease: name, change });
    const held = change === 'acquired' ? 1 : 0;
    if (name === GOVERNANCE_LEASE) this.metrics.governanceLeaseHeld.set(held);
    else this.metrics.chainLeaseHeld.set({ chain: this.chainNames.get(name)! }, held);
  }

  private report(instances: readonly InstanceRecord[]): void {
    const seen = new Set(instances.map((i) => i.id));
    for (const peer of this.peers) if (!seen.has(peer)) this.metrics.instanceUp.remove({ peer });
    for (const i of instances) this.metrics.instanceUp.set({ peer: i.id }, i.live ? 1 : 0);
    this.peers = seen;
    this.metrics.live.set(instances.filter((i) => i.live).length);
  }
}

/** Whether `err` says a fenced write found its lease gone. */
export function isLeaseLost(err: unknown): boolean {
  return isEthhookError(err, 'ETHHOOK_ERR_LEASE_LOST');
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
