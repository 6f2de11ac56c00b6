// The live streams under load, over real sockets on 127.0.0.1, served by real Admin actors under the
// real ActorSystem:
// - 500 WebSocket and 500 SSE clients, each with its own random filter, receive exactly the events
//   their filter selects (no loss, no duplicate, publish order within each priority lane) while a few
//   thousand events of mixed chains, addresses and kinds flow;
// - a client that never reads is dropped with its close reason, while the clients that read get
//   everything, and publishing stays fast.
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminBehaviour } from '../../src/actors/admin/behaviour.ts';
import { defaultConfig, type AdminConfig } from '../../src/config/schema.ts';
import type { ActorRef } from '../../src/runtime/types.ts';
import type { ActorSystem } from '../../src/runtime/system.ts';
import { STREAM_EVENT_KINDS, StreamHub, streamTransports, type StreamEvent, type StreamEventKind } from '../../src/streams/index.ts';
import { startSystem } from '../../src/supervision/index.ts';
import { memoryLogger, waitFor } from '../support/kernel.ts';
import { isRefused, openSse, openWebSocket, type StreamClientHandle } from '../support/stream-clients.ts';

const TOKEN = 'stream-token-cccccccccccccccc';
const CLIENTS_PER_TRANSPORT = 500;
const EVENTS = 2_000;
const CHAINS = [1, 5, 10];
const ADDRESSES = Array.from({ length: 6 }, (_, i) => `0x${String(i + 1).repeat(40)}`);
const TYPES = ['endpoint.upsert', 'endpoint.pause', 'key.rotate', 'subscription.delete'];

/** mulberry32: a seeded generator, so a failure replays. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(0x5eed);
const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)]!;
const someOf = <T>(values: readonly T[]): T[] => {
  const chosen = values.filter(() => random() < 0.4);
  return chosen.length > 0 ? chosen : [pick(values)];
};
const mixCase = (a: string) => '0x' + [...a.slice(2)].map((c) => (random() < 0.5 ? c.toUpperCase() : c)).join('');

interface Spec {
  kinds: readonly StreamEventKind[];
  chains?: number[];
  addresses?: string[];
  types?: string[];
  query: string;
}

function randomSpec(): Spec {
  const roll = random();
  const kinds = roll < 0.4 ? STREAM_EVENT_KINDS : someOf(STREAM_EVENT_KINDS);
  const spec: Spec = { kinds, query: '' };
  const parts = [roll < 0.2 ? '' : roll < 0.4 ? 'events=all' : `events=${kinds.join(',')}`];
  if (random() < 0.5) parts.push(`chain=${(spec.chains = someOf(CHAINS)).join(',')}`);
  if (random() < 0.5) parts.push(...(spec.addresses = someOf(ADDRESSES)).map((a) => `address=${mixCase(a)}`));
  if (random() < 0.3) parts.push(`type=${(spec.types = someOf(TYPES)).join(',')}`);
  spec.query = parts.filter((p) => p !== '').join('&');
  return spec;
}

/** The filter rule of src/streams/filter.ts, written out. */
function selects(spec: Spec, e: StreamEvent): boolean {
  if (!spec.kinds.includes(e.kind)) return false;
  if (e.kind === 'governance') return spec.types === undefined || spec.types.includes(e.type);
  if (e.kind === 'backfill') return spec.chains === undefined || spec.chains.includes(e.chainId);
  return (
    (spec.chains === undefined || spec.chains.includes(e.chainId)) &&
    (spec.addresses === undefined || spec.addresses.includes(e.address.toLowerCase()))
  );
}

let blockCounter = 0;
function logEvent(chainId: number, address: string, kind: 'log.created' | 'log.removed', data = '0x'): StreamEvent {
  const n = ++blockCounter;
  return {
    kind,
    chainId,
    blockNumber: n,
    blockHash: `0x${n.toString(16).padStart(64, '0')}`,
    transactionHash: `0x${(n * 7).toString(16).padStart(64, '0')}`,
    logIndex: n % 50,
    address,
    topics: [`0x${'e'.repeat(64)}`],
    data,
    at: Date.now(),
  };
}

function randomEvent(): StreamEvent {
  const roll = random();
  if (roll < 0.1) return { kind: 'governance', seq: ++blockCounter, type: pick([...TYPES, 'endpoint.delete']), at: Date.now() };
  // A chain and an address no filter names, now and then.
  const chainId = random() < 0.1 ? 7 : pick(CHAINS);
  const address = random() < 0.1 ? `0x${'f'.repeat(40)}` : pick(ADDRESSES);
  return logEvent(chainId, address, roll < 0.2 ? 'log.removed' : 'log.created');
}

