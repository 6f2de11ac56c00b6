// The live streams of a cluster through PostgreSQL (src/store/postgres/stream-relay.ts): "instances"
// are relays, each with its own pool, hub and Admin actor serving real WebSocket and SSE clients on
// 127.0.0.1, on one schema of a real PostgreSQL:
// - an event published on A reaches the clients of B, once, and A's own clients once; governance
//   notices stay local; a relay that starts later begins after the newest row;
// - a dropped LISTEN connection, and a restarted PostgreSQL, lose nothing: the reader goes on from the
//   last id it saw;
// - rows are pruned once older than the retention, never before, within the prune period.
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminBehaviour } from '../../src/actors/admin/behaviour.ts';
import { defaultConfig, type AdminConfig } from '../../src/config/schema.ts';
import { createLogger } from '../../src/runtime/log.ts';
import type { ActorSystem } from '../../src/runtime/system.ts';
import type { ActorRef } from '../../src/runtime/types.ts';
import { migrate } from '../../src/store/postgres/migrate.ts';
import { openPgPool, type PgPool } from '../../src/store/postgres/pool.ts';
import { startStreamRelay, type PgStreamRelayOptions, type PgStreamRelay } from '../../src/store/postgres/stream-relay.ts';
import { StreamHub, streamMessageSchema, streamTransports, type LogStreamEvent, type StreamMessage } from '../../src/streams/index.ts';
import { streamRelayCounters, type StreamRelayCounters } from '../../src/streams/metrics.ts';
import { startSystem } from '../../src/supervision/index.ts';
import { memoryLogger, waitFor } from '../support/kernel.ts';
import { startPgServer } from '../support/pg-server.ts';
import { pgTestSchema } from '../support/postgres.ts';
import { isRefused, openSse, openWebSocket, type StreamClientHandle } from '../support/stream-clients.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';

const TOKEN = 'relay-token-dddddddddddddddd';
const NAMES = ['a', 'b', 'c'] as const;
type Name = (typeof NAMES)[number];

const { logger, lines } = memoryLogger();
const quiet = createLogger({ level: 'silent' });
const hubs = Object.fromEntries(NAMES.map((n) => [n, new StreamHub({ log: logger, clientBufferEvents: 8_192 })])) as Record<
  Name,
  StreamHub
>;
const ports = {} as Record<Name, number>;
let system: ActorSystem;
const clients: StreamClientHandle[] = [];
const shared = pgTestSchema('relay');

const adminConfig: AdminConfig = { ...defaultConfig().admin, port: 0, tokens: [{ token: TOKEN, role: 'read' }] };

beforeAll(async () => {
  system = await startSystem(
    {
      kind: 'supervisor',
      name: 'root',
      strategy: 'one-for-one',
      children: NAMES.map((name) => ({
        kind: 'worker' as const,
        name: `admin-${name}`,
        behaviour: () =>
          createAdminBehaviour({
            system: () => system,
            config: adminConfig,
            registry: new Registry(),
            streams: streamTransports(hubs[name], { maxWebsocketConnections: 10, maxSseConnections: 10, heartbeatMs: 60_000 }),
          }),
      })),
    },
    { logger },
  );
  for (const name of NAMES) {
    const address = await (system.lookup(`admin-${name}`) as ActorRef<{ type: 'address' }>).ask<AddressInfo | null>({ type: 'address' });
    ports[name] = address!.port;
  }
});

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(clients.map((c) => c.ended));
  await system?.shutdown('test over', 10_000);
  expect(lines.filter((l) => (l.level as number) >= 50)).toEqual([]);
});

interface Instance {
  relay: PgStreamRelay;
  pool: PgPool;
  counters: StreamRelayCounters;
  close(): Promise<void>;
}

/** An instance `name` on `url`/`schema`: its pool (migrated), and its relay in front of its hub. */
async function instance(
  name: Name,
  url: string,
  schema: string,
  relayOptions: Partial<PgStreamRelayOptions> = {},
  retryForMs = 60_000,
  relayPool: (pool: PgPool) => PgPool = (pool) => pool,
): Promise<Instance> {
  const registry = new Registry();
  const pool = await openPgPool({ url, schema, logger: quiet, registry, retryForMs });
  await migrate(pool);
  // Polls far apart: what arrives in time came through NOTIFY or a reconnection's read.
  const relay = await startStreamRelay({
    pool: relayPool(pool),
    hub: hubs[name],
    origin: name,
    logger,
    registry,
    pollMs: 600_000,
    ...relayOptions,
  });
  return {
    relay,
    pool,
    counters: streamRelayCounters(registry),
    async close() {
      await relay.close();
      await pool.close();
    },
  };
}

