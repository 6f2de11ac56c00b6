/**
 * bench:deliver — signed, persisted webhooks per second against the plain-undici limit, with the outbox's
 * backlog held in memory and with one several times larger than what it holds.
 *
 * One receiver in a child process (a bare node:http server answering 200 "ok" on 127.0.0.1, the same
 * for every phase), then in this process, phase by phase:
 * - raw: a plain undici POST loop (`Agent#request`, body read whole), `concurrency` requests in flight
 *   over one keep-alive Agent (`concurrency` connections, pipelining 1), the same JSON bodies, nothing
 *   else: the limit this machine allows.
 * - signed, not persisted: the same bodies signed and sent through the webhook client by `concurrency`
 *   workers, no outbox: it separates the client's own cost from the store's.
 * - deliveries: the real path, on `jobs` jobs. They are enqueued in a fresh LevelDB outbox (1,000 per
 *   batch, as the Matcher writes a block's), then the Deliverer's loop drains them: read due jobs,
 *   endpoint lookup (sealed secret), JSON body, Standard Webhooks signature, POST through the webhook
 *   client (SSRF connector, global limit, bounded read, deadline), and `complete` with the attempt
 *   record, group-committed by the outbox (one LevelDB batch for all the completions that arrive while
 *   the previous batch is written, one attempt page per endpoint). Two rates of the same run: persisted
 *   deliveries/s, timed from the loop's start (the jobs pre-written), and write+deliver/s, timed from
 *   before the first job is written to the last delivered. The job objects are made before either timer
 *   and each batch is dropped once written, so the bench holds no more of them than a node would.
 * - backlog deliveries: the same on `backlog` jobs, by default 5 × the outbox's in-memory limit (the
 *   larger of its due window, DEFAULT_DUE_WINDOW, and the jobs it remembers as stored, MAX_KNOWN), so
 *   while timed the due index is refilled from LevelDB and most jobs are read back from it, as in a real
 *   backlog. `jobs` defaults to that limit itself: the largest backlog held wholly in memory.
 * Each phase first warms up once on 2,000 webhooks (JIT, connections); then the four run in turn,
 * `rounds` times (interleaved, so a burst of load from other work on the machine hits each alike);
 * each figure is the best of its rounds, the raw limit included (on this shared machine a phase's rate
 * swings by 1.5x between rounds, and each phase needs a quiet one). Four rounds by default, which keeps a
 * run near two minutes on a quiet machine (the backlog is most of it). The JSON also lists each round's
 * own ratios (deliveries / raw of the same round) and their median, which one loaded round moves less
 * than a best divided by a best.
 * Each phase also prints the process CPU time per webhook (all threads, LevelDB's included; the
 * receiver's is not counted) and the main thread's busy time per webhook (event-loop utilization): on a
 * shared machine the rates swing from run to run, the CPU cost per webhook much less.
 *
 * Runs bundled, as bin/ethhook.mjs runs the node (bundled.ts); BENCH_SOURCES=1 runs the sources under tsx.
 * Env: BENCH_JOBS (default: the in-memory limit), BENCH_BACKLOG (5 × the limit), BENCH_CONCURRENCY (64),
 * BENCH_ENDPOINTS (10), BENCH_ROUNDS (4).
 * Target: deliveries_per_s >= 0.6 × raw_undici_per_s. Last line: one JSON object.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { Agent } from 'undici';
import { DeliveryLoop } from '../src/actors/deliverer/delivery-loop.ts';
import { WebhookHttpClient } from '../src/actors/deliverer/http-client.ts';
import { signingKey, signWithKeys } from '../src/webhook-signing.ts';
import { createLogger } from '../src/runtime/log.ts';
import { openDb } from '../src/store/level/db.ts';
import { LevelKv } from '../src/store/level/kv.ts';
import { EndpointStore } from '../src/store/endpoints.ts';
import { DEFAULT_DUE_WINDOW } from '../src/store/level/outbox/due-window.ts';
import { type NewJob } from '../src/store/outbox/job.ts';
import { LevelOutbox } from '../src/store/level/outbox/outbox.ts';
import { MAX_KNOWN } from '../src/store/level/outbox/known.ts';
import type { OutboxStore } from '../src/store/outbox/contract.ts';
import { PgKv } from '../src/store/postgres/kv.ts';
import { migrate } from '../src/store/postgres/migrate.ts';
import { PgOutbox } from '../src/store/postgres/outbox.ts';
import { openPgPool } from '../src/store/postgres/pool.ts';
import { asShipped, execArgvFor } from './bundled.ts';
import { pgBossDeliveries } from './peers/pg-boss.ts';
import { dropSchema, resetStatements, startBenchPostgres, statements } from './postgres.ts';

/** The most jobs the outbox holds in memory by default (due-index keys or remembered jobs); past it, it reads LevelDB. */
const IN_MEMORY_LIMIT = Math.max(DEFAULT_DUE_WINDOW, MAX_KNOWN);
const JOBS = Number(process.env.BENCH_JOBS ?? IN_MEMORY_LIMIT);
const BACKLOG = Number(process.env.BENCH_BACKLOG ?? 5 * IN_MEMORY_LIMIT);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const ENDPOINTS = Number(process.env.BENCH_ENDPOINTS ?? 10);
const STORE = process.argv.includes('--store') ? process.argv[process.argv.indexOf('--store') + 1] : 'level';
if (STORE !== 'level' && STORE !== 'postgres') throw new Error(`--store must be level or postgres, not ${STORE}`);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (STORE === 'postgres' ? 3 : 4));

