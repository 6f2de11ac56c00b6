// The live streams' doors, over real HTTP and WebSocket on 127.0.0.1, served by a real Admin actor
// under the real ActorSystem: auth, origins, filters, limits, the wire formats, heartbeats, health,
// metrics, and what clients see when the Admin actor stops.
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createAdminBehaviour } from '../../src/actors/admin/behaviour.ts';
import { defaultConfig, type AdminConfig } from '../../src/config/schema.ts';
import type { ActorRef } from '../../src/runtime/types.ts';
import type { ActorSystem } from '../../src/runtime/system.ts';
import {
  StreamHub,
  streamMessageSchema,
  streamTransports,
  STREAM_METRIC_NAMES,
  type StreamEvent,
  type StreamMessage,
} from '../../src/streams/index.ts';
import { startSystem } from '../../src/supervision/index.ts';
import { memoryLogger, waitFor } from '../support/kernel.ts';
import { isRefused, openSse, openWebSocket, type StreamClientHandle } from '../support/stream-clients.ts';

const READ = 'read-token-aaaaaaaaaaaaaaaa';
const OPERATE = 'operate-token-bbbbbbbbbbbbbbbb';
const ORIGIN = 'https://ops.example';
const LIMIT = 3;

const adminConfig: AdminConfig = {
  ...defaultConfig().admin,
  port: 0,
  tokens: [
    { token: READ, role: 'read' },
    { token: OPERATE, role: 'operate' },
  ],
  corsOrigins: [ORIGIN],
};
const streamsConfig = { maxWebsocketConnections: LIMIT, maxSseConnections: LIMIT, heartbeatMs: 150 };

const registry = new Registry();
const { logger, lines } = memoryLogger();
const hub = new StreamHub({ registry, log: logger });
let system: ActorSystem;
let http = '';
let wsBase = '';
const open: StreamClientHandle[] = [];

async function locate(): Promise<void> {
  const admin = system.lookup('admin') as ActorRef<{ type: 'address' }>;
  const address = await admin.ask<AddressInfo | null>({ type: 'address' });
  if (address === null) throw new Error('admin is not listening');
  http = `http://127.0.0.1:${address.port}`;
  wsBase = `ws://127.0.0.1:${address.port}`;
}

async function ws(query = '', headers: Record<string, string> = { authorization: `Bearer ${READ}` }) {
  const r = await openWebSocket(`${wsBase}/v1/ws/events${query}`, headers);
  if (!isRefused(r)) open.push(r);
  return r;
}

async function sse(query = '', headers: Record<string, string> = { authorization: `Bearer ${READ}` }) {
  const r = await openSse(`${http}/v1/sse/events${query}`, headers);
  if (!isRefused(r)) open.push(r);
  return r;
}

async function closeAll(): Promise<void> {
  const all = open.splice(0);
  for (const c of all) c.close();
  await Promise.all(all.map((c) => c.ended));
  await waitFor(() => hub.connectionCount('websocket') + hub.connectionCount('sse') === 0, 5_000, 'connections released');
}

const log = (i: number, over: Partial<StreamEvent> = {}): StreamEvent =>
  ({
    kind: 'log.created',
    chainId: 1,
    blockNumber: 100 + i,
    blockHash: `0x${'b'.repeat(63)}${i % 10}`,
    transactionHash: `0x${'c'.repeat(64)}`,
    logIndex: i,
    address: '0x' + 'a'.repeat(40),
    topics: [`0x${'d'.repeat(64)}`],
    data: '0x',
    at: Date.now(),
    ...over,
  }) as StreamEvent;

beforeAll(async () => {
  system = await startSystem(
    {
      kind: 'supervisor',
      name: 'root',
      strategy: 'one-for-one',
      intensity: { maxRestarts: 20, withinMs: 60_000 },
      children: [
        {
          kind: 'worker',
          name: 'admin',
          behaviour: () =>
            createAdminBehaviour({
              system: () => system,
              config: adminConfig,
              registry,
              streams: streamTransports(hub, streamsConfig, { closeGraceMs: 500 }),
            }),
        },
      ],
    },
    { logger, registry },
  );
  await locate();
});