interface Received {
  ids: number[];
  kinds: StreamEventKind[];
}

function record(client: StreamClientHandle): Received {
  const got: Received = { ids: [], kinds: [] };
  client.onMessage = (text) => {
    const m = JSON.parse(text) as { id: number; kind: StreamEventKind };
    got.ids.push(m.id);
    got.kinds.push(m.kind);
  };
  return got;
}

/** Ids increase within each lane (urgent: retractions and notices; ordinary: log.created). */
function lanesInOrder(got: Received): boolean {
  let urgent = 0;
  let ordinary = 0;
  for (const [i, id] of got.ids.entries()) {
    if (got.kinds[i] === 'log.created') {
      if (id <= ordinary) return false;
      ordinary = id;
    } else {
      if (id <= urgent) return false;
      urgent = id;
    }
  }
  return true;
}

const registry = new Registry();
const { logger, lines } = memoryLogger();
// Large enough that no reading client here is ever dropped; drops have their own hub below.
const fanoutHub = new StreamHub({ registry, log: logger, clientBufferEvents: 8_192 });
const SLOW_BUFFER = 128;
const slowHub = new StreamHub({ log: logger, clientBufferEvents: SLOW_BUFFER });
let system: ActorSystem;
const ports: Record<string, number> = {};
const clients: StreamClientHandle[] = [];

const adminConfig: AdminConfig = { ...defaultConfig().admin, port: 0, tokens: [{ token: TOKEN, role: 'read' }] };

beforeAll(async () => {
  system = await startSystem(
    {
      kind: 'supervisor',
      name: 'root',
      strategy: 'one-for-one',
      children: [
        {
          kind: 'worker',
          name: 'admin',
          behaviour: () =>
            createAdminBehaviour({
              system: () => system,
              config: adminConfig,
              registry,
              streams: streamTransports(fanoutHub, { maxWebsocketConnections: 1_000, maxSseConnections: 1_000, heartbeatMs: 60_000 }),
            }),
        },
        {
          kind: 'worker',
          name: 'admin-slow',
          behaviour: () =>
            createAdminBehaviour({
              system: () => system,
              config: adminConfig,
              registry: new Registry(),
              // Heartbeats would end the paused clients first (they cannot answer pings).
              streams: streamTransports(
                slowHub,
                { maxWebsocketConnections: 100, maxSseConnections: 100, heartbeatMs: 600_000 },
                { closeGraceMs: 30_000 },
              ),
            }),
        },
      ],
    },
    { logger, registry },
  );
  for (const name of ['admin', 'admin-slow']) {
    const address = await (system.lookup(name) as ActorRef<{ type: 'address' }>).ask<AddressInfo | null>({ type: 'address' });
    ports[name] = address!.port;
  }
});

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(clients.map((c) => c.ended));
  await system?.shutdown('test over', 10_000);
  expect(lines.filter((l) => (l.level as number) >= 50)).toEqual([]);
});

