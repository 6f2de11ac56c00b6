/**
 * The cluster's notice bus on PostgreSQL (src/cluster/notices.ts): a notice is one `pg_notify` on the
 * channel `ethhook_notices_<schema>` (notifications are per database; the schema keeps two clusters on
 * one database apart), its payload the notice's JSON with the sender's id (`origin`), well under the
 * 8,000 bytes a payload may hold (a notice carries at most MAX_IDS ids). Sending goes through the pool,
 * fire and forget: a failure is logged (warn) and the notice is lost, which the receivers' reload on
 * reconnection and the Deliverer's cache TTL make good.
 *
 * Receiving: a connection of its own that LISTENs (listener.ts, `application_name` ethhook-notices,
 * made again when it ends); each notification of another origin is checked (JSON, `clusterNoticeSchema`;
 * a bad one is logged and dropped) and handed to `onNotice`, one at a time in the order received. Each
 * connection after the first calls `onResync` (notices may have been missed meanwhile). Memory: notices received wait in a queue of at most QUEUE_LIMIT; past that
 * the queue is replaced by one resync.
 */
import type pg from 'pg';
import { clusterNoticeSchema, type ClusterNotice, type NoticeBus } from '../../cluster/notices.ts';
import { describeError } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log.ts';
import { startPgListener } from './listener.ts';
import type { PgPool } from './pool.ts';

const QUEUE_LIMIT = 1_000;
/** Sending a notice is retried for at most this long: a notice later than that helps nobody. */
const SEND_RETRY_MS = 5_000;

export interface PgNoticeBusOptions {
  pool: PgPool;
  /** This instance's id: its own notices are not handed back to it. */
  origin: string;
  logger: Logger;
  onNotice(notice: ClusterNotice): Promise<void>;
  onResync(): Promise<void>;
}

export interface PgNoticeBus extends NoticeBus {
  close(): Promise<void>;
}

export function noticeChannel(schema: string): string {
  return `ethhook_notices_${schema}`.slice(0, 63);
}

export async function startPgNoticeBus(options: PgNoticeBusOptions): Promise<PgNoticeBus> {
  const { pool, origin } = options;
  const log = options.logger.child({ component: 'notice-bus' });
  const channel = noticeChannel(pool.schema);
  let closed = false;
  const queue: Array<ClusterNotice | 'resync'> = [];
  let draining = false;

  function enqueue(item: ClusterNotice | 'resync'): void {
    if (queue.length >= QUEUE_LIMIT) {
      queue.length = 0;
      log.warn({ limit: QUEUE_LIMIT }, 'cluster notices arrive faster than they are applied: a full reload instead');
      item = 'resync';
    }
    queue.push(item);
    if (!draining) void drain();
  }

  async function drain(): Promise<void> {
    draining = true;
    while (queue.length > 0 && !closed) {
      const item = queue.shift()!;
      try {
        await (item === 'resync' ? options.onResync() : options.onNotice(item));
      } catch (err) {
        log.warn({ err: describeError(err) }, 'applying a cluster notice failed');
      }
    }
    draining = false;
  }

  function received(msg: pg.Notification): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(msg.payload ?? '');
    } catch {
      log.warn({ channel }, 'cluster notice dropped: not JSON');
      return;
    }
    const from = (parsed as { origin?: unknown } | null)?.origin;
    if (from === origin) return;
    const { origin: _, ...rest } = (parsed ?? {}) as Record<string, unknown>;
    const notice = clusterNoticeSchema.safeParse(rest);
    if (!notice.success) {
      log.warn({ channel, from, issue: notice.error.issues[0]?.message }, 'cluster notice dropped: not a notice');
      return;
    }
    enqueue(notice.data);
  }

  const listener = await startPgListener({
    pool,
    channel,
    applicationName: 'ethhook-notices',
    what: 'cluster notices',
    log,
    onNotification: received,
    onListening(up, first) {
      if (up && !first) enqueue('resync');
    },
  });

  /** Sends one after another, so that the instances hear one writer's notices in the order told. */
  let sending: Promise<unknown> = Promise.resolve();
  return {
    publish(notice) {
      const payload = JSON.stringify({ origin, ...notice });
      sending = sending.then(() =>
        pool
          .run('cluster.notify', (c) => c.query('SELECT pg_notify($1, $2)', [channel, payload]), { retryForMs: SEND_RETRY_MS })
          .catch((err: unknown) => log.warn({ err: describeError(err), kind: notice.kind }, 'a cluster notice was not sent')),
      );
    },
    /** Stops listening once the notices told so far were sent (each retried for at most 5 s). */
    async close() {
      closed = true;
      await sending;
      await listener.close();
    },
  };
}
