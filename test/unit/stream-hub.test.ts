// StreamHub with in-memory sinks whose writes complete when the test says: fan-out, batching,
// one encoding per event, the two-lane buffer, slow-consumer drops, connection counts and metrics.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { IN_FLIGHT_HIGH_WATER, type StreamSink } from '../../src/streams/client.ts';
import type { StreamEvent } from '../../src/streams/events.ts';
import { parseStreamQuery } from '../../src/streams/filter.ts';
import type { EventFrame } from '../../src/streams/frame.ts';
import { StreamHub } from '../../src/streams/hub.ts';
import type { Transport } from '../../src/streams/metrics.ts';

class MemorySink implements StreamSink {
  readonly writes: EventFrame[][] = [];
  readonly closes: [string, string][] = [];
  /** Completions not run yet: a socket that does not drain. */
  readonly pending: (() => void)[] = [];

  constructor(
    readonly transport: Transport = 'websocket',
    /** Bytes each write reports: IN_FLIGHT_HIGH_WATER blocks the client until the write completes. */
    private readonly bytes = 10,
    private readonly autoComplete = true,
  ) {}

  write(frames: readonly EventFrame[], written: () => void): number {
    this.writes.push([...frames]);
    if (this.autoComplete) setImmediate(written);
    else this.pending.push(written);
    return this.bytes;
  }

  close(code: string, message: string): void {
    this.closes.push([code, message]);
  }

  get ids(): number[] {
    return this.writes.flat().map((f) => f.id);
  }
}

const all = parseStreamQuery('').filter;
const tick = () => new Promise((r) => setImmediate(r));
/** Turns of the event loop until `cond` holds (the hub paces its flushes by their cost, so on a loaded machine one turn may not do). */
async function until(cond: () => boolean, turns = 1_000): Promise<void> {
  for (let i = 0; i < turns && !cond(); i++) await tick();
}

const created = (i: number, chainId = 1): StreamEvent => ({
  kind: 'log.created',
  chainId,
  blockNumber: i,
  blockHash: `0x${'1'.repeat(64)}`,
  transactionHash: `0x${'2'.repeat(64)}`,
  logIndex: i,
  address: `0x${'A'.repeat(40)}`,
  topics: [],
  data: '0x',
  at: i,
});
const removed = (i: number): StreamEvent => ({ ...created(i), kind: 'log.removed' }) as StreamEvent;
const notice = (seq: number): StreamEvent => ({ kind: 'governance', seq, type: 'endpoint.pause', at: seq });

describe('publish', () => {
  // Ids count every published event, with or without clients.
  it('numbers events from 1 and counts them', () => {
    const hub = new StreamHub();
    expect([hub.publish(created(1)), hub.publish(notice(1)), hub.publish(created(2))]).toEqual([1, 2, 3]);
    expect(hub.stats()).toEqual({ published: 3, sent: 0, dropped: 0, connections: { websocket: 0, sse: 0 } });
  });

  // The publisher never touches a socket: writes happen on the next turn, one per client per burst.
  it('writes nothing synchronously, then one batch per client', async () => {
    const hub = new StreamHub();
    const a = new MemorySink();
    const b = new MemorySink('sse');
    hub.subscribe(a, all);
    hub.subscribe(b, parseStreamQuery('chain=2').filter);
    for (let i = 1; i <= 5; i++) hub.publish(created(i, i % 2 === 0 ? 2 : 1));
    expect(a.writes).toEqual([]);
    expect(b.writes).toEqual([]);
    await tick();
    expect(a.writes.map((w) => w.map((f) => f.id))).toEqual([[1, 2, 3, 4, 5]]);
    expect(b.writes.map((w) => w.map((f) => f.id))).toEqual([[2, 4]]);
    expect(hub.stats().sent).toBe(7);
  });

  // One frame object per event, shared by every client: the JSON and each encoding are built once.
  it('encodes each event once, whatever the number of clients', async () => {
    const hub = new StreamHub();
    const sinks = [new MemorySink(), new MemorySink(), new MemorySink('sse'), new MemorySink('sse')];
    for (const s of sinks) hub.subscribe(s, all);
    hub.publish(created(7));
    await tick();
    const frames = sinks.map((s) => s.writes[0]![0]!);
    expect(new Set(frames).size).toBe(1);
    const frame = frames[0]!;
    expect(frame.websocket).toBe(frame.websocket);
    expect(frame.sse).toBe(frame.sse);
    expect(JSON.parse(frame.json)).toEqual({ id: 1, ...created(7) });
    expect(frame.sse.toString()).toBe(`id: 1\nevent: log.created\ndata: ${frame.json}\n\n`);
  });
});

