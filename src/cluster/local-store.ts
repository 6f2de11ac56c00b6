/**
 * The cluster store (store.ts) of a LevelDB node: a cluster of one. Its leases live in memory and are
 * always this instance's to take (a LevelDB directory has one process); an epoch grows with every
 * take, as on PostgreSQL. It reports no claims (a LevelDB outbox is one process's: nothing to share).
 * Memory: one entry per lease name (the node's chains and `governance`).
 */
import type { ClusterStore, InstanceInfo, InstanceRecord, LeaseRecord } from './store.ts';

interface LocalLease {
  holder: string | null;
  epoch: number;
  expiresAt: number;
  releasedUntil: number;
}

export class LocalClusterStore implements ClusterStore {
  private readonly startedAt = new Date().toISOString();
  private heartbeatAt = this.startedAt;
  private info: InstanceInfo = { leases: [], heights: {} };
  private readonly held = new Map<string, LocalLease>();

  constructor(private readonly self: { id: string; version: string }) {}

  async heartbeat(info: InstanceInfo): Promise<void> {
    this.info = info;
    this.heartbeatAt = new Date().toISOString();
  }

  async instances(): Promise<InstanceRecord[]> {
    const { id, version } = this.self;
    return [{ id, version, startedAt: this.startedAt, heartbeatAt: this.heartbeatAt, live: true, claims: 0, info: this.info }];
  }

  async leases(): Promise<LeaseRecord[]> {
    const now = Date.now();
    return [...this.held].map(([name, l]) => ({
      name,
      holder: l.holder,
      epoch: l.epoch,
      expiresAt: new Date(l.expiresAt).toISOString(),
      expiresInMs: l.expiresAt - now,
      takeable: (l.holder === null || l.expiresAt <= now) && l.releasedUntil <= now,
    }));
  }

  async acquire(name: string, leaseMs: number): Promise<number | undefined> {
    const now = Date.now();
    const lease = this.held.get(name);
    if (lease && ((lease.holder !== null && lease.expiresAt > now) || lease.releasedUntil > now)) return undefined;
    const epoch = (lease?.epoch ?? 0) + 1;
    this.held.set(name, { holder: this.self.id, epoch, expiresAt: now + leaseMs, releasedUntil: 0 });
    return epoch;
  }

  async renew(held: ReadonlyMap<string, number>, leaseMs: number): Promise<Set<string>> {
    const renewed = new Set<string>();
    for (const [name, epoch] of held) {
      const lease = this.held.get(name);
      if (lease?.holder !== this.self.id || lease.epoch !== epoch) continue;
      lease.expiresAt = Date.now() + leaseMs;
      renewed.add(name);
    }
    return renewed;
  }

  async release(name: string, epoch: number, holdMs: number): Promise<void> {
    const lease = this.held.get(name);
    if (lease?.holder !== this.self.id || lease.epoch !== epoch) return;
    Object.assign(lease, { holder: null, expiresAt: Date.now(), releasedUntil: Date.now() + holdMs });
  }

  async forceRelease(name: string, holdMs: number): Promise<string | null> {
    const lease = this.held.get(name);
    if (!lease || lease.holder === null) return null;
    const holder = lease.holder;
    Object.assign(lease, { holder: null, expiresAt: Date.now(), releasedUntil: Date.now() + holdMs });
    return holder;
  }

  async leave(): Promise<void> {
    for (const lease of this.held.values())
      if (lease.holder === this.self.id) Object.assign(lease, { holder: null, expiresAt: Date.now() });
  }
}
