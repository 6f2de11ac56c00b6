/**
 * The live streams of a cluster on PostgreSQL: the instance that ingests a chain writes the log events
 * it publishes into `stream_events` (migration 004) and NOTIFYs; every instance LISTENs, reads the rows
 * it has not seen and publishes them to its own stream clients (src/streams/relay.ts does the buffering
 * and the checks). Chosen over each instance fetching logs for its own clients: that would spend the
 * chain provider's quota once per instance, and instances that saw a reorg differently would show their
 * clients different chains.
 *
 *   const relay = await startStreamRelay({ pool, hub, origin: node.id, logger, registry });
 *   createMatcher({ …, publish: (event) => relay.publish(event) });
 *   await relay.close();              // before the pool closes
 *
 * Writing: a batch is one transaction on the pool (`streams.relay.write`, retried as the pool retries):
 * a transaction-level advisory lock (`ethhook:stream-events:<schema>`), the row (origin = this
 * instance's id, the events as JSON), and `pg_notify(channel, id)`. The lock makes ids commit in
 * increasing order: two instances ingesting two chains would otherwise commit id 8 before id 7, and a
 * reader that had seen 8 would never read 7. A NOTIFY payload is limited to 8,000 bytes, so it carries
 * only the id; the events are in the row. Each batch carries a UUID drawn once per batch (migration 005,
 * unique): when the pool runs the transaction again after a COMMIT that had landed (cut off, or answered
 * with an error), the insert finds its batch there and writes and notifies nothing, so a batch is read
 * once. Remote clients may still see a block's events twice after the Matcher replays the block.
 *
 * Reading: a connection of its own, outside the pool (`application_name` ethhook-stream-relay), that
 * LISTENs on `ethhook_streams_<schema>` (notifications are per database; the schema keeps two clusters
 * on one database apart; cut to PostgreSQL's 63 bytes). The first connection starts after the newest
 * row (no replay: clients get what is published while they are connected). A notification, a timer
 * every `pollMs` (default 5 s; it also proves the connection still answers) and each new connection
 * read the rows after the last id seen, `READ_PAGE_ROWS` at a time in id order; rows of this instance's
 * origin are skipped (their events were published here already), the others go to the local hub. A
 * connection that ends, or a read that fails or takes longer than `READ_TIMEOUT_MS`, is dropped and a
 * new one made after 100 ms, doubling to 5 s; it reads on from the last id seen, so what was written
 * meanwhile reaches the clients late but whole, if the relay is back within the retention.
 *
 * Pruning: every `pruneEveryMs` (default 30 s) each instance deletes the rows written more than
 * `retainMs` (default 5 minutes) ago by the database's clock, so a row lives between `retainMs` and
 * `retainMs + pruneEveryMs` (plus a failed prune's retries). A relay that comes back after more than
 * `retainMs` without reading may have missed rows: it says so (warn).
 *
 * Memory: the outbound buffer is StreamRelay's (10,000 events); a read holds one page of rows
 * (`READ_PAGE_ROWS`, 32 batches of at most 1,000 events).
 */
import { createHash, randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Registry } from 'prom-client';
import { describeError } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log.ts';
import type { StreamEvent } from '../../streams/events.ts';
import type { StreamHub } from '../../streams/hub.ts';
import { StreamRelay, type StreamRelayOptions } from '../../streams/relay.ts';
import { startPgListener, type PgListener } from './listener.ts';
import type { PgPool } from './pool.ts';

export const DEFAULT_PG_STREAM_RELAY_OPTIONS = {
  retainMs: 5 * 60_000,
  pruneEveryMs: 30_000,
  pollMs: 5_000,
} as const;

/** Rows per read: a page holds at most this many batches of at most `maxBatchEvents` (1,000) events. */
const READ_PAGE_ROWS = 32;
const READ_TIMEOUT_MS = 10_000;

const INSERT_SQL = `
  INSERT INTO stream_events (origin, batch, events) VALUES ($1, $2, $3::json)
  ON CONFLICT (batch) DO NOTHING RETURNING id::text AS id`;
const NEWEST_SQL = 'SELECT coalesce(max(id), 0)::text AS id FROM stream_events';
const READ_SQL = `
  SELECT id::text AS id, origin = $2 AS own, CASE WHEN origin = $2 THEN NULL ELSE events END AS events,
         extract(epoch FROM clock_timestamp() - written_at)::float8 AS age
  FROM stream_events WHERE id > $1 ORDER BY id LIMIT ${READ_PAGE_ROWS}`;
const PRUNE_SQL = "DELETE FROM stream_events WHERE written_at < clock_timestamp() - $1 * interval '1 millisecond'";

export interface PgStreamRelayOptions {
  pool: PgPool;
  hub: StreamHub;
  /** This instance's id (node.id): its own rows are not published twice. */
  origin: string;
  logger: Logger;
  registry: Registry;
  retainMs?: number;
  pruneEveryMs?: number;
  pollMs?: number;
  maxBufferedEvents?: StreamRelayOptions['maxBufferedEvents'];
  maxBatchEvents?: StreamRelayOptions['maxBatchEvents'];
}

