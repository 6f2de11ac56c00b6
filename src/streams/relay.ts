/**
 * StreamRelay: the live streams of a cluster, where one instance ingests each chain but stream clients
 * connect to any instance. The relay stands in front of the local hub and hands the log events this
 * instance publishes to the others, and the others' to the local hub; the engine that carries them
 * (src/store/postgres/stream-relay.ts) gives it `write` and calls `receive`. A LevelDB node has no
 * relay: its hub is the whole stream.
 *
 *   const relay = new StreamRelay({ hub, write, registry, log });
 *   relay.publish(event);                 // the Matcher's publish: local clients, and the other instances
 *   relay.receive(batch, lagSeconds);     // a batch another instance wrote
 *   await relay.close();
 *
 * - `publish` gives the event to the local hub first, exactly as without a relay. A log event
 *   (`log.created` / `log.removed`) is then appended to the outbound buffer; governance notices are not
 *   relayed, since every instance follows the governance stream and publishes its own, nor are backfill
 *   notices (the instance that ingests the chain runs its backfills: its clients see them).
 * - The buffer is written on the next turn (`setImmediate`), so the logs of a block (the Matcher
 *   publishes them in one loop) go out as one batch. One write at a time, of at most `maxBatchEvents`
 *   (default 1,000); events published during a write form the next batch.
 * - Bound: the buffer holds at most `maxBufferedEvents` (default 10,000). When it is full, the oldest
 *   event is discarded for the other instances' clients and counted (`stream_relay_dropped_total
 *   {reason="buffer_full"}`): as the hub drops a slow client rather than wait for it, `publish` never
 *   waits for the store. A write that fails (after the engine's own retries) drops its batch
 *   (`write_failed`, logged).
 * - `receive` checks each event against the log event schema (the rows come from outside this process)
 *   and publishes the valid ones to the local hub (`stream_relay_events_total{direction="in"}`); an
 *   invalid one is counted (`invalid`) and logged once per batch. `lagSeconds` is the batch's age when
 *   read (`stream_relay_lag_seconds`).
 * - `close` stops taking events, waits up to `closeWaitMs` (default 2 s) for the buffer to be written,
 *   and counts what is left as `closed`.
 */
import type { Registry } from 'prom-client';
import { describeError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/log.ts';
import { logStreamEventSchema, type LogStreamEvent, type StreamEvent } from './events.ts';
import type { StreamHub } from './hub.ts';
import { newStreamRelayCounters, streamRelayCounters, type StreamRelayCounters } from './metrics.ts';

export const DEFAULT_STREAM_RELAY_OPTIONS = {
  maxBufferedEvents: 10_000,
  maxBatchEvents: 1_000,
  closeWaitMs: 2_000,
} as const;

export interface StreamRelayOptions {
  hub: Pick<StreamHub, 'publish'>;
  /** Hands a batch to the other instances; rejects when it could not (the engine retried already). */
  write: (events: readonly LogStreamEvent[]) => Promise<void>;
  registry?: Registry;
  log?: Logger;
  maxBufferedEvents?: number;
  maxBatchEvents?: number;
  closeWaitMs?: number;
}

export class StreamRelay {
  readonly counters: StreamRelayCounters;
  private readonly hub: Pick<StreamHub, 'publish'>;
  private readonly write: StreamRelayOptions['write'];
  private readonly log: Logger | undefined;
  private readonly maxBufferedEvents: number;
  private readonly maxBatchEvents: number;
  private readonly closeWaitMs: number;
  /** The outbound events are `buffer[head..]`; the front is cut off once it is half the array. */
  private buffer: LogStreamEvent[] = [];
  private head = 0;
  private scheduled = false;
  /** The write loop, while it runs. */
  private writing: Promise<void> | undefined;
  private closed = false;

  constructor(options: StreamRelayOptions) {
    this.hub = options.hub;
    this.write = options.write;
    this.log = options.log;
    this.maxBufferedEvents = positive('maxBufferedEvents', options.maxBufferedEvents ?? DEFAULT_STREAM_RELAY_OPTIONS.maxBufferedEvents);
    this.maxBatchEvents = positive('maxBatchEvents', options.maxBatchEvents ?? DEFAULT_STREAM_RELAY_OPTIONS.maxBatchEvents);
    this.closeWaitMs = options.closeWaitMs ?? DEFAULT_STREAM_RELAY_OPTIONS.closeWaitMs;
    this.counters = options.registry ? streamRelayCounters(options.registry) : newStreamRelayCounters();
  }

  /** Events waiting to be written. */
  get buffered(): number {
    return this.buffer.length - this.head;
  }

  /** Publishes to the local hub and, for a log event, to the other instances. Never waits. */
  publish(event: StreamEvent): void {
    this.hub.publish(event);
    if (event.kind === 'governance' || event.kind === 'backfill' || this.closed) return;
    if (this.buffered >= this.maxBufferedEvents) {
      this.advance(1);
      this.counters.dropped.buffer_full++;
    }
    this.buffer.push(event);
    if (!this.scheduled && this.writing === undefined) {
      this.scheduled = true;
      setImmediate(this.startWriting);
    }
  }

  /** Publishes another instance's batch to the local hub. */
  receive(batch: unknown, lagSeconds: number): void {
    if (this.closed) return;
    this.counters.lagSeconds = lagSeconds;
    if (!Array.isArray(batch)) {
      this.counters.dropped.invalid++;
      this.log?.warn({ got: typeof batch }, 'stream relay: a batch from another instance is not a list of events; skipped');
      return;
    }
    let invalid = 0;
    let issue: string | undefined;
    for (const item of batch) {
      const parsed = logStreamEventSchema.safeParse(item);
      if (parsed.success) {
        this.hub.publish(parsed.data);
        this.counters.events.in++;
      } else {
        invalid++;
        issue ??= parsed.error.issues[0]?.message;
      }
    }
    if (invalid > 0) {
      this.counters.dropped.invalid += invalid;
      this.log?.warn({ invalid, of: batch.length, issue }, 'stream relay: events from another instance are not valid log events; skipped');
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.closeWaitMs)));
    await Promise.race([this.drained(), waited]);
    clearTimeout(timer);
    const left = this.buffered;
    this.buffer = [];
    this.head = 0;
    if (left > 0) {
      this.counters.dropped.closed += left;
      this.log?.warn({ events: left }, 'stream relay closed with events not yet handed to the other instances');
    }
  }

  /** Resolves once nothing is buffered or being written. */
  private async drained(): Promise<void> {
    while (this.writing !== undefined || this.scheduled) {
      await (this.writing ?? new Promise((resolve) => setImmediate(resolve)));
    }
  }

  private readonly startWriting = (): void => {
    this.scheduled = false;
    this.writing = this.writeAll().finally(() => (this.writing = undefined));
  };

  private async writeAll(): Promise<void> {
    while (this.buffered > 0) {
      const batch = this.buffer.slice(this.head, this.head + this.maxBatchEvents);
      this.advance(batch.length);
      try {
        await this.write(batch);
        this.counters.events.out += batch.length;
      } catch (err) {
        this.counters.dropped.write_failed += batch.length;
        this.log?.warn(
          { events: batch.length, err: describeError(err) },
          'stream relay: a batch could not be handed to the other instances',
        );
      }
    }
  }

  /** Takes `n` events off the front; the array is cut once its dead front is half of it (amortized O(1)). */
  private advance(n: number): void {
    this.head += n;
    if (this.head * 2 < this.buffer.length) return;
    this.buffer = this.buffer.slice(this.head);
    this.head = 0;
  }
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}
