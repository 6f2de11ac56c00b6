/**
 * The cluster store (src/cluster/store.ts) on PostgreSQL: tables `cluster_instances` and
 * `cluster_leases` (migrations/002_cluster.sql). Every time is the database's clock
 * (`clock_timestamp()`), so the instances' clocks never decide who holds a lease.
 *
 * - A lease is taken in one transaction: its row locked `FOR UPDATE SKIP LOCKED` (a row another
 *   transaction holds is passed over, never waited for: a paused holder's fenced write must not stop
 *   the others' rounds; the server ends such a session after `idleInTransactionMs`, pool.ts), then
 *   taken when free or expired and not released by this instance with a hold still running, at the
 *   next epoch, or created at epoch 1. Renewals and releases are one UPDATE each, conditioned on the
 *   holder (and epoch); a forced release locks the row the same way and answers
 *   ETHHOOK_ERR_CLUSTER_LEASE_BUSY while another transaction holds it.
 * - Fenced writes (src/store/postgres/kv.ts `checkFence`) read the lease row `FOR SHARE`, so a takeover
 *   (an UPDATE of the row) waits for a fenced transaction in flight, and one that commits first makes
 *   the fenced transaction fail.
 * - Every call is retried on transient errors for at most `retryForMs` (the coordinator's heartbeat
 *   period), not the pool's minute: a lease must not be believed held on a call still retrying.
 * - Claims in flight are counted from the outbox (`outbox_jobs.claimed_by` with a running claim).
 */
import type { ClusterStore, InstanceInfo, InstanceRecord, LeaseRecord } from '../../cluster/store.ts';
import { EthhookError } from '../../runtime/errors.ts';
import type { CallOptions, PgPool } from './pool.ts';

/** The lease row, locked for this transaction unless another one holds it (then no row). */
const LOCK_LEASE = `
SELECT holder, (holder IS NULL OR expires_at <= clock_timestamp())
    AND NOT (released_by IS NOT DISTINCT FROM $2 AND released_until > clock_timestamp()) AS takeable
FROM cluster_leases WHERE name = $1 FOR UPDATE SKIP LOCKED`;

const CREATE_LEASE = `
INSERT INTO cluster_leases (name, holder, epoch, expires_at)
VALUES ($1, $2, 1, clock_timestamp() + make_interval(secs => $3::double precision / 1000))
ON CONFLICT (name) DO NOTHING RETURNING epoch`;

const TAKE_LEASE = `
UPDATE cluster_leases SET holder = $2, epoch = epoch + 1,
  expires_at = clock_timestamp() + make_interval(secs => $3::double precision / 1000), released_by = NULL, released_until = NULL
WHERE name = $1 RETURNING epoch`;

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
WHERE name = $1 AND holder IS NOT NULL AND expires_at > clock_timestamp()`;

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

  /** The ids of the instances whose heartbeat is younger than `liveMs`: a read only (an offline command's check). */
  async liveIds(liveMs: number): Promise<string[]> {
    const { rows } = await this.pg.run('cluster.live', (c) => c.query<InstanceRow>(INSTANCES, [liveMs]), this.call);
    return rows.filter((r) => r.live).map((r) => r.id);
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
    const args = [name, this.self.id, leaseMs];
    return this.pg.tx(
      'cluster.acquire',
      async (c) => {
        const row = (await c.query<{ holder: string | null; takeable: boolean }>(LOCK_LEASE, [name, this.self.id])).rows[0];
        if (row === undefined) {
          const created = (await c.query<{ epoch: string }>(CREATE_LEASE, args)).rows[0];
          return created === undefined ? undefined : Number(created.epoch);
        }
        if (!row.takeable) return undefined;
        return Number((await c.query<{ epoch: string }>(TAKE_LEASE, args)).rows[0]!.epoch);
      },
      this.call,
    );
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
    return this.pg.tx(
      'cluster.release',
      async (c) => {
        const row = (await c.query<{ holder: string | null }>(LOCK_LEASE, [name, this.self.id])).rows[0];
        if (row === undefined) {
          if (((await c.query('SELECT 1 FROM cluster_leases WHERE name = $1', [name])).rowCount ?? 0) === 0) return null;
          throw new EthhookError(
            'ETHHOOK_ERR_CLUSTER_LEASE_BUSY',
            `a write fenced by lease ${name} is in flight: try again in a few seconds`,
            {
              lease: name,
            },
          );
        }
        const { rowCount } = await c.query(FORCE_RELEASE, [name, holdMs]);
        return rowCount === 0 ? null : row.holder;
      },
      this.call,
    );
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
