/**
 * The cluster store (src/cluster/store.ts) on PostgreSQL: tables `cluster_instances` and
 * `cluster_leases` (migrations/002_cluster.sql). Every time is the database's clock
 * (`clock_timestamp()`), so the instances' clocks never decide who holds a lease.
 *
 * - A lease is taken with one upsert whose update applies only to a free or expired row that this
 *   instance did not release with a hold still running; the new holder gets the next epoch. Renewals,
 *   releases and forced releases are one UPDATE each, conditioned on the holder (and epoch).
 * - Fenced writes (src/store/postgres/kv.ts `checkFence`) read the lease row `FOR SHARE`, so a takeover
 *   (an UPDATE of the row) waits for a fenced transaction in flight, and one that commits first makes
 *   the fenced transaction fail.
 * - Every call is retried on transient errors for at most `retryForMs` (the coordinator's heartbeat
 *   period), not the pool's minute: a lease must not be believed held on a call still retrying.
 * - Claims in flight are counted from the outbox (`outbox_jobs.claimed_by` with a running claim).
 */
import type { ClusterStore, InstanceInfo, InstanceRecord, LeaseRecord } from '../../cluster/store.ts';
import type { CallOptions, PgPool } from './pool.ts';

const ACQUIRE = `
INSERT INTO cluster_leases (name, holder, epoch, expires_at)
VALUES ($1, $2, 1, clock_timestamp() + make_interval(secs => $3::double precision / 1000))
ON CONFLICT (name) DO UPDATE
  SET holder = EXCLUDED.holder, epoch = cluster_leases.epoch + 1, expires_at = EXCLUDED.expires_at,
      released_by = NULL, released_until = NULL
  WHERE (cluster_leases.holder IS NULL OR cluster_leases.expires_at <= clock_timestamp())
    AND NOT (cluster_leases.released_by IS NOT DISTINCT FROM $2 AND cluster_leases.released_until > clock_timestamp())
RETURNING epoch`;

const RENEW = `
UPDATE cluster_leases SET expires_at = clock_timestamp() + make_interval(secs => $4::double precision / 1000)
FROM unnest($2::text[], $3::bigint[]) AS h(name, epoch)
WHERE cluster_leases.name = h.name AND cluster_leases.epoch = h.epoch AND cluster_leases.holder = $1
  AND cluster_leases.expires_at > clock_timestamp()
RETURNING cluster_leases.name`;

const RELEASE = `
UPDATE cluster_leases SET holder = NULL, expires_at = clock_timestamp(), released_by = $2,
  released_until = clock_timestamp() + make_interval(secs => $4::double precision / 1000)
WHERE name = $1 AND holder = $2 AND epoch = $3`;

const FORCE_RELEASE = `
UPDATE cluster_leases SET holder = NULL, expires_at = clock_timestamp(), released_by = holder,
  released_until = clock_timestamp() + make_interval(secs => $2::double precision / 1000)
FROM (SELECT name, holder AS previous FROM cluster_leases WHERE name = $1 FOR UPDATE) AS old
WHERE cluster_leases.name = old.name AND cluster_leases.holder IS NOT NULL AND cluster_leases.expires_at > clock_timestamp()
RETURNING old.previous`;

const HEARTBEAT = `
INSERT INTO cluster_instances (id, version, started_at, heartbeat_at, info)
VALUES ($1, $2, $3, clock_timestamp(), $4::json)
ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, started_at = EXCLUDED.started_at,
  heartbeat_at = EXCLUDED.heartbeat_at, info = EXCLUDED.info`;

const INSTANCES = `
SELECT id, version, started_at, heartbeat_at, info,
  heartbeat_at > clock_timestamp() - make_interval(secs => $1::double precision / 1000) AS live
FROM cluster_instances ORDER BY id`;

const LEASES = `
SELECT name, holder, epoch, expires_at,
  (extract(epoch FROM expires_at - clock_timestamp()) * 1000)::double precision AS expires_in_ms,
  (holder IS NULL OR expires_at <= clock_timestamp())
    AND NOT (released_by IS NOT DISTINCT FROM $1 AND released_until > clock_timestamp()) AS takeable
FROM cluster_leases ORDER BY name`;

