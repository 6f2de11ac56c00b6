/**
 * StreamHub: the in-process fan-out of live events to stream clients (WebSocket and SSE alike).
 *
 *   const hub = new StreamHub({ registry, log });
 *   hub.publish({ kind: 'log.created', chainId, …, at });   // from the Matcher, GovernanceStream, …
 *
 * Publishing never waits and never writes to a socket: `publish` gives the event the next id, checks
 * each client's filter (a few set lookups), appends the shared frame to the buffers of the clients it
 * matches, and schedules a flush. Its cost is O(clients) with no I/O, whatever the clients do.
 *
 * A flush writes each client's whole buffer in one write, so what costs is the number of flushes, not
 * of events: a write to a socket is a syscall (~10 µs on loopback), so 1,000 clients make a flush of
 * ~10 ms. Flushes are therefore paced by their own cost: the next one starts no sooner than the CPU
 * time the last one took after it ended (at most about half of the process's CPU goes to flushing, the
 * rest to the pipeline and the sockets; CPU time rather than wall time, so that a flush the OS
 * preempted does not delay the next one further). With few clients a flush takes microseconds and
 * runs on the next turn (`setImmediate`); with many, events published meanwhile join the next batch,
 * so the fan-out keeps up with any event rate while the latency stays about twice a flush's duration.
 * A client whose buffer reaches half of `clientBufferEvents` while a flush waits out that pacing gets
 * the flush on the next turn: pacing never lets a buffer grow past its capacity.
 *
 * A client whose socket has stopped taking data and whose buffer holds `clientBufferEvents` (default
 * 1024; client.ts says exactly when) when one more event arrives for it is dropped on the spot: it
 * leaves the fan-out, its buffer is discarded, its connection gets the close notice `slow consumer:
 * buffer full (N events)` with code ETHHOOK_ERR_STREAM_SLOW_CONSUMER, and `dropped` counts it. The
 * other clients and the publisher do not notice.
 *
 * Event ids increase by one per published event (whether or not a client gets it) from 1 when the hub
 * is created; a client sees increasing ids within each priority lane. There is no replay: a client
 * that reconnects gets the events published after it is back.
 *
 * Transports call `subscribe` when they admit a connection and `release` when it is gone; the hub
 * counts connections per transport for the limits, `/v1/health/streaming` and the gauges.
 */
import type { Registry } from 'prom-client';
import type { Logger } from '../runtime/log.ts';
import { StreamClient, type ClientInfo, type StreamSink } from './client.ts';
import type { StreamErrorCode } from './errors.ts';
import type { StreamEvent } from './events.ts';
import { describeFilter, filterMatches, type StreamFilter } from './filter.ts';
import { EventFrame } from './frame.ts';
import { newStreamCounters, streamCounters, type StreamCounters, type Transport } from './metrics.ts';

export interface StreamHubOptions {
  /** Where the stream metrics are registered (once per registry). */
  registry?: Registry;
  /** Drops and subscriptions are logged here. */
  log?: Logger;
  /** Events a client may have waiting before it is dropped as a slow consumer. Default 1024. */
  clientBufferEvents?: number;
}

export interface StreamHubStats {
  /** Events published since the hub was created. */
  published: number;
  /** Events written to clients (one per client per event). */
  sent: number;
  /** Clients dropped as slow consumers. */
  dropped: number;
  connections: Record<Transport, number>;
}

export const DEFAULT_CLIENT_BUFFER_EVENTS = 1024;
/** Share of the CPU flushes may take when they are back to back (see above). */
const FLUSH_DUTY_CYCLE = 0.5;

export class StreamHub {
  readonly clientBufferEvents: number;
  /** Clients in the fan-out. */
  private readonly clients = new Set<StreamClient>();
  /** Clients ended (dropped, …) whose connection has not closed yet: they still count as connections. */
  private readonly closing = new Set<StreamClient>();
  private readonly counters: StreamCounters;
  private readonly log: Logger | undefined;
  private readonly totals = { published: 0, sent: 0, dropped: 0 };
  private readonly connections: Record<Transport, number> = { websocket: 0, sse: 0 };
  private lastId = 0;
  private nextClientId = 0;
  private pending: StreamClient[] = [];
  private flushScheduled = false;
  /** The flush waiting out the duty cycle, if it is a timer. */
  private flushTimer: NodeJS.Timeout | null = null;
  /** performance.now() before which the next flush does not start. */
  private nextFlushAt = 0;

