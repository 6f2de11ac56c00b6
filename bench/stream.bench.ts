/**
 * bench:stream — events/s fanned out to 1,000 concurrent live-stream clients on loopback, the
 * event-to-client latency p99, and the server's RSS.
 *
 * Server (this process): a real ActorSystem with the Admin actor serving the streams of a StreamHub
 * (src/streams/), exactly as the node runs them. Clients (one child process, so they do not share the
 * server's core): 500 WebSocket and 500 SSE clients, all with `events=all`, so every event goes to
 * every client. The clients are raw sockets that speak just enough of each protocol (the upgrade or
 * the GET, the status line) and then find each event in the byte stream by its `at` (the publish time,
 * `performance.timeOrigin + performance.now()` in the server; the clients use the same clock) to record
 * its latency. Full client libraries (`ws`, an SSE parser) cost the one client core as much as the
 * server's work, and the bench would measure them; the tests use them. They do not answer pings, so
 * the heartbeat is set longer than the run.
 *
 * Events: ~420-byte `log.created` events (one topic, 32 bytes of data). The server publishes at a
 * fixed rate in bursts every 10 ms, in phases of rising rate (4 s each, the first second a warm-up
 * not counted); a phase passes when every client got every event, nobody was dropped, and the p99
 * latency is <= 50 ms. The ramp stops at the first phase that fails. Reported: the highest passing
 * rate (events/s; each is delivered 1,000 times), its p99, and the server's peak RSS.
 * Targets: 1,000 clients held with p99 <= 50 ms and RSS <= 200 MB. Last line: one JSON object.
 *
 * Environment: STREAM_BENCH_RATES (comma list of events/s), STREAM_BENCH_PHASE_MS, STREAM_BENCH_CLIENTS
 * (default 1000, half of them WebSocket).
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect, type AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import { createAdminBehaviour } from '../src/actors/admin/behaviour.ts';
import { defaultConfig } from '../src/config/schema.ts';
import { createLogger } from '../src/runtime/log.ts';
import type { ActorRef } from '../src/runtime/types.ts';
import { StreamHub, streamTransports, type StreamEvent } from '../src/streams/index.ts';
import { startSystem } from '../src/supervision/index.ts';

const CLIENTS = Number(process.env.STREAM_BENCH_CLIENTS ?? 1_000);
const WS_CLIENTS = Math.ceil(CLIENTS / 2);
const SSE_CLIENTS = CLIENTS - WS_CLIENTS;
const TOKEN = 'bench-token-dddddddddddddddd';
const TICK_MS = 10;
const WARMUP_MS = 1_000;
const P99_TARGET_MS = 50;
const RSS_TARGET_MB = 200;
const RATES = (process.env.STREAM_BENCH_RATES ?? '100,250,500,1000,2000,4000').split(',').map(Number);
const PHASE_MS = Number(process.env.STREAM_BENCH_PHASE_MS ?? 4_000);

const now = () => performance.timeOrigin + performance.now();
const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
/** How loaded the machine is: load average, and Linux's CPU pressure (share of time something waited for a core). */
function machineLoad(): string {
  let pressure = '';
  try {
    pressure = `, CPU pressure ${/avg10=([\d.]+)/.exec(readFileSync('/proc/pressure/cpu', 'utf8'))?.[1]}% (10 s)`;
  } catch {
    // not Linux, or no PSI: the load average says enough
  }
  return `load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}${pressure}`;
}

// ---- the clients (child process) -------------------------------------------------------------------

/** Latencies in 0.1 ms bins up to 10 s; the last bin holds the rest. */
class LatencyHistogram {
  private bins = new Uint32Array(100_001);
  count = 0;
  record(ms: number): void {
    this.bins[Math.min(this.bins.length - 1, Math.max(0, Math.round(ms * 10)))]!++;
    this.count++;
  }
  percentile(p: number): number {
    let seen = 0;
    const wanted = Math.ceil(this.count * p);
    for (let i = 0; i < this.bins.length; i++) {
      seen += this.bins[i]!;
      if (seen >= wanted && seen > 0) return i / 10;
    }
    return 0;
  }
  reset(): void {
    this.bins.fill(0);
    this.count = 0;
  }
}

