/**
 * The PostgreSQL connection pool every PostgreSQL store runs its statements through (npm `pg`).
 *
 * `openPgPool({ url, poolSize, schema, statementTimeoutMs, retryForMs, logger, registry })`:
 * - at most `poolSize` connections (default 10); each starts with `search_path` = `schema` (default
 *   `ethhook`, where the migrations put every table) and `statement_timeout` = `statementTimeoutMs`
 *   (default 15 s), both sent in the startup packet (no extra round trip; a `?options=` in the URL
 *   would replace them, so leave it out);
 * - `run(op, fn)` lends `fn` one connection (not a transaction); `tx(op, fn)` wraps `fn` in
 *   BEGIN/COMMIT, rolling back when it throws. `op` names the operation in the metrics and logs
 *   (`kv.batch`, `outbox.due`: a code path, never a key).
 * - A transient error (the connection refused, reset or lost; SQLSTATE class 08; 57P01-57P03 the server
 *   shutting down or starting; 53300 too many connections; 40001 serialization failure; 40P01 deadlock;
 *   57014 statement timeout; no connection within the connect timeout) runs the operation again on a
 *   fresh connection, after 50 ms doubling to at most 2 s, for up to `retryForMs` (default 60 s), then
 *   throws ETHHOOK_ERR_STORE_UNAVAILABLE naming the operation and the last error. So `fn` may run more
 *   than once, and a transaction whose COMMIT was cut off may have landed: every operation is written
 *   to be idempotent (upserts, deletes, claims guarded by their owner).
 * - Any other error (a constraint, a syntax error, a missing table) is thrown at once, unchanged, and
 *   logged with its operation and SQLSTATE.
 * - Metrics (src/store/metrics.ts): `store_operation_duration_seconds{op}` per call (its retries
 *   included), `store_errors_total{op,kind}` per failed attempt (kind `unavailable` / `timeout`:
 *   retried; `query`: not), `store_up` 0 from a transient failure to the next success. `up()` reads
 *   the same; `lastError` is the transient error that took it down (undefined while up).
 * - Logs name the server by its URL with the password masked (redactUrl), never the URL itself. A
 *   connection that fails while idle in the pool is dropped by the pool and logged, never thrown.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type { Registry } from 'prom-client';
import { redactUrl } from '../../config/redact.ts';
import { EthhookError } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log.ts';
import { STORE_ERROR_KINDS, storeMetrics, type StoreErrorKind } from '../metrics.ts';

export const DEFAULT_PG_POOL_OPTIONS = {
  poolSize: 10,
  schema: 'ethhook',
  statementTimeoutMs: 15_000,
  retryForMs: 60_000,
} as const;

export interface PgPoolOptions {
  url: string;
  poolSize?: number;
  schema?: string;
  statementTimeoutMs?: number;
  /**
   * A session idle inside a transaction for longer is ended by the server (default: the statement
   * timeout). A process paused in a transaction (GC, SIGSTOP, a network split) then holds no lock
   * longer than this: a cluster sets it below its lease time, so a frozen instance's locks cannot keep
   * the others from taking over its leases.
   */
  idleInTransactionMs?: number;
  retryForMs?: number;
  logger: Logger;
  registry: Registry;
}

export interface PgPool {
  readonly pool: pg.Pool;
  readonly schema: string;
  /** The server's URL with its password masked: for logs and errors. */
  readonly target: string;
  /** `retryForMs` (default: the pool's) bounds how long transient errors of this call are retried. */
  run<T>(op: string, fn: (client: pg.PoolClient) => Promise<T>, options?: CallOptions): Promise<T>;
  tx<T>(op: string, fn: (client: pg.PoolClient) => Promise<T>, options?: CallOptions): Promise<T>;
  up(): boolean;
  readonly lastError: Error | undefined;
  close(): Promise<void>;
}

export interface CallOptions {
  retryForMs?: number;
}

const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2_000;
const CONNECT_TIMEOUT_MS = 10_000;
const IDLE_TIMEOUT_MS = 30_000;

const TRANSIENT_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '40001', '40P01']);
const TIMEOUT_SQLSTATE = '57014';
const CONNECTION_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
/** What `pg` says, without a code, when a connection ends under it or the pool gives none in time. */
const CONNECTION_MESSAGES = [/Connection terminated/i, /connection error/i, /not queryable/i];
const CONNECT_TIMEOUT_MESSAGE = /timeout exceeded when trying to connect/i;

/** How a failed attempt counts: `query` errors are thrown at once, the others retried. */
export function storeErrorKind(err: unknown): StoreErrorKind {
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : '';
  if (code === TIMEOUT_SQLSTATE || CONNECT_TIMEOUT_MESSAGE.test(message)) return 'timeout';
  if (typeof code === 'string' && (code.startsWith('08') || TRANSIENT_SQLSTATES.has(code) || CONNECTION_ERRNOS.has(code))) {
    return 'unavailable';
  }
  if (code === undefined && CONNECTION_MESSAGES.some((m) => m.test(message))) return 'unavailable';
  return 'query';
}