  constructor(options: StreamHubOptions = {}) {
    this.clientBufferEvents = options.clientBufferEvents ?? DEFAULT_CLIENT_BUFFER_EVENTS;
    if (!Number.isInteger(this.clientBufferEvents) || this.clientBufferEvents < 1) {
      throw new RangeError(`clientBufferEvents must be a positive integer, got ${this.clientBufferEvents}`);
    }
    this.counters = options.registry ? streamCounters(options.registry) : newStreamCounters();
    this.log = options.log;
  }

  /** Fans the event out to the clients whose filter it matches; returns its id. Never blocks. */
  publish(event: StreamEvent): number {
    const id = ++this.lastId;
    this.totals.published++;
    this.counters.emitted++;
    if (this.clients.size === 0) return id;
    const frame = new EventFrame(id, event);
    const address = 'address' in event ? event.address.toLowerCase() : undefined;
    for (const client of this.clients) {
      if (!filterMatches(client.filter, event, address)) continue;
      if (client.offer(frame)) this.schedule(client);
      else this.drop(client);
    }
    return id;
  }

  /** Adds a client to the fan-out; it counts as a connection of its transport until `release`. */
  subscribe(sink: StreamSink, filter: StreamFilter, info: ClientInfo = {}): StreamClient {
    const client = new StreamClient(++this.nextClientId, filter, sink, this.clientBufferEvents, info, this.schedule);
    this.clients.add(client);
    this.connections[sink.transport]++;
    this.counters.connections[sink.transport]++;
    this.log?.debug(
      { client: client.id, transport: sink.transport, remote: info.remote, filter: describeFilter(filter) },
      'stream client subscribed',
    );
    return client;
  }

  /** The client's connection is closed: it leaves the fan-out and the connection counts. Idempotent. */
  release(client: StreamClient): void {
    client.detach();
    if (!this.clients.delete(client) && !this.closing.delete(client)) return;
    this.connections[client.sink.transport]--;
    this.counters.connections[client.sink.transport]--;
  }

  connectionCount(transport: Transport): number {
    return this.connections[transport];
  }

  stats(): StreamHubStats {
    return { ...this.totals, connections: { ...this.connections } };
  }

  /** Ends a client's stream with a final notice (the transport is closing, …). Idempotent. */
  end(client: StreamClient, code: StreamErrorCode, message: string): void {
    if (!this.clients.delete(client)) return;
    this.closing.add(client);
    client.close(code, message);
  }

  private drop(client: StreamClient): void {
    const message = `slow consumer: buffer full (${this.clientBufferEvents} events)`;
    this.totals.dropped++;
    this.log?.warn(
      {
        client: client.id,
        transport: client.sink.transport,
        remote: client.info.remote,
        filter: describeFilter(client.filter),
        code: 'ETHHOOK_ERR_STREAM_SLOW_CONSUMER',
      },
      `stream client dropped: ${message}`,
    );
    this.end(client, 'ETHHOOK_ERR_STREAM_SLOW_CONSUMER', message);
  }

  private readonly schedule = (client: StreamClient): void => {
    if (!client.writable) return;
    if (!client.queuedForFlush) {
      client.queuedForFlush = true;
      this.pending.push(client);
    }
    if (this.flushScheduled) {
      // A buffer half full does not wait out the duty cycle: a delayed flush must not let buffers grow
      // past their capacity (larger flushes would cost more CPU and be delayed longer still).
      if (this.flushTimer && client.buffered >= this.clientBufferEvents / 2) {
        clearTimeout(this.flushTimer);
        this.flushTimer = null;
        setImmediate(this.flush);
      }
      return;
    }
    this.flushScheduled = true;
    const wait = this.nextFlushAt - performance.now();
    if (wait < 1) setImmediate(this.flush);
    else this.flushTimer = setTimeout(this.flush, wait);
  };

  private readonly flush = (): void => {
    const cpu = process.cpuUsage();
    this.flushScheduled = false;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    const clients = this.pending;
    this.pending = [];
    for (const client of clients) {
      client.queuedForFlush = false;
      const n = client.flush();
      if (n === 0) continue;
      this.totals.sent += n;
      this.counters.sent[client.sink.transport] += n;
    }
    // Measured after the writes corked during the flush went out (HTTP responses send on nextTick).
    process.nextTick(() => {
      const used = process.cpuUsage(cpu);
      const cpuMs = (used.user + used.system) / 1000;
      this.nextFlushAt = performance.now() + (cpuMs * (1 - FLUSH_DUTY_CYCLE)) / FLUSH_DUTY_CYCLE;
    });
  };
}