type ToClients = { type: 'measure'; from: number } | { type: 'expect'; perClient: number };
type FromClients =
  | { type: 'ready' }
  | {
      type: 'result';
      complete: boolean;
      received: number;
      missing: number;
      p50: number;
      p99: number;
      max: number;
      rssMb: number;
      cpuMs: number;
      detail: string;
    };

async function runClients(port: number): Promise<void> {
  const histogram = new LatencyHistogram();
  const byTransport = { ws: new LatencyHistogram(), sse: new LatencyHistogram() };
  let measureFrom = Infinity;
  /** Per client: events stamped at or after `measureFrom`. */
  const counts: number[] = [];
  const seen = (client: number, at: number) => {
    if (at < measureFrom) return;
    counts[client]!++;
    const ms = now() - at;
    histogram.record(ms);
    byTransport[client < WS_CLIENTS ? 'ws' : 'sse'].record(ms);
  };
  /**
   * One client on a raw socket: it sends the WebSocket upgrade or the SSE request, checks the status
   * line (101 or 200), then finds each event in the byte stream by its `"at":<number>}` (the last field
   * of every event's JSON, which nothing else in an event contains), across reads.
   */
  const open = (i: number, transport: 'ws' | 'sse') =>
    new Promise<void>((resolve, reject) => {
      counts[i] = 0;
      const path = `/v1/${transport}/events?access_token=${TOKEN}`;
      const head =
        transport === 'ws'
          ? `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`
          : `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`;
      const socket = connect(port, '127.0.0.1', () => socket.write(head));
      socket.setEncoding('latin1');
      socket.once('error', reject);
      let carry = '';
      let headersDone = false;
      socket.on('data', (chunk: string) => {
        let text = carry + chunk;
        if (!headersDone) {
          const endOfHead = text.indexOf('\r\n\r\n');
          if (endOfHead < 0) return void (carry = text);
          if (!text.startsWith(transport === 'ws' ? 'HTTP/1.1 101 ' : 'HTTP/1.1 200 '))
            return reject(new Error(`refused: ${text.slice(0, 40)}`));
          headersDone = true;
          resolve();
          text = text.slice(endOfHead + 4);
        }
        let at = text.indexOf('"at":');
        let done = 0;
        while (at >= 0) {
          const close = text.indexOf('}', at);
          if (close < 0) break;
          seen(i, Number(text.slice(at + 5, close)));
          done = close;
          at = text.indexOf('"at":', close);
        }
        // Keep an event cut by the read, or the few bytes that may begin its `"at":`.
        carry = at >= 0 ? text.slice(at) : text.slice(Math.max(done, text.length - 4));
      });
    });

  for (let i = 0; i < WS_CLIENTS + SSE_CLIENTS; i += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, j) => open(i + j, i + j < WS_CLIENTS ? 'ws' : 'sse')));
  }
  const send = (m: FromClients) => process.send!(m);
  let cpuAtMeasure = process.cpuUsage();
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  process.on('message', (m: ToClients) => {
    if (m.type === 'measure') {
      cpuAtMeasure = process.cpuUsage();
      loopDelay.reset();
      histogram.reset();
      byTransport.ws.reset();
      byTransport.sse.reset();
      counts.fill(0);
      measureFrom = m.from;
      return;
    }
    const deadline = performance.now() + 10_000;
    const check = () => {
      const missing = counts.reduce((n, c) => n + Math.max(0, m.perClient - c), 0);
      if (missing > 0 && performance.now() < deadline) return void setTimeout(check, 20);
      const received = counts.reduce((n, c) => n + c, 0);
      send({
        type: 'result',
        complete: missing === 0,
        received,
        missing,
        p50: histogram.percentile(0.5),
        p99: histogram.percentile(0.99),
        max: histogram.percentile(1),
        rssMb: process.memoryUsage.rss() / 2 ** 20,
        cpuMs: cpuMs(process.cpuUsage(cpuAtMeasure)),
        detail: `client event-loop delay p99 ${(loopDelay.percentile(99) / 1e6).toFixed(1)}; p90 ${histogram.percentile(0.9)} p99.9 ${histogram.percentile(0.999)}; WebSocket p50 ${byTransport.ws.percentile(0.5)} p99 ${byTransport.ws.percentile(0.99)}; SSE p50 ${byTransport.sse.percentile(0.5)} p99 ${byTransport.sse.percentile(0.99)}`,
      });
    };
    check();
  });
  // The server is done (or gone): so are the clients.
  process.once('disconnect', () => process.exit(0));
  send({ type: 'ready' });
}