async function connect(admin: string, transport: 'websocket' | 'sse', query: string): Promise<StreamClientHandle> {
  const port = ports[admin]!;
  const q = `?${query}${query ? '&' : ''}access_token=${TOKEN}`;
  const r =
    transport === 'websocket'
      ? await openWebSocket(`ws://127.0.0.1:${port}/v1/ws/events${q}`)
      : await openSse(`http://127.0.0.1:${port}/v1/sse/events${q}`);
  if (isRefused(r)) throw new Error(`refused ${r.status}: ${JSON.stringify(r.body)}`);
  clients.push(r);
  return r;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('fan-out to 1,000 clients', () => {
  it('500 WebSocket and 500 SSE clients each get exactly the events their filter selects', async () => {
    const specs = Array.from({ length: CLIENTS_PER_TRANSPORT * 2 }, randomSpec);
    const received: Received[] = new Array(specs.length);
    for (let i = 0; i < specs.length; i += 50) {
      await Promise.all(
        specs.slice(i, i + 50).map(async (spec, j) => {
          const client = await connect('admin', i + j < CLIENTS_PER_TRANSPORT ? 'websocket' : 'sse', spec.query);
          received[i + j] = record(client);
        }),
      );
    }
    expect(fanoutHub.stats().connections).toEqual({ websocket: CLIENTS_PER_TRANSPORT, sse: CLIENTS_PER_TRANSPORT });

    // Events flow in bursts of 25 every 10 ms while the clients read.
    const published: { id: number; event: StreamEvent }[] = [];
    while (published.length < EVENTS) {
      for (let k = 0; k < 25; k++) {
        const event = randomEvent();
        published.push({ id: fanoutHub.publish(event), event });
      }
      await sleep(10);
    }
    const expected = specs.map((spec) => published.filter((p) => selects(spec, p.event)).map((p) => p.id));
    const total = expected.reduce((n, ids) => n + ids.length, 0);
    await waitFor(() => received.every((got, i) => got.ids.length >= expected[i]!.length), 45_000, `${total} deliveries`);

    for (const [i, got] of received.entries()) {
      expect(
        [...got.ids].sort((a, b) => a - b),
        `client ${i} (${specs[i]!.query})`,
      ).toEqual(expected[i]);
      expect(lanesInOrder(got), `client ${i} lane order`).toBe(true);
    }
    // Every filter shape took part, and the filters did select: not everyone got everything.
    expect(expected.some((ids) => ids.length === 0 || ids.length < EVENTS / 10)).toBe(true);
    expect(total).toBeGreaterThan(EVENTS * 100);
    expect(fanoutHub.stats()).toMatchObject({ published: EVENTS, sent: total, dropped: 0 });

    for (const c of clients.splice(0)) c.close();
    await waitFor(() => fanoutHub.connectionCount('websocket') + fanoutHub.connectionCount('sse') === 0, 10_000, 'all released');
  });
});

describe('a client that never reads', () => {
  it('is dropped with its close reason; the readers get everything and publishing stays fast', async () => {
    const query = 'chain=99';
    const witnesses: Received[] = [];
    for (let i = 0; i < 16; i++) witnesses.push(record(await connect('admin-slow', i % 2 === 0 ? 'websocket' : 'sse', query)));
    const slowWs = await connect('admin-slow', 'websocket', query);
    const slowSse = await connect('admin-slow', 'sse', query);
    const slowGot = [record(slowWs), record(slowSse)];
    slowWs.pause();
    slowSse.pause();

    // 4 KiB of data per event. A paused socket is dropped once the kernel's buffers for it (a few MB,
    // how many depends on the machine) are full and SLOW_BUFFER more events wait. The witnesses read
    // as they come: each burst waits until they are less than a burst behind (a reader that keeps up),
    // so only the paused clients can fall SLOW_BUFFER behind. Published until both are dropped, then
    // as many again (at most MAX_EVENTS: 80 MB to each paused socket).
    const data = '0x' + 'ab'.repeat(4096);
    const MAX_EVENTS = 20_000;
    const BURST = 20;
    let count = 0;
    let droppedAt = 0;
    let publishMs = 0;
    let slowestBurstMs = 0;
    while (count < MAX_EVENTS && (droppedAt === 0 || count < 2 * droppedAt)) {
      const started = performance.now();
      for (let k = 0; k < BURST; k++) slowHub.publish(logEvent(99, ADDRESSES[0]!, 'log.created', data));
      count += BURST;
      const ms = performance.now() - started;
      publishMs += ms;
      slowestBurstMs = Math.max(slowestBurstMs, ms);
      if (droppedAt === 0 && slowHub.stats().dropped === 2) droppedAt = count;
      const behind = count - BURST;
      await waitFor(() => witnesses.every((w) => w.ids.length >= behind), 20_000, `witnesses at ${behind}`);
    }
    await waitFor(() => witnesses.every((w) => w.ids.length === count), 20_000, 'witnesses complete');

    expect(droppedAt, 'both slow clients dropped').toBeGreaterThan(0);
    expect(slowHub.stats()).toMatchObject({ published: count, dropped: 2 });
    for (const w of witnesses) expect(w.ids).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    // Publishing never waited on the stuck sockets: microseconds per event (the bound is far above).
    expect(publishMs / count).toBeLessThan(1);
    expect(slowestBurstMs).toBeLessThan(500);

    // Once they read again, the dropped clients find the close notice after what was already sent.
    slowWs.resume();
    slowSse.resume();
    const reason = `slow consumer: buffer full (${SLOW_BUFFER} events)`;
    expect(await slowWs.ended).toEqual({ code: 4008, reason });
    expect(JSON.parse((await slowSse.ended).error!.data!)).toEqual({ code: 'ETHHOOK_ERR_STREAM_SLOW_CONSUMER', message: reason });
    for (const got of slowGot) {
      expect(got.ids.length).toBeGreaterThan(0);
      expect(got.ids.length).toBeLessThan(count);
      expect(got.ids).toEqual(Array.from({ length: got.ids.length }, (_, i) => i + 1));
    }
    expect(lines.filter((l) => String(l.msg).startsWith('stream client dropped: slow consumer')).length).toBe(2);
    await waitFor(() => slowHub.connectionCount('websocket') + slowHub.connectionCount('sse') === 16, 5_000, 'dropped released');
  });
});
