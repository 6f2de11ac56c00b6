/**
 * The shared delivery limits (src/store/delivery-limits.ts) on PostgreSQL: tables `delivery_rate_buckets`
 * and `delivery_breakers` (migrations/003_delivery_limits.sql). Every time is the database clock
 * (`clock_timestamp()`), never an instance's.
 *
 * - `take` is ONE statement on the endpoint's row: an upsert that creates the bucket full (less what it
 *   grants), or refills it for the time since `refilled_at` (none when the clock stepped back), hands out
 *   min(want, whole tokens) and keeps the rest; the row lock serializes instances taking side by side.
 * - `openBreaker` upserts the endpoint's row, keeping the later `open_until`; `closeBreaker` and
 *   `forget` delete; `openBreakers` reads every row with the ms left of its cool-down.
 * Each call goes through the pool (timed, transient errors retried: src/store/postgres/pool.ts).
 */
import {
  checkTake,
  waitForToken,
  type BucketSettings,
  type DeliveryLimits,
  type SharedBreaker,
  type TokenGrant,
} from '../delivery-limits.ts';
import type { PgPool } from './pool.ts';

/** $1 endpoint, $2 rate, $3 burst, $4 want. The refilled level is spelled out where it is used (SET sees the old row). */
const REFILLED = `least(EXCLUDED.burst, b.tokens + greatest(0, extract(epoch FROM EXCLUDED.refilled_at - b.refilled_at)) * EXCLUDED.rate_per_sec)`;
const GRANT = `least($4::int, floor(${REFILLED} + 1e-9)::int)`;
const TAKE = `
INSERT INTO delivery_rate_buckets AS b (endpoint_id, rate_per_sec, burst, tokens, granted, refilled_at)
VALUES ($1::text, $2::float8, $3::float8, $3::float8 - least($4::int, floor($3::float8)::int), least($4::int, floor($3::float8)::int), clock_timestamp())
ON CONFLICT (endpoint_id) DO UPDATE SET
  rate_per_sec = EXCLUDED.rate_per_sec,
  burst = EXCLUDED.burst,
  granted = ${GRANT},
  tokens = greatest(0, ${REFILLED} - ${GRANT}),
  refilled_at = greatest(b.refilled_at, EXCLUDED.refilled_at)
RETURNING granted, tokens, rate_per_sec`;

/** $1 endpoint, $2 cool-down ms, $3 owner. */
const OPEN = `
INSERT INTO delivery_breakers AS b (endpoint_id, open_until, cooldown_ms, opened_by)
VALUES ($1::text, clock_timestamp() + $2::bigint * interval '1 millisecond', $2::bigint, $3::text)
ON CONFLICT (endpoint_id) DO UPDATE SET
  open_until = greatest(b.open_until, EXCLUDED.open_until),
  cooldown_ms = greatest(b.cooldown_ms, EXCLUDED.cooldown_ms),
  opened_by = CASE WHEN EXCLUDED.open_until > b.open_until THEN EXCLUDED.opened_by ELSE b.opened_by END`;
const CLOSE = 'DELETE FROM delivery_breakers WHERE endpoint_id = $1';
const LIST = `
SELECT endpoint_id, cooldown_ms, opened_by,
       greatest(0, ceil(extract(epoch FROM open_until - clock_timestamp()) * 1000))::bigint AS remaining_ms
  FROM delivery_breakers`;
const FORGET_BUCKET = 'DELETE FROM delivery_rate_buckets WHERE endpoint_id = $1';

export class PgDeliveryLimits implements DeliveryLimits {
  constructor(
    private readonly pg: PgPool,
    /** The instance named as `opened_by` of the breakers it opens. */
    private readonly owner: string,
  ) {}

  async take(endpointId: string, bucket: BucketSettings, want: number): Promise<TokenGrant> {
    checkTake(bucket, want);
    const { rows } = await this.pg.run('limits.take', (client) =>
      client.query<{ granted: number; tokens: number; rate_per_sec: number }>(TAKE, [endpointId, bucket.ratePerSec, bucket.burst, want]),
    );
    const row = rows[0]!;
    return { granted: row.granted, waitMs: row.granted > 0 ? 0 : waitForToken(row.tokens, row.rate_per_sec) };
  }

  async openBreaker(endpointId: string, cooldownMs: number): Promise<void> {
    await this.pg.run('limits.breaker-open', (client) => client.query(OPEN, [endpointId, Math.max(0, Math.round(cooldownMs)), this.owner]));
  }

  async closeBreaker(endpointId: string): Promise<void> {
    await this.pg.run('limits.breaker-close', (client) => client.query(CLOSE, [endpointId]));
  }

  async openBreakers(): Promise<SharedBreaker[]> {
    const { rows } = await this.pg.run('limits.breakers', (client) =>
      client.query<{ endpoint_id: string; cooldown_ms: string; opened_by: string; remaining_ms: string }>(LIST),
    );
    return rows.map((r) => ({
      endpointId: r.endpoint_id,
      remainingMs: Number(r.remaining_ms),
      cooldownMs: Number(r.cooldown_ms),
      openedBy: r.opened_by,
    }));
  }

  async forget(endpointId: string): Promise<void> {
    await this.pg.tx('limits.forget', async (client) => {
      await client.query(FORGET_BUCKET, [endpointId]);
      await client.query(CLOSE, [endpointId]);
    });
  }
}