// ---- the server (this process) ---------------------------------------------------------------------

async function runServer(): Promise<void> {
  const out = (s: string) => process.stdout.write(`${s}\n`);
  const registry = new Registry();
  const logger = createLogger({ level: 'warn' });
  const hub = new StreamHub({ registry, log: logger });
  const config = { ...defaultConfig().admin, port: 0, tokens: [{ token: TOKEN, role: 'read' as const }] };
  const streams = { maxWebsocketConnections: WS_CLIENTS, maxSseConnections: SSE_CLIENTS, heartbeatMs: 3_600_000 };
  const system = await startSystem(
    {
      kind: 'supervisor',
      name: 'root',
      strategy: 'one-for-one',
      children: [
        {
          kind: 'worker',
          name: 'admin',
          behaviour: () => createAdminBehaviour({ system: () => system, config, registry, streams: streamTransports(hub, streams) }),
        },
      ],
    },
    { logger, registry },
  );
  const address = await (system.lookup('admin') as ActorRef<{ type: 'address' }>).ask<AddressInfo | null>({ type: 'address' });
  const rssMb = () => process.memoryUsage.rss() / 2 ** 20;
  const rssIdle = rssMb();
  const serverLoopDelay = monitorEventLoopDelay({ resolution: 1 });
  serverLoopDelay.enable();

  const child = fork(process.argv[1]!, ['--clients', String(address!.port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = () => new Promise<FromClients>((resolve) => child.once('message', (m: FromClients) => resolve(m)));
  const connectStarted = performance.now();
  await next();
  let peakRss = rssMb();
  out(`machine: ${cpus().length} cores, ${machineLoad()} at start (other processes share these cores)`);
  out(
    `${WS_CLIENTS} WebSocket + ${SSE_CLIENTS} SSE clients connected in ${((performance.now() - connectStarted) / 1000).toFixed(1)} s; server RSS ${rssIdle.toFixed(0)} MB idle, ${peakRss.toFixed(0)} MB with the clients`,
  );

  let block = 0;
  const event = (): StreamEvent => ({
    kind: 'log.created',
    chainId: 1,
    blockNumber: ++block,
    blockHash: `0x${block.toString(16).padStart(64, '0')}`,
    transactionHash: `0x${'7'.repeat(64)}`,
    logIndex: block % 100,
    address: `0x${'5'.repeat(40)}`,
    topics: [`0x${'d'.repeat(64)}`],
    data: `0x${'0'.repeat(63)}1`,
    at: now(),
  });

  const clients = WS_CLIENTS + SSE_CLIENTS;
  let best: { rate: number; p99: number } | undefined;
  let first: { rate: number; p99: number } | undefined;
  out('rate ev/s | published ev/s | deliveries/s | p50 ms | p99 ms | max ms | dropped | complete | server RSS MB');
  for (const rate of RATES) {
    const dropsBefore = hub.stats().dropped;
    const started = performance.now();
    const cpuAtStart = process.cpuUsage();
    serverLoopDelay.reset();
    // The measured window starts after the warm-up; the clients learn when before it starts.
    const measureFrom = now() + WARMUP_MS;
    child.send({ type: 'measure', from: measureFrom } satisfies ToClients);
    let published = 0;
    let measured = 0;
    let measureStart = 0;
    for (let tick = 1; performance.now() - started < PHASE_MS; tick++) {
      // Due by the clock, not by the tick count: a late tick publishes what the missed ones would have.
      const due = Math.floor(((performance.now() - started) * rate) / 1000) - published;
      for (let k = 0; k < due; k++) {
        const e = event();
        if (e.at >= measureFrom && measured++ === 0) measureStart = performance.now();
        hub.publish(e);
      }
      published += due;
      if (tick % 25 === 0) peakRss = Math.max(peakRss, rssMb());
      const wait = started + tick * TICK_MS - performance.now();
      await new Promise((r) => setTimeout(r, Math.max(0, wait)));
    }
    const measuredS = (performance.now() - measureStart) / 1000;
    child.send({ type: 'expect', perClient: measured } satisfies ToClients);
    const result = (await next()) as Extract<FromClients, { type: 'result' }>;
    const dropped = hub.stats().dropped - dropsBefore;
    const pass = result.complete && dropped === 0 && result.p99 <= P99_TARGET_MS;
    out(
      `  CPU over the phase: server ${((cpuMs(process.cpuUsage(cpuAtStart)) / (performance.now() - started)) * 100).toFixed(0)}%, clients ${((result.cpuMs / (performance.now() - started)) * 100).toFixed(0)}% of a core`,
    );
    out(`  latency ms: server event-loop delay p99 ${(serverLoopDelay.percentile(99) / 1e6).toFixed(1)}; ${result.detail}`);
    if (!result.complete) out(`  ${result.missing} deliveries still missing 10 s after the phase`);
    out(
      `${String(rate).padStart(9)} | ${(measured / measuredS).toFixed(0).padStart(14)} | ${(result.received / measuredS).toFixed(0).padStart(12)} | ${result.p50.toFixed(1).padStart(6)} | ${result.p99.toFixed(1).padStart(6)} | ${result.max.toFixed(1).padStart(6)} | ${String(dropped).padStart(7)} | ${String(result.complete).padStart(8)} | ${peakRss.toFixed(0)}${pass ? '' : '   <- fails'}`,
    );
    first ??= { rate, p99: result.p99 };
    if (!pass) break;
    best = { rate: Math.round(measured / measuredS), p99: result.p99 };
  }
  out(`${machineLoad()} at the end`);
  out(`client process RSS ${((await clientRss(child, next)) ?? 0).toFixed(0)} MB (not counted)`);
  const reported = best ?? first!;
  out(
    `targets: ${clients} clients with p99 <= ${P99_TARGET_MS} ms ${best ? `OK up to ${best.rate} events/s (${best.rate * clients} deliveries/s)` : 'MISSED at every rate'}, RSS <= ${RSS_TARGET_MB} MB ${peakRss <= RSS_TARGET_MB ? 'OK' : 'MISSED'}`,
  );
  child.disconnect();
  await system.shutdown('bench over', 5_000);
  out(
    JSON.stringify({
      stream_events_per_s: best ? best.rate : 0,
      stream_clients: clients,
      stream_p99_ms: Number(reported.p99.toFixed(1)),
      rss_mb: Math.round(peakRss),
    }),
  );
}

/** The client process's RSS, from an empty phase. */
async function clientRss(child: ReturnType<typeof fork>, next: () => Promise<FromClients>): Promise<number | undefined> {
  child.send({ type: 'expect', perClient: 0 } satisfies ToClients);
  const r = await next();
  return r.type === 'result' ? r.rssMb : undefined;
}

if (process.argv[2] === '--clients') await runClients(Number(process.argv[3]));
else await runServer();