const CLAIMS = `SELECT claimed_by, count(*)::int AS n FROM outbox_jobs WHERE claimed_by IS NOT NULL AND claim_until > $1 GROUP BY claimed_by`;

interface InstanceRow {
  id: string;
  version: string;
  started_at: Date;
  heartbeat_at: Date;
  info: InstanceInfo;
  live: boolean;
}

interface LeaseRow {
  name: string;
  holder: string | null;
  epoch: string;
  expires_at: Date;
  expires_in_ms: number;
  takeable: boolean;
}

export class PgClusterStore implements ClusterStore {
  readonly kind = 'postgres' as const;
  private readonly startedAt = new Date();
  private readonly call: CallOptions;

  constructor(
    private readonly pg: PgPool,
    private readonly self: { id: string; version: string },
    retryForMs: number,
  ) {
    this.call = { retryForMs };
  }

  async heartbeat(info: InstanceInfo): Promise<void> {
    const { id, version } = this.self;
    await this.pg.run('cluster.heartbeat', (c) => c.query(HEARTBEAT, [id, version, this.startedAt, JSON.stringify(info)]), this.call);
  }

  async instances(liveMs: number, forgetMs: number): Promise<InstanceRecord[]> {
    return this.pg.run(
      'cluster.instances',
      async (c) => {
        await c.query(
          `DELETE FROM cluster_instances WHERE heartbeat_at < clock_timestamp() - make_interval(secs => $1::double precision / 1000)`,
          [forgetMs],
        );
        const rows = (await c.query<InstanceRow>(INSTANCES, [liveMs])).rows;
        const claims = new Map(
          (await c.query<{ claimed_by: string; n: number }>(CLAIMS, [Date.now()])).rows.map((r) => [r.claimed_by, r.n]),
        );
        return rows.map((r) => ({
          id: r.id,
          version: r.version,
          startedAt: r.started_at.toISOString(),
          heartbeatAt: r.heartbeat_at.toISOString(),
          live: r.live,
          claims: claims.get(r.id) ?? 0,
          info: r.info,
        }));
      },
      this.call,
    );
  }

  async leases(): Promise<LeaseRecord[]> {
    const { rows } = await this.pg.run('cluster.leases', (c) => c.query<LeaseRow>(LEASES, [this.self.id]), this.call);
    return rows.map((r) => ({
      name: r.name,
      holder: r.holder,
      epoch: Number(r.epoch),
      expiresAt: r.expires_at.toISOString(),
      expiresInMs: r.expires_in_ms,
      takeable: r.takeable,
    }));
  }

  async acquire(name: string, leaseMs: number): Promise<number | undefined> {
    const { rows } = await this.pg.run(
      'cluster.acquire',
      (c) => c.query<{ epoch: string }>(ACQUIRE, [name, this.self.id, leaseMs]),
      this.call,
    );
    return rows[0] === undefined ? undefined : Number(rows[0].epoch);
  }

  async renew(held: ReadonlyMap<string, number>, leaseMs: number): Promise<Set<string>> {
    if (held.size === 0) return new Set();
    const { rows } = await this.pg.run(
      'cluster.renew',
      (c) => c.query<{ name: string }>(RENEW, [this.self.id, [...held.keys()], [...held.values()], leaseMs]),
      this.call,
    );
    return new Set(rows.map((r) => r.name));
  }

  async release(name: string, epoch: number, holdMs: number): Promise<void> {
    await this.pg.run('cluster.release', (c) => c.query(RELEASE, [name, this.self.id, epoch, holdMs]), this.call);
  }

  async forceRelease(name: string, holdMs: number): Promise<string | null> {
    const { rows } = await this.pg.run('cluster.release', (c) => c.query<{ previous: string }>(FORCE_RELEASE, [name, holdMs]), this.call);
    return rows[0]?.previous ?? null;
  }

  async leave(): Promise<void> {
    await this.pg.tx(
      'cluster.leave',
      async (c) => {
        await c.query(`UPDATE cluster_leases SET holder = NULL, expires_at = clock_timestamp() WHERE holder = $1`, [this.self.id]);
        await c.query(`DELETE FROM cluster_instances WHERE id = $1`, [this.self.id]);
      },
      this.call,
    );
  }
}
