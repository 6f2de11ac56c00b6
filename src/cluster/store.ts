/**
 * What the cluster keeps in the store (src/cluster/coordinator.ts uses it): the instances and their
 * heartbeats, and the leases. Two engines: PostgreSQL (src/store/postgres/cluster.ts: the tables of
 * migration 002_cluster.sql, every time the database's clock) and local (local-store.ts: a LevelDB
 * node, which is a cluster of one and holds every lease).
 *
 * - `heartbeat(info)` records this instance (its version, start and what it holds) as alive now.
 * - `instances(liveMs)`: every recorded instance, `live` when its heartbeat is younger than `liveMs`,
 *   with its claims in flight (outbox jobs it has in hand); instances silent for `forgetMs` are deleted.
 * - `leases()`: every lease row, with `expiresInMs` by the database clock (negative: expired) and
 *   whether this instance may take it (`takeable`: free or expired, and not released by this instance
 *   with a hold still running).
 * - `acquire(name, leaseMs)`: takes a free or expired lease for `leaseMs` and answers its new epoch
 *   (one more than the last holder's), or undefined when another holds it.
 * - `renew(held, leaseMs)`: extends the leases this instance still holds at their epochs; answers the
 *   names renewed (a missing name was lost).
 * - `release(name, epoch, holdMs)`: frees a lease this instance holds; with `holdMs` > 0, this instance
 *   may not take it back for that long (another one takes it).
 * - `forceRelease(name, holdMs)`: frees a lease whoever holds it (an operator's request, answered by
 *   any instance); its holder may not take it back for `holdMs`. Answers the holder it had.
 * - `leave()`: releases every lease this instance holds and deletes its instance row (a drained
 *   instance is gone at once, not after missing heartbeats).
 */
export interface InstanceInfo {
  leases: string[];
  heights: Record<string, number>;
}

export interface InstanceRecord {
  id: string;
  version: string;
  startedAt: string;
  heartbeatAt: string;
  live: boolean;
  claims: number;
  info: InstanceInfo;
}

export interface LeaseRecord {
  name: string;
  holder: string | null;
  epoch: number;
  expiresAt: string;
  expiresInMs: number;
  takeable: boolean;
}

export interface ClusterStore {
  heartbeat(info: InstanceInfo): Promise<void>;
  instances(liveMs: number, forgetMs: number): Promise<InstanceRecord[]>;
  leases(): Promise<LeaseRecord[]>;
  acquire(name: string, leaseMs: number): Promise<number | undefined>;
  renew(held: ReadonlyMap<string, number>, leaseMs: number): Promise<Set<string>>;
  release(name: string, epoch: number, holdMs: number): Promise<void>;
  forceRelease(name: string, holdMs: number): Promise<string | null>;
  leave(): Promise<void>;
}