interface Received {
  messages: StreamMessage[];
  logs(): number[];
}

async function connect(name: Name, transport: 'websocket' | 'sse'): Promise<Received> {
  const q = `?access_token=${TOKEN}`;
  const r =
    transport === 'websocket'
      ? await openWebSocket(`ws://127.0.0.1:${ports[name]}/v1/ws/events${q}`)
      : await openSse(`http://127.0.0.1:${ports[name]}/v1/sse/events${q}`);
  if (isRefused(r)) throw new Error(`refused ${r.status}: ${JSON.stringify(r.body)}`);
  clients.push(r);
  const got: Received = {
    messages: [],
    // Sorted: retractions overtake waiting log.created events (the hub's lanes), so arrival order varies.
    logs: () => got.messages.flatMap((m) => ('blockNumber' in m ? [m.blockNumber] : [])).sort((x, y) => x - y),
  };
  r.onMessage = (text) => got.messages.push(streamMessageSchema.parse(JSON.parse(text)));
  return got;
}

/** A log event whose block number says which one it is. */
function log(n: number, chainId = 1): LogStreamEvent {
  const hex = n.toString(16);
  return {
    kind: n % 10 === 9 ? 'log.removed' : 'log.created',
    chainId,
    blockNumber: n,
    blockHash: `0x${hex.padStart(64, '0')}`,
    transactionHash: `0x${hex.padStart(64, 'f')}`,
    logIndex: n % 7,
    address: `0x${'ab'.repeat(20)}`,
    topics: [`0x${'e'.repeat(64)}`],
    data: `0x${hex.length % 2 === 0 ? hex : `0${hex}`}`,
    at: Date.now(),
  };
}

/** Publishes logs `from`..`to` through `relay`, `perTurn` per turn (a block's logs come in one loop). */
async function publishRange(relay: PgStreamRelay, from: number, to: number, perTurn = 25): Promise<void> {
  for (let n = from; n <= to; n++) {
    relay.publish(log(n));
    if ((n - from) % perTurn === perTurn - 1) await new Promise((r) => setImmediate(r));
  }
}

