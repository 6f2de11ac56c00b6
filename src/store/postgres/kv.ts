/**
 * The key-value engine (src/store/kv.ts) on PostgreSQL: every space's entries are rows of the table
 * `kv (space, key COLLATE "C", value json)` (migrations/001_init.sql). `COLLATE "C"` compares the
 * keys' UTF-8 bytes, which is LevelDB's order; `json` keeps the text written, so a value reads back as
 * the JSON of what was put. A key cannot hold NUL (PostgreSQL text has none).
 *
 * - Every read and single write is one statement through the pool (src/store/postgres/pool.ts): timed
 *   as `kv.<method>`, transient errors retried.
 * - `batch(ops)` is one transaction (`kv.batch`); `applyKvOps(client, ops)` writes the same ops on a
 *   client the caller holds, inside its own transaction (the outbox's enqueue and completions). The ops
 *   are collapsed per key, the last one kept (the contract's "a later op on the same key wins"), then
 *   all puts go in one upsert over unnest arrays, and the deletes in one statement per space
 *   (`key = ANY`).
 * - Ranges (gt/gte/lt/lte, limit, reverse) are a WHERE on `key` within the space, ordered by key.
 *   `scan` reads pages of SCAN_PAGE rows by keyset (after the last key read), one statement each: not
 *   a snapshot as a LevelDB iterator is, but every row there throughout the scan is read exactly once.
 */
import type pg from 'pg';
import { EthhookError } from '../../runtime/errors.ts';
import type { Kv, KvFence, KvOp, KvRange, KvSpace } from '../kv.ts';
import type { PgPool } from './pool.ts';

/** Rows read per statement of a `scan`. */
export const SCAN_PAGE = 500;

export class PgKv implements Kv {
  readonly kind = 'postgres' as const;

  constructor(readonly pg: PgPool) {}

  space<V>(name: string): KvSpace<V> {
    return new PgSpace<V>(this.pg, name);
  }

  async batch(ops: readonly KvOp[]): Promise<void> {
    if (ops.length > 0) await this.pg.tx('kv.batch', (client) => applyKvOps(client, ops));
  }
}

/**
 * Checks `fence` in the caller's transaction: the lease row is locked (`FOR SHARE`) until the commit, so
 * a takeover waits for it; a lease no longer held (another holder, another epoch, expired by the
 * database clock) throws ETHHOOK_ERR_LEASE_LOST, which rolls the transaction back and is not retried.
 */
export async function checkFence(client: pg.PoolClient, fence: KvFence): Promise<void> {
  const { rowCount } = await client.query(FENCE_SQL, [fence.lease, fence.holder, fence.epoch]);
  if (rowCount === 0) {
    throw new EthhookError('ETHHOOK_ERR_LEASE_LOST', `lease ${fence.lease} is no longer held by ${fence.holder} at epoch ${fence.epoch}`, {
      lease: fence.lease,
      holder: fence.holder,
      epoch: fence.epoch,
    });
  }
}

const FENCE_SQL = `SELECT 1 FROM cluster_leases WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp() FOR SHARE`;

/**
 * Writes `ops` on `client` (in the caller's transaction): fences checked first, then the last op of
 * each key, puts in one statement.
 */
export async function applyKvOps(client: pg.PoolClient, ops: readonly KvOp[]): Promise<void> {
  const last = new Map<string, Exclude<KvOp, KvFence>>();
  for (const op of ops) {
    if (op.type === 'fence') {
      await checkFence(client, op);
      continue;
    }
    if (typeof op.key !== 'string') throw new TypeError(`key-value batch: the key of a ${op.type} in ${op.space} must be a string`);
    if (op.type === 'put' && op.value === undefined)
      throw new TypeError(`key-value batch: the put of ${op.key} in ${op.space} has no value`);
    const id = `${op.space}\0${op.key}`;
    last.delete(id);
    last.set(id, op);
  }
  const puts = { spaces: [] as string[], keys: [] as string[], values: [] as string[] };
  const dels = new Map<string, string[]>();
  for (const op of last.values()) {
    if (op.type === 'put') {
      puts.spaces.push(op.space);
      puts.keys.push(op.key);
      puts.values.push(JSON.stringify(op.value));
    } else {
      const keys = dels.get(op.space);
      if (keys) keys.push(op.key);
      else dels.set(op.space, [op.key]);
    }
  }
  if (puts.keys.length > 0) {
    await client.query(
      `INSERT INTO kv (space, key, value) SELECT s, k, v::json FROM unnest($1::text[], $2::text[], $3::text[]) AS t(s, k, v)
       ON CONFLICT (space, key) DO UPDATE SET value = EXCLUDED.value`,
      [puts.spaces, puts.keys, puts.values],
    );
  }
  for (const [space, keys] of dels) await client.query('DELETE FROM kv WHERE space = $1 AND key = ANY($2::text[])', [space, keys]);
}

interface RangeSql {
  where: string;
  params: unknown[];
  order: string;
  limit: string;
}