describe('the client buffer', () => {
  // While a write is in flight past the high-water mark, events wait; retractions and governance
  // notices then go first, each lane in publish order.
  it('holds events while the sink is busy and writes urgent ones first', async () => {
    const hub = new StreamHub();
    const sink = new MemorySink('websocket', IN_FLIGHT_HIGH_WATER, false);
    hub.subscribe(sink, all);
    hub.publish(created(1));
    await until(() => sink.ids.length > 0);
    expect(sink.ids).toEqual([1]);
    hub.publish(created(2));
    hub.publish(removed(3));
    hub.publish(created(4));
    hub.publish(notice(5));
    await tick();
    expect(sink.writes.length).toBe(1);
    sink.pending.shift()!();
    await until(() => sink.writes.length > 1);
    expect(sink.writes[1]!.map((f) => f.id)).toEqual([3, 5, 2, 4]);
  });

  // A client whose buffer is full is dropped on the next event for it: close notice, counted, out of
  // the fan-out; the others get everything; its connection counts until the transport releases it.
  it('drops a slow consumer when its buffer is full, without touching the others', async () => {
    const hub = new StreamHub({ clientBufferEvents: 4 });
    const slow = new MemorySink('sse', IN_FLIGHT_HIGH_WATER, false);
    const fast = new MemorySink('sse');
    const chain1 = parseStreamQuery('chain=1').filter;
    const slowClient = hub.subscribe(slow, chain1);
    hub.subscribe(fast, chain1);
    // A burst larger than the buffer, in one turn, reaches clients that keep up.
    for (let i = 1; i <= 6; i++) hub.publish(created(i));
    await tick();
    expect(slow.ids).toEqual([1, 2, 3, 4, 5, 6]);
    // The slow sink has not completed its write: it is blocked, and now its buffer fills.
    for (let i = 7; i <= 10; i++) hub.publish(created(i));
    // Events the filter rejects do not take room.
    hub.publish(created(99, 5));
    expect(slow.closes).toEqual([]);
    hub.publish(created(12));
    expect(slow.closes).toEqual([['ETHHOOK_ERR_STREAM_SLOW_CONSUMER', 'slow consumer: buffer full (4 events)']]);
    expect(hub.stats()).toMatchObject({ dropped: 1, connections: { sse: 2 } });
    hub.publish(created(13));
    slow.pending.shift()!();
    await tick();
    await tick();
    expect(slow.ids).toEqual([1, 2, 3, 4, 5, 6]);
    expect(fast.ids).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13]);
    hub.release(slowClient);
    hub.release(slowClient);
    expect(hub.connectionCount('sse')).toBe(1);
  });

  // Closing (the transport stopping) is not a drop.
  it('end() closes a client with its code and stops its events; release() frees the connection once', async () => {
    const hub = new StreamHub();
    const sink = new MemorySink();
    const client = hub.subscribe(sink, all);
    hub.end(client, 'ETHHOOK_ERR_STREAM_CLOSING', 'the admin API is stopping');
    hub.end(client, 'ETHHOOK_ERR_STREAM_CLOSING', 'again');
    hub.publish(created(1));
    await tick();
    expect(sink.closes).toEqual([['ETHHOOK_ERR_STREAM_CLOSING', 'the admin API is stopping']]);
    expect(sink.writes).toEqual([]);
    expect(hub.stats().dropped).toBe(0);
    expect(hub.connectionCount('websocket')).toBe(1);
    hub.release(client);
    expect(hub.connectionCount('websocket')).toBe(0);
  });

  it('refuses a buffer size that is not a positive integer', () => {
    expect(() => new StreamHub({ clientBufferEvents: 0 })).toThrow(RangeError);
    expect(() => new StreamHub({ clientBufferEvents: 1.5 })).toThrow(RangeError);
  });
});

describe('metrics', () => {
  // Registered once per registry: two hubs on one registry add up.
  it('counts emitted events, connections and messages sent per transport', async () => {
    const registry = new Registry();
    const one = new StreamHub({ registry });
    const two = new StreamHub({ registry });
    one.subscribe(new MemorySink('websocket'), all);
    two.subscribe(new MemorySink('sse'), all);
    two.subscribe(new MemorySink('sse'), all);
    one.publish(created(1));
    two.publish(created(2));
    two.publish(created(3));
    await tick();
    const text = await registry.metrics();
    const value = (prefix: string) =>
      Number(
        text
          .split('\n')
          .find((l) => l.startsWith(prefix))!
          .split(' ')
          .pop(),
      );
    expect(value('events_emitted_total ')).toBe(3);
    expect(value('websocket_connections ')).toBe(1);
    expect(value('sse_connections ')).toBe(2);
    expect(value('stream_messages_sent_total{transport="websocket"}')).toBe(1);
    expect(value('stream_messages_sent_total{transport="sse"}')).toBe(4);
    // A second scrape reports totals, not deltas twice.
    one.publish(created(4));
    expect(
      Number(
        (await registry.metrics())
          .split('\n')
          .find((l) => l.startsWith('events_emitted_total '))!
          .split(' ')
          .pop(),
      ),
    ).toBe(4);
  });
});

describe('flush pacing', () => {
  it('a buffer half full gets its flush on the next turn, even while pacing delays the flush', async () => {
    const hub = new StreamHub({ clientBufferEvents: 10 });
    // A sink whose first write costs 200 ms of CPU: pacing then delays the next flush by about as much.
    let costly = true;
    const sink = new MemorySink();
    const slowWrite = sink.write.bind(sink);
    sink.write = (frames, written) => {
      if (costly) {
        costly = false;
        const until = performance.now() + 200;
        while (performance.now() < until);
      }
      return slowWrite(frames, written);
    };
    hub.subscribe(sink, all);
    hub.publish(created(1));
    await tick();
    expect(sink.ids).toEqual([1]);
    await tick();
    hub.publish(created(2)); // 1 of 10 buffered: waits out the pacing
    await tick();
    await tick();
    expect(sink.ids).toEqual([1]);
    for (let i = 3; i <= 6; i++) hub.publish(created(i)); // 5 of 10: flushed on the next turn
    await tick();
    expect(sink.ids).toEqual([1, 2, 3, 4, 5, 6]);
  });
});
