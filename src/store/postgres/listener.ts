/**
 * A LISTEN that lasts: a connection of its own, outside the pool (named `applicationName` in
 * pg_stat_activity), that LISTENs on `channel` and hands every notification to `onNotification`. The
 * stream relay (stream-relay.ts) and the cluster's notice bus (notice-bus.ts) each keep one.
 *
 * - A new connection LISTENs, then `onConnect(client)` runs on it (e.g. to read where a table stands)
 *   before it is the current one; then `onListening(true, first)` (first: the first connection of this
 *   listener). A connection that fails to come up is retried after 100 ms, doubling to 5 s.
 * - A connection that ends (the server restarted, the network cut), or that its user `drop`s (a read on
 *   it failed or hung: `queryTimeoutMs`), is replaced the same way, after `onListening(false)`.
 * - `close()` stops it all and ends the connection.
 */
import type pg from 'pg';
import { describeError } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log.ts';
import type { PgPool } from './pool.ts';

const CONNECT_TIMEOUT_MS = 10_000;
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;

export interface PgListenerOptions {
  pool: PgPool;
  channel: string;
  applicationName: string;
  /** Names the listener in its log lines ("stream relay", "cluster notices"). */
  what: string;
  log: Logger;
  /** Cancels a query on the connection that runs longer (default: none). */
  queryTimeoutMs?: number;
  onNotification(msg: pg.Notification): void;
  onConnect?(client: pg.Client): Promise<void>;
  onListening?(up: boolean, first: boolean): void;
}

export interface PgListener {
  /** The connection listening now, if any. */
  client(): pg.Client | undefined;
  /** Ends `client` (if it is still the current one) so that a new connection replaces it. */
  drop(client: pg.Client): Promise<void>;
  close(): Promise<void>;
}

export async function startPgListener(options: PgListenerOptions): Promise<PgListener> {
  const { pool, channel, what, log } = options;
  const { default: driver } = await import('pg');
  let current: pg.Client | undefined;
  let closed = false;
  let connections = 0;
  let delay = RECONNECT_MIN_MS;
  let timer: NodeJS.Timeout | undefined;

  async function connect(): Promise<void> {
    const next = new driver.Client({
      connectionString: pool.pool.options.connectionString,
      options: pool.pool.options.options,
      application_name: options.applicationName,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      ...(options.queryTimeoutMs !== undefined ? { query_timeout: options.queryTimeoutMs } : {}),
      keepAlive: true,
    });
    next.on('error', () => undefined);
    try {
      await next.connect();
      await next.query(`LISTEN ${next.escapeIdentifier(channel)}`);
      await options.onConnect?.(next);
    } catch (err) {
      await next.end().catch(() => undefined);
      throw err;
    }
    if (closed) {
      await next.end().catch(() => undefined);
      return;
    }
    current = next;
    next.on('notification', (msg) => options.onNotification(msg));
    next.on('end', () => lost(next));
    delay = RECONNECT_MIN_MS;
    log.info({ channel }, `${what}: listening`);
    options.onListening?.(true, connections++ === 0);
  }

  function lost(which: pg.Client): void {
    if (which !== current) return;
    current = undefined;
    options.onListening?.(false, false);
    if (closed) return;
    log.warn({ channel }, `${what}: its connection was lost; connecting again`);
    reconnect();
  }

  function reconnect(): void {
    timer = setTimeout(() => {
      timer = undefined;
      if (closed) return;
      connect().catch((err: unknown) => {
        log.debug({ err: describeError(err), retryInMs: delay }, `${what}: connecting failed`);
        delay = Math.min(delay * 2, RECONNECT_MAX_MS);
        reconnect();
      });
    }, delay);
  }

  try {
    await connect();
  } catch (err) {
    log.warn({ err: describeError(err) }, `${what}: connecting failed; retrying`);
    reconnect();
  }

  return {
    client: () => current,
    async drop(client) {
      if (client === current) await client.end().catch(() => undefined);
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      const on = current;
      current = undefined;
      await on?.end().catch(() => undefined);
    },
  };
}