if (process.argv.includes('--receiver')) {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  server.keepAliveTimeout = 120_000;
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as { port: number }).port }));
  process.on('disconnect', () => process.exit(0));
} else if (!(await asShipped(import.meta.url))) {
  await (STORE === 'postgres' ? mainPostgres() : main());
}

async function startReceiver(): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(fileURLToPath(import.meta.url), ['--receiver'], { execArgv: execArgvFor(import.meta.url), stdio: 'inherit' });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`receiver exited with ${code}`)));
  });
  return { child, port };
}

function makeJobs(endpointIds: string[], count: number): NewJob[] {
  const now = Date.now();
  return Array.from({ length: count }, (_, i) => {
    const subscriptionId = `sub_${i % 100}`;
    return {
      id: `msg_${i.toString(16).padStart(64, '0')}`,
      endpointId: endpointIds[i % endpointIds.length] as string,
      subscriptionId,
      type: 'log.created' as const,
      eventSeenAt: now,
      payload: {
        type: 'log.created' as const,
        timestamp: new Date(now).toISOString(),
        data: {
          chainId: 1,
          blockNumber: 19_000_000 + Math.floor(i / 10),
          blockHash: `0x${randomBytes(32).toString('hex')}`,
          transactionHash: `0x${randomBytes(32).toString('hex')}`,
          logIndex: i % 10,
          address: `0x${randomBytes(20).toString('hex')}`,
          topics: [`0x${randomBytes(32).toString('hex')}`, `0x${randomBytes(32).toString('hex')}`],
          data: `0x${randomBytes(64).toString('hex')}`,
          subscriptionId,
        },
      },
    };
  });
}

/** `CONCURRENCY` workers POSTing the bodies in turn over one keep-alive Agent; resolves with requests/s. */
async function rawLoop(origin: string, bodies: string[]): Promise<number> {
  const agent = new Agent({ connections: CONCURRENCY, pipelining: 1, keepAliveTimeout: 30_000 });
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < bodies.length; i = next++) {
      const res = await agent.request({
        origin,
        path: `/ep${i % ENDPOINTS}`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: bodies[i],
      });
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`raw POST got ${res.statusCode}`);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - started) / 1000;
  await agent.close();
  return bodies.length / seconds;
}

/** Signing + the webhook client, `CONCURRENCY` workers, no outbox; resolves with webhooks/s. */
async function signedOnly(origin: string, bodies: string[]): Promise<number> {
  const client = new WebhookHttpClient({ policy: { allowPrivate: true }, concurrency: CONCURRENCY });
  // As the delivery loop holds them: the endpoint's secrets prepared once, one URL per endpoint.
  const keys = [signingKey(`whsec_${randomBytes(24).toString('base64')}`)];
  const urls = Array.from({ length: ENDPOINTS }, (_, e) => new URL(`${origin}/ep${e}`));
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < bodies.length; i = next++) {
      const body = bodies[i] as string;
      const headers = signWithKeys({ id: `msg_${i}`, timestamp: Math.floor(Date.now() / 1000), body, keys });
      const res = await client.post(urls[i % ENDPOINTS] as URL, { ...headers }, body);
      if (res.status !== 200) throw new Error(`signed POST got ${res.status ?? res.error?.message}`);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - started) / 1000;
  await client.close();
  return bodies.length / seconds;
}