/** The stream_events rows (id, origin, batch) holding events of these block numbers. */
async function storedRowsOf(
  pool: PgPool,
  blocks: number[],
): Promise<Array<{ id: string; origin: string; batch: string; blocks: number[] }>> {
  const { rows } = await pool.run('test.rows', (c) =>
    c.query<{ id: string; origin: string; batch: string; blocks: number[] }>(
      `SELECT id::text, origin, batch::text, (SELECT array_agg((e->>'blockNumber')::int) FROM json_array_elements(events) e) AS blocks
       FROM stream_events WHERE EXISTS (SELECT 1 FROM json_array_elements(events) e WHERE (e->>'blockNumber')::int = ANY($1))`,
      [blocks],
    ),
  );
  return rows;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('across instances', () => {
  // The ingesting instance's logs reach the clients of the others, once; its own clients get them
  // from its hub alone (its own rows are skipped); governance notices stay with each instance.
  it('an event published on A reaches the WebSocket and SSE clients of B, and A’s clients once', async () => {
    const a = await instance('a', shared.url, shared.schema);
    const b = await instance('b', shared.url, shared.schema);
    try {
      const [bWs, bSse, aWs] = [await connect('b', 'websocket'), await connect('b', 'sse'), await connect('a', 'websocket')];
      await publishRange(a.relay, 1, 300);
      a.relay.publish({ kind: 'governance', seq: 1, type: 'endpoint.pause', at: Date.now() });
      await waitFor(() => bWs.logs().length >= 300 && bSse.logs().length >= 300, 20_000, "B's clients get A's logs");
      for (const got of [bWs, bSse]) {
        expect(got.logs()).toEqual(range(1, 300));
        const { at: _at, ...fields } = log(9);
        expect(got.messages.find((m) => 'blockNumber' in m && m.blockNumber === 9)).toMatchObject(fields);
        expect(got.messages.some((m) => m.kind === 'governance')).toBe(false);
      }

      // B's marker reaches A once A has read past every earlier row (ids commit in order): by then a
      // double of A's own rows would have arrived.
      b.relay.publish(log(1_000));
      await waitFor(() => aWs.logs().includes(1_000), 20_000, "A's client gets B's marker");
      expect(aWs.logs()).toEqual([...range(1, 300), 1_000]);
      expect(aWs.messages.filter((m) => m.kind === 'governance')).toHaveLength(1);
      expect(a.counters.events).toEqual({ out: 300, in: 1 });
      expect(b.counters.events).toEqual({ out: 1, in: 300 });
      expect(b.counters.listening).toBe(true);
      expect(b.counters.lagSeconds).toBeGreaterThan(0);

      // A relay that starts now begins after the newest row: no replay of what came before.
      const c = await instance('c', shared.url, shared.schema);
      try {
        const cWs = await connect('c', 'websocket');
        a.relay.publish(log(2_000));
        await waitFor(() => cWs.logs().length >= 1, 20_000, "C's client gets the next log");
        b.relay.publish(log(2_001));
        await waitFor(() => cWs.logs().length >= 2, 20_000, "C's client gets B's log");
        expect(cWs.logs()).toEqual([2_000, 2_001]);
        expect(c.counters.events.in).toBe(2);
      } finally {
        await c.close();
      }
    } finally {
      await a.close();
      await b.close();
    }
  });
  // Two ingesting instances (two chains) write at once: ids commit in order, so a reader that has
  // seen a later row never skips an earlier one that committed after it.
  it('a third instance gets every log of two instances writing at once', async () => {
    const { url, schema } = pgTestSchema('relay_two_writers');
    const a = await instance('a', url, schema);
    const b = await instance('b', url, schema);
    const c = await instance('c', url, schema);
    try {
      const cWs = await connect('c', 'websocket');
      // One log per turn: as many rows, written as fast as each writer can, interleaved.
      await Promise.all([publishRange(a.relay, 1, 1_500, 1), publishRange(b.relay, 10_001, 11_500, 1)]);
      await waitFor(() => a.counters.events.out === 1_500 && b.counters.events.out === 1_500, 60_000, 'both wrote');
      await waitFor(() => cWs.logs().length >= 3_000, 20_000, "C's client gets both");
      // A log received twice: are its events stored in two rows (written twice) or in one? And did C's
      // relay hand them to its hub twice (events in: 3,000 + their count; the row read twice) or once
      // (3,000: the hub or the socket sent them twice)?
      const received = cWs.logs();
      const twice = received.filter((n, i) => received[i - 1] === n);
      const stored = twice.length === 0 ? [] : await storedRowsOf(a.pool, twice);
      const cameIn = c.counters.events.in;
      expect(
        received,
        `received twice: ${JSON.stringify(twice)}; their rows: ${JSON.stringify(stored)}; C's relay events in: ${cameIn}`,
      ).toEqual([...range(1, 1_500), ...range(10_001, 11_500)]);
      // Each writer's logs are stored once: one row holds block 1, one block 10,001.
      expect((await storedRowsOf(a.pool, [1, 10_001])).map((r) => r.origin).sort()).toEqual(['a', 'b']);
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
  });
});

describe('lost connections', () => {
  // B's LISTEN connection is cut and cannot come back while A writes: the NOTIFYs are lost to it, the
  // rows are not; reconnected, it reads on from the last id it saw.
  it('a dropped LISTEN connection loses nothing: B reads on from its last id', async () => {
    const { url, schema } = pgTestSchema('relay_cut');
    const target = new URL(url);
    const proxy = await startTcpProxy(Number(target.port));
    const viaProxy = new URL(url);
    viaProxy.port = String(proxy.port);
    const a = await instance('a', url, schema);
    const b = await instance('b', viaProxy.toString(), schema);
    try {
      const bWs = await connect('b', 'websocket');
      const bSse = await connect('b', 'sse');
      await publishRange(a.relay, 1, 50);
      await waitFor(() => bWs.logs().length >= 50 && bSse.logs().length >= 50, 20_000, 'before the cut');

      proxy.refuse(true);
      proxy.cutAll();
      await waitFor(() => !b.counters.listening, 10_000, "B's relay sees its connection gone");
      await publishRange(a.relay, 51, 250);
      await waitFor(() => a.counters.events.out === 250, 20_000, 'A wrote while B was away');
      expect(bWs.logs()).toHaveLength(50);

      proxy.refuse(false);
      await waitFor(() => bWs.logs().length >= 250 && bSse.logs().length >= 250, 30_000, 'B catches up');
      expect(bWs.logs()).toEqual(range(1, 250));
      expect(bSse.logs()).toEqual(range(1, 250));
      expect(b.counters.listening).toBe(true);
      expect(lines.some((l) => String(l.msg).includes('connection was lost'))).toBe(true);
    } finally {
      await a.close();
      await b.close();
      await proxy.stop();
    }
  });

  // The server goes away under both: A's writes wait in its buffer and the pool's retries, B's reader
  // reconnects (B through a proxy kept shut until A's writes landed, so B cannot have been listening
  // when they were notified); once back, every log reaches B's clients, once.
  it('a restarted PostgreSQL loses nothing: both reconnect and B reads on from its last id', async () => {
    const server = await startPgServer({ prefix: 'ethhook-pg-relay-' });
    const proxy = await startTcpProxy(server.port);
    const viaProxy = new URL(server.url);
    viaProxy.port = String(proxy.port);
    const schema = 'relay_restart';
    let a: Instance | undefined;
    let b: Instance | undefined;
    try {
      a = await instance('a', server.url, schema);
      b = await instance('b', viaProxy.toString(), schema);
      const bWs = await connect('b', 'websocket');
      const bSse = await connect('b', 'sse');
      await publishRange(a.relay, 1, 100);
      await waitFor(() => bWs.logs().length >= 100 && bSse.logs().length >= 100, 20_000, 'before the restart');

      await server.stop();
      await waitFor(() => !a!.counters.listening && !b!.counters.listening, 10_000, 'both relays see the server gone');
      proxy.refuse(true);
      await publishRange(a.relay, 101, 300);
      await server.start();
      await waitFor(() => a!.counters.events.out === 300 && a!.counters.listening, 45_000, 'A wrote and listens again');
      expect(bWs.logs()).toHaveLength(100);

      proxy.refuse(false);
      await waitFor(() => bWs.logs().length >= 300 && bSse.logs().length >= 300, 30_000, 'B catches up after the restart');
      expect(bWs.logs()).toEqual(range(1, 300));
      expect(bSse.logs()).toEqual(range(1, 300));
      expect(b.counters.listening).toBe(true);
      expect(a.counters.dropped).toEqual({ buffer_full: 0, write_failed: 0, closed: 0, invalid: 0 });
    } finally {
      await a?.close();
      await b?.close();
      await proxy.stop();
      await server.close();
    }
  });
});

describe('transactions run again', () => {
  // The pool runs a transaction again when its COMMIT was cut off or answered with an error after it
  // had landed. Here every write transaction of A runs twice, both times committed: B's clients still
  // get each log once.
  it('a batch whose transaction ran twice reaches the other instances once', async () => {
    const { url, schema } = pgTestSchema('relay_twice');
    const twice = (pool: PgPool): PgPool => ({
      ...pool,
      tx: async (op, fn, options) => {
        await pool.tx(op, fn, options);
        return pool.tx(op, fn, options);
      },
    });
    const a = await instance('a', url, schema, {}, 60_000, twice);
    const b = await instance('b', url, schema);
    try {
      const bWs = await connect('b', 'websocket');
      await publishRange(a.relay, 1, 200, 7);
      await waitFor(() => a.counters.events.out === 200, 20_000, 'A wrote');
      // Ids commit in order: once B has A's last log, it has read every row before it.
      a.relay.publish(log(1_001));
      await waitFor(() => bWs.logs().includes(1_001), 20_000, "B's client gets A's last log");
      expect(bWs.logs()).toEqual([...range(1, 200), 1_001]);
      const { rows } = await a.pool.run('test.rows', (c) =>
        c.query('SELECT events::text FROM stream_events GROUP BY events::text HAVING count(*) > 1'),
      );
      expect(rows).toEqual([]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('pruning', () => {
  // A row lives at least retainMs and at most about retainMs + pruneEveryMs (the database's clock).
  it('deletes rows once older than the retention, never before, within the prune period', async () => {
    const { url, schema } = pgTestSchema('relay_prune');
    const retainMs = 1_500;
    const pruneEveryMs = 200;
    const a = await instance('a', url, schema, { retainMs, pruneEveryMs });
    try {
      a.relay.publish(log(1));
      await waitFor(() => a.counters.events.out === 1, 10_000, 'written');
      const ages: number[] = [];
      await waitFor(
        async () => {
          const { rows } = await a.pool.run('test.age', (c) =>
            c.query<{ age: number }>('SELECT extract(epoch FROM clock_timestamp() - written_at)::float8 * 1000 AS age FROM stream_events'),
          );
          if (rows.length === 0) return true;
          ages.push(rows[0]!.age);
          return false;
        },
        10_000,
        'the row pruned',
      );
      const oldest = Math.max(...ages);
      // Seen close to the retention (samples are a few ms apart): it was not pruned early ...
      expect(oldest).toBeGreaterThan(retainMs - 300);
      // ... and gone within a prune period of it (a margin for a loaded machine).
      expect(oldest).toBeLessThan(retainMs + pruneEveryMs + 1_000);
    } finally {
      await a.close();
    }
  });
});
