// StreamRelay with a write the test completes or fails when it says: what is relayed, batching by
// turn, the bounded buffer that drops the oldest, failed writes, checks on what other instances wrote,
// and closing.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { LogStreamEvent, StreamEvent } from '../../src/streams/events.ts';
import { StreamRelay } from '../../src/streams/relay.ts';
import { memoryLogger, waitFor } from '../support/kernel.ts';

const created = (i: number): LogStreamEvent => ({
  kind: 'log.created',
  chainId: 1,
  blockNumber: i,
  blockHash: `0x${'1'.repeat(64)}`,
  transactionHash: `0x${'2'.repeat(64)}`,
  logIndex: i,
  address: `0x${'a'.repeat(40)}`,
  topics: [],
  data: '0x',
  at: i,
});
const notice: StreamEvent = { kind: 'governance', seq: 1, type: 'endpoint.pause', at: 1 };
const tick = () => new Promise((r) => setImmediate(r));

/** A relay whose writes wait for the test (`complete` / `fail`) unless `auto`. */
function relayUnderTest(options: { auto?: boolean; maxBufferedEvents?: number; maxBatchEvents?: number; closeWaitMs?: number } = {}) {
  const published: StreamEvent[] = [];
  const batches: LogStreamEvent[][] = [];
  const waiting: { resolve: () => void; reject: (err: Error) => void }[] = [];
  const { logger, lines } = memoryLogger();
  const registry = new Registry();
  const relay = new StreamRelay({
    hub: { publish: (e) => published.push(e) },
    registry,
    log: logger,
    write: (events) => {
      batches.push([...events]);
      if (options.auto) return Promise.resolve();
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
    ...(options.maxBufferedEvents !== undefined ? { maxBufferedEvents: options.maxBufferedEvents } : {}),
    ...(options.maxBatchEvents !== undefined ? { maxBatchEvents: options.maxBatchEvents } : {}),
    ...(options.closeWaitMs !== undefined ? { closeWaitMs: options.closeWaitMs } : {}),
  });
  return { relay, published, batches, waiting, lines, registry };
}

describe('publish', () => {
  // Local clients get every event at once; only log events go to the other instances.
  it('publishes locally at once and relays log events, not governance notices', async () => {
    const { relay, published, batches } = relayUnderTest({ auto: true });
    relay.publish(created(1));
    relay.publish(notice);
    relay.publish({ ...created(2), kind: 'log.removed' });
    expect(published.map((e) => e.kind)).toEqual(['log.created', 'governance', 'log.removed']);
    expect(batches).toEqual([]);
    await waitFor(() => batches.length === 1, 2_000, 'the batch');
    expect(batches[0]!.map((e) => [e.kind, e.blockNumber])).toEqual([
      ['log.created', 1],
      ['log.removed', 2],
    ]);
    expect(relay.counters.events.out).toBe(2);
  });

  // The logs of one turn (a block) are one write; what comes during a write is the next one, in order.
  it('writes one batch per turn, one write at a time, in publish order', async () => {
    const { relay, batches, waiting } = relayUnderTest({ maxBatchEvents: 3 });
    for (let i = 1; i <= 2; i++) relay.publish(created(i));
    await tick();
    expect(batches.map((b) => b.map((e) => e.blockNumber))).toEqual([[1, 2]]);
    for (let i = 3; i <= 7; i++) relay.publish(created(i));
    await tick();
    expect(batches).toHaveLength(1);
    waiting.shift()!.resolve();
    await waitFor(() => batches.length === 2, 2_000, 'second batch');
    waiting.shift()!.resolve();
    await waitFor(() => batches.length === 3, 2_000, 'third batch');
    waiting.shift()!.resolve();
    expect(batches.map((b) => b.map((e) => e.blockNumber))).toEqual([
      [1, 2],
      [3, 4, 5],
      [6, 7],
    ]);
    await waitFor(() => relay.counters.events.out === 7, 2_000, 'all written');
  });

  // A store slower than the chain never makes publish wait: the oldest waiting events go, counted.
  it('keeps at most maxBufferedEvents waiting, dropping the oldest and counting them', async () => {
    const { relay, published, batches, waiting, registry } = relayUnderTest({ maxBufferedEvents: 100, maxBatchEvents: 1_000 });
    relay.publish(created(0));
    await tick();
    expect(batches).toHaveLength(1);
    for (let i = 1; i <= 10_000; i++) relay.publish(created(i));
    expect(published).toHaveLength(10_001);
    expect(relay.buffered).toBe(100);
    expect(relay.counters.dropped.buffer_full).toBe(9_900);
    waiting.shift()!.resolve();
    await waitFor(() => batches.length === 2, 2_000, 'the newest events');
    expect(batches[1]!.map((e) => e.blockNumber)).toEqual(Array.from({ length: 100 }, (_, i) => 9_901 + i));
    waiting.shift()!.resolve();
    const text = await registry.metrics();
    expect(text).toContain('stream_relay_dropped_total{reason="buffer_full"} 9900');
  });

  // A write that fails (the engine gave up retrying) drops its batch, counted and logged; the next goes on.
  it('counts and logs a failed write, and carries on', async () => {
    const { relay, batches, waiting, lines } = relayUnderTest();
    relay.publish(created(1));
    relay.publish(created(2));
    await tick();
    waiting.shift()!.reject(new Error('store unavailable'));
    relay.publish(created(3));
    await waitFor(() => batches.length === 2, 2_000, 'the next batch');
    waiting.shift()!.resolve();
    await waitFor(() => relay.counters.events.out === 1, 2_000, 'written');
    expect(relay.counters.dropped.write_failed).toBe(2);
    expect(lines.some((l) => l.level === 40 && String(l.msg).includes('could not be handed'))).toBe(true);
  });
});

describe('receive', () => {
  // Rows come from outside the process: each event is checked; the valid ones reach the hub.
  it('publishes the valid events of another instance and counts the rest', () => {
    const { relay, published, lines } = relayUnderTest();
    relay.receive(
      [created(1), { ...created(2), address: 'not-an-address' }, { kind: 'governance', seq: 1, type: 'x', at: 1 }, created(3)],
      0.25,
    );
    relay.receive('not a list', 0.5);
    expect(published.map((e) => e.kind === 'log.created' && e.blockNumber)).toEqual([1, 3]);
    expect(relay.counters.events.in).toBe(2);
    expect(relay.counters.dropped.invalid).toBe(3);
    expect(relay.counters.lagSeconds).toBe(0.5);
    expect(lines.filter((l) => l.level === 40)).toHaveLength(2);
  });
});

describe('close', () => {
  // Closing writes what is buffered.
  it('waits for the buffered events to be written', async () => {
    const { relay, batches } = relayUnderTest({ auto: true });
    relay.publish(created(1));
    await relay.close();
    expect(batches).toHaveLength(1);
    expect(relay.counters.dropped.closed).toBe(0);
    relay.publish(created(2));
    relay.receive([created(3)], 0);
    await tick();
    expect(batches).toHaveLength(1);
  });

  // A write that hangs does not hold the shutdown past closeWaitMs; what is left is counted.
  it('gives up after closeWaitMs and counts what was left', async () => {
    const { relay, waiting } = relayUnderTest({ closeWaitMs: 50 });
    relay.publish(created(1));
    await tick();
    relay.publish(created(2));
    relay.publish(created(3));
    await relay.close();
    expect(waiting).toHaveLength(1);
    expect(relay.counters.dropped.closed).toBe(2);
  });
});