interface Deliveries {
  /** Persisted deliveries/s, timed from the loop's start (the jobs pre-written). */
  perSecond: number;
  /** Jobs written and delivered per second, timed from before the first write. */
  writeDeliverPerSecond: number;
  enqueuePerSecond: number;
  /** Process CPU time and main-thread busy time per delivery (the drain only), µs. */
  cpuUs: number;
  mainUs: number;
}

/** The outbox and endpoint store of one run of the deliveries phase, fresh, on one engine. */
interface PhaseStore {
  outbox: OutboxStore;
  endpoints: EndpointStore;
  close: () => Promise<void>;
}

/** A LevelDB directory of its own under os.tmpdir(), removed by `close`. */
async function levelStore(): Promise<PhaseStore> {
  const dir = await mkdtemp(join(tmpdir(), 'ethhook-bench-deliver-'));
  const db = await openDb(dir);
  const close = async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const outbox = await LevelOutbox.open(new LevelKv(db));
    return { outbox, endpoints: new EndpointStore(new LevelKv(db), randomBytes(32)), close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** A migrated schema of its own on the bench's PostgreSQL (the pool's defaults), dropped by `close`. */
async function postgresStore(url: string): Promise<PhaseStore> {
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const pool = await openPgPool({ url, schema, logger: createLogger({ level: 'warn' }), registry: new Registry() });
  let outbox: PgOutbox | undefined;
  const close = async () => {
    await outbox?.close();
    await pool.close();
    await dropSchema(url, schema);
  };
  try {
    await migrate(pool);
    const kv = new PgKv(pool);
    outbox = await PgOutbox.open(pool, kv, { owner: 'bench' });
    return { outbox, endpoints: new EndpointStore(kv, randomBytes(32)), close };
  } catch (err) {
    await close();
    throw err;
  }
}

async function deliveries(origin: string, count: number, openStore: () => Promise<PhaseStore> = levelStore): Promise<Deliveries> {
  const { outbox, endpoints, close } = await openStore();
  try {
    const ids: string[] = [];
    for (let e = 0; e < ENDPOINTS; e++) ids.push((await endpoints.create({ url: `${origin}/ep${e}` })).endpoint.id);
    const jobs = makeJobs(ids, count);
    const batches: NewJob[][] = [];
    for (let i = 0; i < jobs.length; i += 1_000) batches.push(jobs.slice(i, i + 1_000));
    jobs.length = 0;

    const writeStarted = performance.now();
    for (let b = 0; b < batches.length; b++) {
      await outbox.enqueueBatch(batches[b]!);
      batches[b] = [];
    }
    const written = performance.now();
    if (outbox.depth() !== count) throw new Error(`the outbox holds ${outbox.depth()} jobs, not ${count}`);

    const client = new WebhookHttpClient({ policy: { allowPrivate: true }, concurrency: CONCURRENCY });
    const loop = new DeliveryLoop({ outbox, endpoints, client, logger: createLogger({ level: 'warn' }) }, { concurrency: CONCURRENCY });
    const cpuBefore = process.cpuUsage();
    const eluBefore = performance.eventLoopUtilization();
    const started = performance.now();
    loop.start();
    while (outbox.depth() > 0) await new Promise((r) => setTimeout(r, 2));
    const drained = performance.now();
    const cpu = process.cpuUsage(cpuBefore);
    const elu = performance.eventLoopUtilization(eluBefore);
    await loop.stop();
    await client.close();
    await outbox.idle();
    if (outbox.deadLetterCount() !== 0) throw new Error(`${outbox.deadLetterCount()} jobs were dead-lettered`);
    return {
      perSecond: count / ((drained - started) / 1000),
      writeDeliverPerSecond: count / ((drained - writeStarted) / 1000),
      enqueuePerSecond: count / ((written - writeStarted) / 1000),
      cpuUs: (cpu.user + cpu.system) / count,
      mainUs: (elu.active * 1000) / count,
    };
  } finally {
    await close();
  }
}

/** Runs a phase and returns its result with the process CPU time (all threads) it used per job, in µs. */
async function withCpu<T>(phase: () => Promise<T>): Promise<[T, number, number]> {
  const before = process.cpuUsage();
  const eluBefore = performance.eventLoopUtilization();
  const result = await phase();
  const used = process.cpuUsage(before);
  const elu = performance.eventLoopUtilization(eluBefore);
  return [result, (used.user + used.system) / JOBS, (elu.active * 1000) / JOBS];
}

async function main(): Promise<void> {
  const { child, port } = await startReceiver();
  const origin = `http://127.0.0.1:${port}`;
  try {
    const bodies = makeJobs(['ep'], JOBS).map((j) => JSON.stringify(j.payload));
    console.log(
      `bench:deliver  jobs=${JOBS} backlog=${BACKLOG} (outbox in memory: ${DEFAULT_DUE_WINDOW} due keys, ${MAX_KNOWN} jobs) concurrency=${CONCURRENCY} endpoints=${ENDPOINTS} rounds=${ROUNDS} body≈${bodies[0]?.length} B`,
    );
    // Every phase warms up once (JIT, connections, LevelDB's first files) before the measured rounds.
    await rawLoop(origin, bodies.slice(0, 2_000));
    await signedOnly(origin, bodies.slice(0, 2_000));
    await deliveries(origin, 2_000);

    const raw: Array<[number, number]> = [];
    const signed: Array<[number, number]> = [];
    const delivered: Deliveries[] = [];
    const backlog: Deliveries[] = [];
    const report = (round: number, label: string, d: Deliveries) => {
      console.log(
        `round ${round}  ${label.padEnd(29)} ${d.perSecond.toFixed(0)} webhooks/s persisted (jobs pre-written), ${d.cpuUs.toFixed(0)} µs CPU each (${d.mainUs.toFixed(0)} on the main thread)`,
      );
      console.log(
        `round ${round}  ${''.padEnd(29)} ${d.writeDeliverPerSecond.toFixed(0)} write+deliver/s (enqueue alone ${d.enqueuePerSecond.toFixed(0)} jobs/s)`,
      );
    };
    for (let round = 1; round <= ROUNDS; round++) {
      const [rawRate, rawCpu, rawMain] = await withCpu(() => rawLoop(origin, bodies));
      raw.push([rawRate, rawCpu]);
      console.log(
        `round ${round}  raw undici POST loop          ${rawRate.toFixed(0)} req/s, ${rawCpu.toFixed(0)} µs CPU each (${rawMain.toFixed(0)} on the main thread)`,
      );
      const [signedRate, signedCpu, signedMain] = await withCpu(() => signedOnly(origin, bodies));
      signed.push([signedRate, signedCpu]);
      console.log(
        `round ${round}  signed, not persisted         ${signedRate.toFixed(0)} webhooks/s, ${signedCpu.toFixed(0)} µs CPU each (${signedMain.toFixed(0)} on the main thread)`,
      );
      const d = await deliveries(origin, JOBS);
      delivered.push(d);
      report(round, `deliveries, ${JOBS} jobs`, d);
      const l = await deliveries(origin, BACKLOG);
      backlog.push(l);
      report(round, `backlog, ${BACKLOG} jobs`, l);
    }

    const best = (xs: number[]) => Math.max(...xs);
    const least = (xs: number[]) => Math.min(...xs);
    const rawBest = best(raw.map(([rate]) => rate));
    const rate = (ds: Deliveries[]) => best(ds.map((d) => d.perSecond));
    const writeRate = (ds: Deliveries[]) => best(ds.map((d) => d.writeDeliverPerSecond));
    const perRound = (ds: Deliveries[], pick: (d: Deliveries) => number) => ds.map((d, i) => Number((pick(d) / raw[i]![0]).toFixed(3)));
    const median = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      const mid = Math.floor(s.length / 2);
      return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
    };
    const ratioRounds = perRound(delivered, (d) => d.perSecond);
    const backlogRatioRounds = perRound(backlog, (d) => d.perSecond);
    const ratio = rate(delivered) / rawBest;
    const signedBest = best(signed.map(([r]) => r));
    console.log(`best of ${ROUNDS}: raw ${rawBest.toFixed(0)}/s, signed ${signedBest.toFixed(0)}/s`);
    console.log(
      `  ${JOBS} jobs:   deliveries ${rate(delivered).toFixed(0)}/s (x${ratio.toFixed(2)} raw, target >= 0.60), write+deliver ${writeRate(delivered).toFixed(0)}/s (x${(writeRate(delivered) / rawBest).toFixed(2)})`,
    );
    console.log(
      `  ${BACKLOG} jobs: deliveries ${rate(backlog).toFixed(0)}/s (x${(rate(backlog) / rawBest).toFixed(2)} raw), write+deliver ${writeRate(backlog).toFixed(0)}/s (x${(writeRate(backlog) / rawBest).toFixed(2)})`,
    );
    console.log(
      `same-round ratios, median: deliveries / raw ${median(ratioRounds).toFixed(2)}, backlog / raw ${median(backlogRatioRounds).toFixed(2)}`,
    );
    console.log(
      `signed, not persisted / raw ${(signedBest / rawBest).toFixed(2)}; backlog / in-memory deliveries ${(rate(backlog) / rate(delivered)).toFixed(2)}`,
    );
    console.log(
      JSON.stringify({
        deliveries_per_s: Math.round(rate(delivered)),
        raw_undici_per_s: Math.round(rawBest),
        ratio: Number(ratio.toFixed(3)),
        write_deliver_per_s: Math.round(writeRate(delivered)),
        write_deliver_ratio: Number((writeRate(delivered) / rawBest).toFixed(3)),
        backlog_deliveries_per_s: Math.round(rate(backlog)),
        backlog_ratio: Number((rate(backlog) / rawBest).toFixed(3)),
        backlog_write_deliver_per_s: Math.round(writeRate(backlog)),
        backlog_write_deliver_ratio: Number((writeRate(backlog) / rawBest).toFixed(3)),
        signed_unpersisted_per_s: Math.round(signedBest),
        cpu_us_raw: Math.round(least(raw.map(([, cpu]) => cpu))),
        cpu_us_signed: Math.round(least(signed.map(([, cpu]) => cpu))),
        cpu_us_delivery: Math.round(least(delivered.map((d) => d.cpuUs))),
        cpu_us_backlog_delivery: Math.round(least(backlog.map((d) => d.cpuUs))),
        jobs: JOBS,
        backlog_jobs: BACKLOG,
        rounds: ROUNDS,
        ratio_rounds: ratioRounds,
        ratio_median: Number(median(ratioRounds).toFixed(3)),
        backlog_ratio_rounds: backlogRatioRounds,
        backlog_ratio_median: Number(median(backlogRatioRounds).toFixed(3)),
      }),
    );
  } finally {
    child.kill();
  }
}