/** Whether the connection the error came from is unusable (dropped from the pool instead of reused). */
function breaksConnection(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === '40001' || code === '40P01') return false;
  return storeErrorKind(err) === 'unavailable';
}

/** A schema name the store accepts: lower case, so that PostgreSQL's folding never changes it. */
export const PG_SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export async function openPgPool(options: PgPoolOptions): Promise<PgPool> {
  const poolSize = options.poolSize ?? DEFAULT_PG_POOL_OPTIONS.poolSize;
  const schema = options.schema ?? DEFAULT_PG_POOL_OPTIONS.schema;
  const statementTimeoutMs = options.statementTimeoutMs ?? DEFAULT_PG_POOL_OPTIONS.statementTimeoutMs;
  const retryForMs = options.retryForMs ?? DEFAULT_PG_POOL_OPTIONS.retryForMs;
  const { logger } = options;
  if (!PG_SCHEMA_NAME.test(schema)) throw new Error(`store schema ${JSON.stringify(schema)} is not a lower-case SQL identifier`);
  const target = redactUrl(options.url);
  const metrics = storeMetrics(options.registry);
  const { default: driver } = await import('pg');
  const pool = new driver.Pool({
    connectionString: options.url,
    max: poolSize,
    options: `-c search_path=${schema} -c statement_timeout=${statementTimeoutMs} -c idle_in_transaction_session_timeout=${options.idleInTransactionMs ?? statementTimeoutMs}`,
    application_name: 'ethhook',
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: IDLE_TIMEOUT_MS,
  });
  let isUp = true;
  let lastError: Error | undefined;
  let closed = false;
  metrics.up.set(1);

  // A connection lost while lent out errors on the client as well as on its query: the query's
  // rejection is what the operation handles, so the client's event is only recorded.
  pool.on('connect', (client) => client.on('error', () => undefined));
  pool.on('error', (err) => logger.warn({ store: target, err: err.message }, 'an idle PostgreSQL connection failed; the pool drops it'));

  function markDown(op: string, err: Error): void {
    lastError = err;
    if (!isUp) return;
    isUp = false;
    metrics.up.set(0);
    logger.warn({ store: target, op, err: err.message, code: (err as { code?: string }).code }, 'PostgreSQL unavailable; retrying');
  }

  function markUp(): void {
    if (isUp) return;
    isUp = true;
    lastError = undefined;
    metrics.up.set(1);
    logger.info({ store: target }, 'PostgreSQL answers again');
  }

  async function once<T>(fn: (client: pg.PoolClient) => Promise<T>, inTx: boolean): Promise<T> {
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      if (!inTx) return await fn(client);
      await client.query('BEGIN');
      try {
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
          broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
        });
        throw err;
      }
    } catch (err) {
      if (breaksConnection(err)) broken ??= err instanceof Error ? err : new Error(String(err));
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /** Ops seen so far: each op's error series start at 0, so an alert's increase() sees its first error. */
  const seenOps = new Set<string>();

  async function attempt<T>(op: string, fn: (client: pg.PoolClient) => Promise<T>, inTx: boolean, options?: CallOptions): Promise<T> {
    const retryFor = options?.retryForMs ?? retryForMs;
    if (!seenOps.has(op)) {
      seenOps.add(op);
      for (const kind of STORE_ERROR_KINDS) metrics.errors.inc({ op, kind }, 0);
    }
    const endTimer = metrics.duration.startTimer({ op });
    const started = Date.now();
    let delay = RETRY_MIN_MS;
    try {
      for (let attempts = 1; ; attempts++) {
        try {
          const result = await once(fn, inTx);
          markUp();
          return result;
        } catch (err) {
          const kind = storeErrorKind(err);
          metrics.errors.inc({ op, kind });
          const error = err instanceof Error ? err : new Error(String(err));
          if (kind === 'query') {
            logger.error({ store: target, op, err: error.message, code: (err as { code?: string }).code }, 'PostgreSQL operation failed');
            throw err;
          }
          markDown(op, error);
          if (closed || Date.now() - started + delay > retryFor) {
            throw new EthhookError(
              'ETHHOOK_ERR_STORE_UNAVAILABLE',
              `the store operation ${op} kept failing on ${target} for ${Date.now() - started} ms (${attempts} attempts): ${error.message}`,
              { op, store: target, attempts, kind },
              { cause: err },
            );
          }
          await sleep(delay);
          delay = Math.min(delay * 2, RETRY_MAX_MS);
        }
      }
    } finally {
      endTimer();
    }
  }

  logger.info({ store: target, schema, poolSize }, 'PostgreSQL store');
  return {
    pool,
    schema,
    target,
    run: (op, fn, callOptions) => attempt(op, fn, false, callOptions),
    tx: (op, fn, callOptions) => attempt(op, fn, true, callOptions),
    up: () => isUp,
    get lastError() {
      return lastError;
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}
