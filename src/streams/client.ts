/**
 * One stream client as the hub sees it: its filter, its bounded two-lane buffer, and the sink (the
 * WebSocket or SSE connection) its events are written to.
 *
 * - The buffer holds the events a flush has not handed to the sink yet. Urgent events (retractions and
 *   governance notices) wait in their own lane, written before ordinary `log.created` events: a client
 *   that lags learns about a reorg before it reads more of the orphaned branch. Within a lane the order
 *   is the publish order; across lanes it is not, and the `id` tells the publish order.
 * - A flush hands everything buffered to the sink in one write, unless the sink still has more than
 *   `IN_FLIGHT_HIGH_WATER` bytes it has not passed to the kernel: then the client is blocked until that
 *   write completes. So a client that stops reading stops taking socket memory early.
 * - `capacity` bounds what waits while the client is blocked. A client that keeps up is not blocked,
 *   and takes a burst of any size published within one turn (a block with many matching logs): it is
 *   all written at the next flush.
 * - `offer` on a full buffer returns false; the hub then drops the client.
 */
import type { StreamErrorCode } from './errors.ts';
import type { StreamFilter } from './filter.ts';
import type { EventFrame } from './frame.ts';
import type { Transport } from './metrics.ts';

/** Bytes a sink may have in flight before the client stops flushing into it. */
export const IN_FLIGHT_HIGH_WATER = 64 * 1024;

export interface StreamSink {
  readonly transport: Transport;
  /**
   * Writes the frames in order and returns their size in bytes (0 when the connection is closing and
   * they were dropped); `written` runs once they left the process (or failed), never synchronously.
   */
  write(frames: readonly EventFrame[], written: () => void): number;
  /** Sends a final notice with the code and message, then closes the connection. */
  close(code: StreamErrorCode, message: string): void;
}

export interface ClientInfo {
  /** Peer address, for logs. */
  remote?: string;
}

export class StreamClient {
  /** Set while the client is listed in the hub's flush queue. */
  queuedForFlush = false;
  /** False once dropped or disconnected: nothing more is buffered or written. */
  open = true;
  private urgent: EventFrame[] = [];
  private ordinary: EventFrame[] = [];
  private inFlight = 0;

  constructor(
    readonly id: number,
    readonly filter: StreamFilter,
    readonly sink: StreamSink,
    readonly capacity: number,
    readonly info: ClientInfo,
    private readonly wake: (client: StreamClient) => void,
  ) {}

  get buffered(): number {
    return this.urgent.length + this.ordinary.length;
  }

  /** Whether a flush would write now. */
  get writable(): boolean {
    return this.inFlight < IN_FLIGHT_HIGH_WATER;
  }

  /** Buffers the frame; false when the client is blocked and its buffer is full (the frame is not kept). */
  offer(frame: EventFrame): boolean {
    if (!this.writable && this.buffered >= this.capacity) return false;
    (frame.urgent ? this.urgent : this.ordinary).push(frame);
    return true;
  }

  /** Writes everything buffered if the sink can take it; returns the number of events written. */
  flush(): number {
    if (!this.open || !this.writable) return 0;
    const frames = this.urgent.length === 0 ? this.ordinary : this.ordinary.length === 0 ? this.urgent : this.urgent.concat(this.ordinary);
    if (frames.length === 0) return 0;
    this.urgent = [];
    this.ordinary = [];
    const bytes = this.sink.write(frames, () => {
      this.inFlight -= bytes;
      if (this.open && this.buffered > 0 && this.writable) this.wake(this);
    });
    this.inFlight += bytes;
    // Nothing written: the connection is closing.
    return bytes === 0 ? 0 : frames.length;
  }

  /** Stops the client: its buffer is discarded and the sink gets the close notice. */
  close(code: StreamErrorCode, message: string): void {
    if (!this.open) return;
    this.open = false;
    this.urgent = [];
    this.ordinary = [];
    this.sink.close(code, message);
  }

  /** The connection is gone (the peer left, or after `close`): nothing more is written. */
  detach(): void {
    this.open = false;
    this.urgent = [];
    this.ordinary = [];
  }
}