/** `--store postgres`: raw, the LevelDB outbox, the PostgreSQL outbox and pg-boss, on `JOBS` jobs each (see the header). */
async function mainPostgres(): Promise<void> {
  const { child, port } = await startReceiver();
  const origin = `http://127.0.0.1:${port}`;
  const server = await startBenchPostgres();
  try {
    const bodies = makeJobs(['ep'], JOBS).map((j) => JSON.stringify(j.payload));
    const pgStore = () => postgresStore(server.url);
    const boss = (count: number) =>
      pgBossDeliveries({ url: server.url, origin, count, concurrency: CONCURRENCY, endpoints: ENDPOINTS, makeJobs });
    console.log(
      `bench:deliver --store postgres  jobs=${JOBS} concurrency=${CONCURRENCY} endpoints=${ENDPOINTS} rounds=${ROUNDS} body≈${bodies[0]?.length} B; PostgreSQL (embedded, fsync and synchronous_commit on) at ${server.url.replace(/:[^:@/]*@/, ':***@')}`,
    );
    await rawLoop(origin, bodies.slice(0, 2_000));
    await deliveries(origin, 2_000);
    await deliveries(origin, 2_000, pgStore);
    await boss(2_000);

    const raw: Array<[number, number]> = [];
    const level: Deliveries[] = [];
    const postgres: Deliveries[] = [];
    const pgboss: Deliveries[] = [];
    const report = (round: number, label: string, d: Deliveries) =>
      console.log(
        `round ${round}  ${label.padEnd(22)} ${d.perSecond.toFixed(0).padStart(6)} webhooks/s persisted, ${d.cpuUs.toFixed(0)} µs CPU each (${d.mainUs.toFixed(0)} main thread); write+deliver ${d.writeDeliverPerSecond.toFixed(0)}/s, enqueue ${d.enqueuePerSecond.toFixed(0)} jobs/s`,
      );
    const serverTime: Record<string, string[]> = {};
    for (let round = 1; round <= ROUNDS; round++) {
      const last = round === ROUNDS;
      const [rawRate, rawCpu, rawMain] = await withCpu(() => rawLoop(origin, bodies));
      raw.push([rawRate, rawCpu]);
      console.log(
        `round ${round}  ${'raw undici POST loop'.padEnd(22)} ${rawRate.toFixed(0).padStart(6)} req/s, ${rawCpu.toFixed(0)} µs CPU each (${rawMain.toFixed(0)} main thread)`,
      );
      level.push(await deliveries(origin, JOBS));
      report(round, 'LevelDB outbox', level.at(-1)!);
      if (last) await resetStatements(server.url);
      postgres.push(await deliveries(origin, JOBS, pgStore));
      report(round, 'PostgreSQL outbox', postgres.at(-1)!);
      if (last) {
        serverTime.postgres = await statements(server.url);
        await resetStatements(server.url);
      }
      pgboss.push(await boss(JOBS));
      report(round, 'pg-boss', pgboss.at(-1)!);
      if (last) serverTime.pgboss = await statements(server.url);
    }
    for (const [who, lines] of Object.entries(serverTime)) {
      console.log(`server time by statement, last round, ${who} (pg_stat_statements; set-up included):`);
      for (const line of lines) console.log(`  ${line}`);
    }

    const best = (xs: number[]) => Math.max(...xs);
    const least = (xs: number[]) => Math.min(...xs);
    const median = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      const mid = Math.floor(s.length / 2);
      return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
    };
    const rate = (ds: Deliveries[]) => best(ds.map((d) => d.perSecond));
    const cpu = (ds: Deliveries[]) => Math.round(least(ds.map((d) => d.cpuUs)));
    const ratio = (a: number, b: number) => Number((a / b).toFixed(3));
    const sameRound = (as: Deliveries[], bs: Deliveries[]) => Number(median(as.map((a, i) => a.perSecond / bs[i]!.perSecond)).toFixed(3));
    const rawBest = best(raw.map(([r]) => r));
    const figures = {
      postgres_deliveries_per_s: Math.round(rate(postgres)),
      pgboss_deliveries_per_s: Math.round(rate(pgboss)),
      level_deliveries_per_s: Math.round(rate(level)),
      raw_undici_per_s: Math.round(rawBest),
      postgres_vs_pgboss: ratio(rate(postgres), rate(pgboss)),
      postgres_vs_level: ratio(rate(postgres), rate(level)),
      level_vs_raw: ratio(rate(level), rawBest),
      postgres_vs_pgboss_median: sameRound(postgres, pgboss),
      postgres_vs_level_median: sameRound(postgres, level),
      cpu_us_postgres: cpu(postgres),
      cpu_us_pgboss: cpu(pgboss),
      cpu_us_level: cpu(level),
      cpu_us_raw: Math.round(least(raw.map(([, c]) => c))),
      postgres_write_deliver_per_s: Math.round(best(postgres.map((d) => d.writeDeliverPerSecond))),
      pgboss_write_deliver_per_s: Math.round(best(pgboss.map((d) => d.writeDeliverPerSecond))),
      postgres_enqueue_per_s: Math.round(best(postgres.map((d) => d.enqueuePerSecond))),
      pgboss_enqueue_per_s: Math.round(best(pgboss.map((d) => d.enqueuePerSecond))),
      jobs: JOBS,
      concurrency: CONCURRENCY,
      rounds: ROUNDS,
    };
    console.log(
      `best of ${ROUNDS}: PostgreSQL outbox ${figures.postgres_deliveries_per_s}/s = x${figures.postgres_vs_pgboss} pg-boss (target >= 3), x${figures.postgres_vs_level} LevelDB (target >= 0.4); LevelDB x${figures.level_vs_raw} raw (target >= 0.6)`,
    );
    console.log(JSON.stringify(figures));
  } finally {
    child.kill();
    await server.stop();
  }
}