/** The WHERE (space and bounds), ORDER BY and LIMIT of `range` in `space`. */
function rangeSql(space: string, range: KvRange = {}): RangeSql {
  const params: unknown[] = [space];
  const conditions = ['space = $1'];
  for (const [bound, operator] of [
    ['gt', '>'],
    ['gte', '>='],
    ['lt', '<'],
    ['lte', '<='],
  ] as const) {
    const value = range[bound];
    if (value === undefined) continue;
    params.push(value);
    conditions.push(`key ${operator} $${params.length}`);
  }
  const limit = range.limit !== undefined && range.limit >= 0 && Number.isFinite(range.limit) ? ` LIMIT ${Math.floor(range.limit)}` : '';
  return { where: conditions.join(' AND '), params, order: range.reverse ? 'key DESC' : 'key', limit };
}

class PgSpace<V> implements KvSpace<V> {
  constructor(
    private readonly pg: PgPool,
    readonly name: string,
  ) {}

  async get(key: string): Promise<V | undefined> {
    const rows = await this.pg.run('kv.get', (c) =>
      c.query<{ value: V }>('SELECT value FROM kv WHERE space = $1 AND key = $2', [this.name, key]),
    );
    return rows.rows[0]?.value;
  }

  async getMany(keys: readonly string[]): Promise<Array<V | undefined>> {
    if (keys.length === 0) return [];
    const found = await this.pg.run('kv.getMany', (c) =>
      c.query<{ key: string; value: V }>('SELECT key, value FROM kv WHERE space = $1 AND key = ANY($2::text[])', [this.name, keys]),
    );
    const byKey = new Map(found.rows.map((r) => [r.key, r.value]));
    return keys.map((k) => byKey.get(k));
  }

  async has(keys: readonly string[]): Promise<boolean[]> {
    if (keys.length === 0) return [];
    const found = await this.pg.run('kv.has', (c) =>
      c.query<{ key: string }>('SELECT key FROM kv WHERE space = $1 AND key = ANY($2::text[])', [this.name, keys]),
    );
    const present = new Set(found.rows.map((r) => r.key));
    return keys.map((k) => present.has(k));
  }

  async put(key: string, value: V): Promise<void> {
    if (value === undefined) throw new TypeError(`key-value put: ${key} in ${this.name} has no value`);
    await this.pg.run('kv.put', (c) =>
      c.query(
        'INSERT INTO kv (space, key, value) VALUES ($1, $2, $3::json) ON CONFLICT (space, key) DO UPDATE SET value = EXCLUDED.value',
        [this.name, key, JSON.stringify(value)],
      ),
    );
  }

  async del(key: string): Promise<void> {
    await this.pg.run('kv.del', (c) => c.query('DELETE FROM kv WHERE space = $1 AND key = $2', [this.name, key]));
  }

  async entries(range?: KvRange): Promise<Array<[string, V]>> {
    const rows = await this.select<{ key: string; value: V }>('kv.entries', 'key, value', range);
    return rows.map((r) => [r.key, r.value]);
  }

  async keys(range?: KvRange): Promise<string[]> {
    return (await this.select<{ key: string }>('kv.keys', 'key', range)).map((r) => r.key);
  }

  async values(range?: KvRange): Promise<V[]> {
    return (await this.select<{ value: V }>('kv.values', 'value', range)).map((r) => r.value);
  }

  async *scan(range: KvRange = {}): AsyncIterable<[string, V]> {
    let left = range.limit !== undefined && range.limit >= 0 ? range.limit : Infinity;
    let page: KvRange = { ...range };
    while (left > 0) {
      const rows = await this.select<{ key: string; value: V }>('kv.scan', 'key, value', { ...page, limit: Math.min(left, SCAN_PAGE) });
      for (const row of rows) yield [row.key, row.value];
      if (rows.length < SCAN_PAGE) return;
      left -= rows.length;
      const after = rows.at(-1)!.key;
      page = range.reverse ? { ...page, lt: after, lte: undefined } : { ...page, gt: after, gte: undefined };
    }
  }

  async clear(range?: KvRange): Promise<void> {
    const sql = rangeSql(this.name, range);
    const statement =
      sql.limit === ''
        ? `DELETE FROM kv WHERE ${sql.where}`
        : `DELETE FROM kv WHERE space = $1 AND key IN (SELECT key FROM kv WHERE ${sql.where} ORDER BY ${sql.order}${sql.limit})`;
    await this.pg.run('kv.clear', (c) => c.query(statement, sql.params));
  }

  putOp(key: string, value: V): KvOp {
    return { type: 'put', space: this.name, key, value };
  }

  delOp(key: string): KvOp {
    return { type: 'del', space: this.name, key };
  }

  private async select<R extends pg.QueryResultRow>(op: string, columns: string, range?: KvRange): Promise<R[]> {
    const sql = rangeSql(this.name, range);
    const result = await this.pg.run(op, (c) =>
      c.query<R>(`SELECT ${columns} FROM kv WHERE ${sql.where} ORDER BY ${sql.order}${sql.limit}`, sql.params),
    );
    return result.rows;
  }
}