export interface PgStreamRelay {
  /** The Matcher's publish: the local hub, and the other instances for log events. Never waits. */
  publish(event: StreamEvent): void;
  /** Writes what is buffered (for up to 2 s), stops listening and pruning. Call before the pool closes. */
  close(): Promise<void>;
}

/** The NOTIFY channel of a schema's stream events. */
export function streamEventsChannel(schema: string): string {
  return `ethhook_streams_${schema}`.slice(0, 63);
}

/** The advisory lock key that orders the writers of a schema's stream events (a signed bigint, as text). */
function writeLockKey(schema: string): string {
  return createHash('sha256').update(`ethhook:stream-events:${schema}`).digest().readBigInt64BE(0).toString();
}

interface Row {
  id: string;
  own: boolean;
  events: unknown;
  age: number;
}

export async function startStreamRelay(options: PgStreamRelayOptions): Promise<PgStreamRelay> {
  const { pool, hub, origin, registry } = options;
  const retainMs = options.retainMs ?? DEFAULT_PG_STREAM_RELAY_OPTIONS.retainMs;
  const pruneEveryMs = options.pruneEveryMs ?? DEFAULT_PG_STREAM_RELAY_OPTIONS.pruneEveryMs;
  const pollMs = options.pollMs ?? DEFAULT_PG_STREAM_RELAY_OPTIONS.pollMs;
  const log = options.logger.child({ component: 'stream-relay' });
  const channel = streamEventsChannel(pool.schema);
  const lockKey = writeLockKey(pool.schema);

  const relay = new StreamRelay({
    hub,
    registry,
    log,
    ...(options.maxBufferedEvents !== undefined ? { maxBufferedEvents: options.maxBufferedEvents } : {}),
    ...(options.maxBatchEvents !== undefined ? { maxBatchEvents: options.maxBatchEvents } : {}),
    write: (events) => {
      const batch = randomUUID();
      const json = JSON.stringify(events);
      return pool.tx('streams.relay.write', async (client) => {
        await client.query('SELECT pg_advisory_xact_lock($1)', [lockKey]);
        const { rows } = await client.query<{ id: string }>(INSERT_SQL, [origin, batch, json]);
        // No row: an earlier run of this transaction committed the batch (and its NOTIFY).
        if (rows[0] !== undefined) await client.query('SELECT pg_notify($1, $2)', [channel, rows[0].id]);
      });
    },
  });

  /** The last id read; undefined until the first connection says where the stream stands. */
  let last: string | undefined;
  let lastReadAt = Date.now();
  let reading = false;
  let again = false;
  let closed = false;

  // Assigned once the first connection was tried: a read before that finds no connection and waits.
  let listener: PgListener | undefined = undefined;
  listener = await startPgListener({
    pool,
    channel,
    applicationName: 'ethhook-stream-relay',
    what: 'stream relay',
    log,
    queryTimeoutMs: READ_TIMEOUT_MS,
    onNotification: read,
    async onConnect(client) {
      if (last === undefined) last = (await client.query<{ id: string }>(NEWEST_SQL)).rows[0]!.id;
    },
    onListening(up) {
      relay.counters.listening = up && !closed;
      if (!up) return;
      if (Date.now() - lastReadAt > retainMs) {
        log.warn(
          { awayMs: Date.now() - lastReadAt, retainMs },
          'stream relay: away longer than the retention; events of other instances may have been missed',
        );
      }
      log.info({ after: last }, 'stream relay reads after');
      read();
    },
  });

  /** Reads every row after `last`; calls made meanwhile make it read once more when done. */
  function read(): void {
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    again = false;
    void readRows().finally(() => {
      reading = false;
      if (again && !closed) read();
    });
  }

  async function readRows(): Promise<void> {
    const on = listener?.client();
    if (on === undefined || last === undefined) return;
    try {
      for (;;) {
        const { rows }: pg.QueryResult<Row> = await on.query<Row>(READ_SQL, [last, origin]);
        for (const row of rows) {
          last = row.id;
          if (!row.own) relay.receive(row.events, row.age);
        }
        if (rows.length < READ_PAGE_ROWS) break;
      }
      lastReadAt = Date.now();
    } catch (err) {
      if (on !== listener?.client() || closed) return;
      log.warn({ err: describeError(err) }, 'stream relay: reading failed; connecting again');
      await listener.drop(on);
    }
  }

  async function prune(): Promise<void> {
    try {
      const { rowCount } = await pool.run('streams.relay.prune', (c) => c.query(PRUNE_SQL, [retainMs]));
      if (rowCount) log.debug({ rows: rowCount }, 'stream relay: old rows pruned');
    } catch (err) {
      if (!closed) log.warn({ err: describeError(err) }, 'stream relay: pruning failed');
    }
  }

  read();
  const poll = setInterval(read, pollMs);
  const pruner = setInterval(() => void prune(), pruneEveryMs);
  poll.unref();
  pruner.unref();

  return {
    publish: (event) => relay.publish(event),
    async close() {
      await relay.close();
      closed = true;
      clearInterval(poll);
      clearInterval(pruner);
      relay.counters.listening = false;
      await listener?.close();
    },
  };
}