afterAll(async () => {
  await closeAll();
  await system?.shutdown('test over', 5_000);
  expect(lines.filter((l) => (l.level as number) >= 50)).toEqual([]);
  // The tokens travel in headers and query strings; neither reaches the log.
  const text = JSON.stringify(lines);
  expect(text).not.toContain(READ);
  expect(text).not.toContain(OPERATE);
});

describe('authentication', () => {
  // No token, or an unknown one: 401 before any upgrade, with the admin API's error body.
  it('401 without a token or with an unknown one, on both transports', async () => {
    for (const openStream of [ws, sse]) {
      const none = await openStream('', {});
      expect(isRefused(none) && none.status).toBe(401);
      if (!isRefused(none)) throw new Error('admitted');
      expect(none.body).toMatchObject({ error: { code: 'ETHHOOK_ERR_ADMIN_UNAUTHORIZED' } });
      expect(none.headers['www-authenticate']).toBe('Bearer realm="ethhook"');
      const bad = await openStream('', { authorization: 'Bearer not-a-known-token-xxxxxxxx' });
      if (!isRefused(bad)) throw new Error('admitted');
      expect(bad.status).toBe(401);
      expect(bad.headers['www-authenticate']).toContain('invalid_token');
      const badQuery = await openStream('?access_token=not-a-known-token-xxxxxxxx', {});
      expect(isRefused(badQuery) && badQuery.status).toBe(401);
    }
    expect(hub.connectionCount('websocket') + hub.connectionCount('sse')).toBe(0);
  });

  // Browsers' WebSocket and EventSource cannot set headers: ?access_token= does the same job.
  it('?access_token= admits a read or operate token; the header works too', async () => {
    for (const openStream of [ws, sse]) {
      expect(isRefused(await openStream(`?access_token=${READ}`, {}))).toBe(false);
      expect(isRefused(await openStream(`?access_token=${encodeURIComponent(OPERATE)}&events=governance`, {}))).toBe(false);
      expect(isRefused(await openStream('', { authorization: `bearer ${OPERATE}` }))).toBe(false);
    }
    expect(hub.connectionCount('websocket')).toBe(3);
    expect(hub.connectionCount('sse')).toBe(3);
    await closeAll();
  });

  // Browsers do not apply CORS to WebSockets: the server checks Origin on both transports.
  it('403 for an Origin outside admin.corsOrigins; an allowed one is admitted (SSE gets the CORS header)', async () => {
    for (const openStream of [ws, sse]) {
      const r = await openStream('', { authorization: `Bearer ${READ}`, origin: 'https://evil.example' });
      if (!isRefused(r)) throw new Error('admitted');
      expect(r.status).toBe(403);
      expect(r.body).toMatchObject({ error: { code: 'ETHHOOK_ERR_STREAM_ORIGIN_FORBIDDEN' } });
      expect(isRefused(await openStream('', { authorization: `Bearer ${READ}`, origin: ORIGIN }))).toBe(false);
    }
    const res = await fetch(`${http}/v1/sse/events?access_token=${READ}`, { headers: { origin: ORIGIN } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    await res.body?.cancel();
    await closeAll();
  });
});

describe('filters', () => {
  // A bad filter is a 400 naming the query key, on both transports; nothing is admitted.
  it('400 with the field for bad values and unknown keys', async () => {
    const cases: [string, string][] = [
      ['?chain=abc', 'chain'],
      ['?chain=0', 'chain'],
      ['?address=0x1234', 'address'],
      ['?events=logs', 'events'],
      ['?events=all,governance', 'events'],
      ['?type=Endpoint%20Pause', 'type'],
      ['?adress=0x' + 'a'.repeat(40), 'adress'],
      ['?chain=1,,2', 'chain'],
    ];
    for (const openStream of [ws, sse]) {
      for (const [query, field] of cases) {
        const r = await openStream(query);
        if (!isRefused(r)) throw new Error(`admitted ${query}`);
        expect(r.status, query).toBe(400);
        expect(r.body, query).toMatchObject({ error: { code: 'ETHHOOK_ERR_ADMIN_INVALID_REQUEST', field } });
      }
    }
    expect(hub.connectionCount('websocket') + hub.connectionCount('sse')).toBe(0);
  });

  // Each client gets exactly what its filter selects; addresses are case-insensitive.
  it('filters select by kind, chain, address and governance type', async () => {
    const upper = '0x' + 'A'.repeat(40);
    const wsLogs = await ws(`?events=log.created,log.removed&chain=1&address=${upper}`);
    const sseGov = await sse('?events=governance&type=key.rotate');
    if (isRefused(wsLogs) || isRefused(sseGov)) throw new Error('refused');
    const got: { ws: StreamMessage[]; sse: StreamMessage[] } = { ws: [], sse: [] };
    wsLogs.onMessage = (t) => got.ws.push(streamMessageSchema.parse(JSON.parse(t)));
    sseGov.onMessage = (t) => got.sse.push(streamMessageSchema.parse(JSON.parse(t)));
    const ids = [
      hub.publish(log(1)),
      hub.publish(log(2, { chainId: 2 })),
      hub.publish(log(3, { address: '0x' + 'f'.repeat(40) })),
      hub.publish(log(4, { kind: 'log.removed' })),
      hub.publish({ kind: 'governance', seq: 1, type: 'endpoint.pause', at: Date.now() }),
      hub.publish({ kind: 'governance', seq: 2, type: 'key.rotate', at: Date.now() }),
    ];
    await waitFor(() => got.ws.length === 2 && got.sse.length === 1, 5_000, 'filtered events');
    expect(got.ws.map((m) => m.id).sort()).toEqual([ids[0], ids[3]]);
    expect(got.ws.find((m) => m.id === ids[3])).toMatchObject({ kind: 'log.removed', chainId: 1, logIndex: 4 });
    expect(got.sse).toEqual([{ id: ids[5], kind: 'governance', seq: 2, type: 'key.rotate', at: expect.any(Number) }]);
    await closeAll();
  });
});

describe('wire formats', () => {
  // SSE blocks carry `id:` (the hub's increasing event id) and `event:` (the kind).
  it('SSE blocks are id/event/data; WebSocket messages are the JSON with its id', async () => {
    const res = await fetch(`${http}/v1/sse/events?events=log.created`, { headers: { authorization: `Bearer ${READ}` } });
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const socket = await ws();
    if (isRefused(socket)) throw new Error('refused');
    const wsMessages: string[] = [];
    socket.onMessage = (t) => wsMessages.push(t);
    const first = hub.publish(log(1));
    const second = hub.publish(log(2));
    const reader = res.body!.getReader();
    let text = '';
    // Heartbeat comments (every 150 ms here) may fall between the blocks on a loaded machine.
    const eventBlocks = (): string[] => text.split('\n\n').filter((b) => b !== '' && !b.startsWith(':'));
    while (eventBlocks().length < 2 || !text.endsWith('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    const blocks = eventBlocks().slice(0, 2);
    expect(blocks[0]).toBe(
      `id: ${first}\nevent: log.created\ndata: ${JSON.stringify({ id: first, ...log(1), at: (JSON.parse(blocks[0]!.split('data: ')[1]!) as StreamMessage).at })}`,
    );
    expect(blocks[1]).toMatch(new RegExp(`^id: ${second}\nevent: log.created\ndata: \\{"id":${second},`));
    expect(second).toBe(first + 1);
    await waitFor(() => wsMessages.length === 2, 5_000, 'ws messages');
    expect(wsMessages.map((t) => (JSON.parse(t) as StreamMessage).id)).toEqual([first, second]);
    await closeAll();
  });

  // The WebSocket frames are built by hand (frame.ts): every length encoding, at its edges, reaches a
  // real client intact.
  it('WebSocket messages of every length encoding arrive intact', async () => {
    const socket = await ws();
    if (isRefused(socket)) throw new Error('refused');
    const got: string[] = [];
    socket.onMessage = (t) => got.push(t);
    const sent: string[] = [];
    const at = Date.now();
    for (const target of [125, 126, 127, 65_535, 65_536, 200_000]) {
      const id = hub.stats().published + 1;
      let event: StreamEvent;
      if (target < 1_000) {
        // Governance notices are short; the type's length sets the size exactly.
        const bare = JSON.stringify({ id, kind: 'governance', seq: 1, type: '', at }).length;
        event = { kind: 'governance', seq: 1, type: 'x'.repeat(target - bare), at };
      } else {
        const bare = JSON.stringify({ id, ...log(0, { logIndex: 0, at }) }).length;
        // Data grows by two characters per byte; a two-digit logIndex adds the odd one.
        const odd = (target - bare) % 2;
        event = log(0, { logIndex: odd ? 10 : 0, at, data: '0x' + 'ab'.repeat((target - bare - odd) / 2) });
      }
      const text = JSON.stringify({ id, ...event });
      expect(text.length).toBe(target);
      hub.publish(event);
      sent.push(text);
    }
    await waitFor(() => got.length === sent.length, 5_000, 'all sizes');
    expect(got).toEqual(sent);
    await closeAll();
  });

  // A plain GET on the WebSocket path is told to upgrade; an upgrade elsewhere is a 404.
  it('426 for GET /v1/ws/events without an upgrade; 404 for an upgrade on another path', async () => {
    const plain = await fetch(`${http}/v1/ws/events`);
    expect(plain.status).toBe(426);
    expect(plain.headers.get('upgrade')).toBe('websocket');
    expect(await plain.json()).toMatchObject({ error: { code: 'ETHHOOK_ERR_STREAM_UPGRADE_REQUIRED' } });
    const elsewhere = await openWebSocket(`${wsBase}/metrics`, { authorization: `Bearer ${READ}` });
    expect(isRefused(elsewhere) && elsewhere.status).toBe(404);
  });

  // Idle streams get heartbeats: SSE comment lines, WebSocket pings (answered by the client).
  it('heartbeats every streams.heartbeatMs', async () => {
    const s = await sse();
    if (isRefused(s)) throw new Error('refused');
    const raw = new WebSocket(`${wsBase}/v1/ws/events`, { headers: { authorization: `Bearer ${READ}` } });
    let pings = 0;
    raw.on('ping', () => pings++);
    await new Promise((r) => raw.once('open', r));
    await waitFor(() => s.comments.filter((c) => c === 'heartbeat').length >= 2 && pings >= 2, 5_000, 'heartbeats');
    // Answered pings keep the socket open.
    expect(raw.readyState).toBe(WebSocket.OPEN);
    raw.close();
    await closeAll();
  });

  // A peer that stops answering pings is terminated at the next heartbeat.
  it('a WebSocket peer that does not answer pings is terminated', async () => {
    const raw = new WebSocket(`${wsBase}/v1/ws/events`, { headers: { authorization: `Bearer ${READ}` }, autoPong: false });
    await new Promise((r) => raw.once('open', r));
    const code = await new Promise<number>((r) => raw.once('close', (c) => r(c)));
    expect(code).toBe(1006);
    await waitFor(() => hub.connectionCount('websocket') === 0, 5_000, 'release');
  });
});

describe('limits', () => {
  // Over streams.maxWebsocketConnections / maxSseConnections: 503 with a code and Retry-After;
  // a slot frees when a client leaves.
  it('503 over the connection limit, per transport; a freed slot is reusable', async () => {
    for (const openStream of [ws, sse]) {
      const admitted: StreamClientHandle[] = [];
      for (let i = 0; i < LIMIT; i++) {
        const c = await openStream();
        if (isRefused(c)) throw new Error(`refused at ${i}`);
        admitted.push(c);
      }
      const over = await openStream();
      if (!isRefused(over)) throw new Error('admitted over the limit');
      expect(over.status).toBe(503);
      expect(over.body).toMatchObject({ error: { code: 'ETHHOOK_ERR_STREAM_LIMIT' } });
      expect(over.headers['retry-after']).toBe('5');
      admitted[0]!.close();
      await admitted[0]!.ended;
      await waitFor(async () => !isRefused(await openStream()), 5_000, 'a freed slot');
    }
    await closeAll();
  });
});

describe('health and metrics', () => {
  it('GET /v1/health/streaming needs the read role and reports connections, limits and totals', async () => {
    expect((await fetch(`${http}/v1/health/streaming`)).status).toBe(401);
    await ws();
    await sse();
    await sse();
    const before = hub.stats();
    hub.publish(log(1));
    await waitFor(() => hub.stats().sent === before.sent + 3, 5_000, 'sent');
    const res = await fetch(`${http}/v1/health/streaming`, { headers: { authorization: `Bearer ${READ}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      websocket: { connections: 1, max: LIMIT },
      sse: { connections: 2, max: LIMIT },
      totals: { sent: before.sent + 3, dropped: 0, published: before.published + 1 },
    });
  });

  it('the four stream metrics are served at /metrics with their values', async () => {
    const text = await (await fetch(`${http}/metrics`, { headers: { authorization: `Bearer ${READ}` } })).text();
    for (const name of STREAM_METRIC_NAMES) expect(text).toContain(`# TYPE ${name} `);
    const value = (line: string) =>
      Number(
        text
          .split('\n')
          .find((l) => l.startsWith(line))
          ?.split(' ')
          .pop(),
      );
    expect(value('events_emitted_total ')).toBe(hub.stats().published);
    expect(value('websocket_connections ')).toBe(1);
    expect(value('sse_connections ')).toBe(2);
    expect(value('stream_messages_sent_total{transport="websocket"}') + value('stream_messages_sent_total{transport="sse"}')).toBe(
      hub.stats().sent,
    );
    await closeAll();
  });
});

describe('the Admin actor stopping', () => {
  // Stopping the Admin actor ends every stream with a notice, frees the port, and a start serves again.
  it('clients get 1001 / event: error ETHHOOK_ERR_STREAM_CLOSING; a restarted admin serves streams again', async () => {
    const w = await ws();
    const s = await sse();
    if (isRefused(w) || isRefused(s)) throw new Error('refused');
    await system.stopActor('admin');
    expect(await w.ended).toEqual({ code: 1001, reason: 'the admin API is stopping' });
    const sseEnd = await s.ended;
    expect(JSON.parse(sseEnd.error!.data!)).toEqual({ code: 'ETHHOOK_ERR_STREAM_CLOSING', message: 'the admin API is stopping' });
    expect(hub.connectionCount('websocket') + hub.connectionCount('sse')).toBe(0);
    open.splice(0);
    await system.startActor('admin');
    await locate();
    const again = await ws();
    expect(isRefused(again)).toBe(false);
    await closeAll();
  });

  // A raw upgrade that never completes its handshake does not hold the server.
  it('a half-open upgrade request is answered and closed', async () => {
    const port = Number(new URL(http).port);
    const socket = connect(port, '127.0.0.1');
    socket.write(
      `GET /v1/ws/events HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nAuthorization: Bearer ${READ}\r\n\r\n`,
    );
    const reply = await new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (d) => (text += d.toString()));
      socket.on('close', () => resolve(text));
    });
    // No Sec-WebSocket-Key: ws refuses the handshake itself.
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    expect(hub.connectionCount('websocket')).toBe(0);
  });
});
