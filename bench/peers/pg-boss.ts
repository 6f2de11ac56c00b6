/**
 * The peer of bench:deliver's PostgreSQL outbox: the same signed-POST workload through pg-boss 10.x, a
 * job queue on PostgreSQL (npm `pg-boss`), on the same server, to the same receiver.
 *
 * `pgBossDeliveries({ url, origin, count, concurrency, endpoints, makeJobs })`:
 * - Set-up, untimed: a migrated ethhook schema of its own with `endpoints` endpoints (EndpointStore over
 *   PgKv, sealed secrets, as the node stores them) and a pg-boss schema of its own (`<schema>_boss`,
 *   pg-boss's defaults: a pool of 10 connections; its maintenance and cron loops off, so no archiving
 *   runs during the timed span — which spares pg-boss work, not ethhook), one queue (`createQueue`). The
 *   job objects (`makeJobs(endpointIds, count)`: the bench's own) are made before both timers.
 * - Enqueue: `insert` in batches of 1,000, each job's data the whole job (id, endpoint, payload).
 * - Drain, the fastest use of its API we found: `concurrency` requests in flight, kept full by `fetch`
 *   (one at a time, each asking for as many jobs as there are free slots, so a fetch takes every slot
 *   freed while the one before ran), and `complete` group-committed (one call at a time, with every id
 *   finished meanwhile: `complete` takes an array). Per job: the endpoint from the same cache the
 *   Deliverer uses (endpoint-cache.ts: the secret unsealed and prepared once per endpoint and second),
 *   the payload's JSON, the Standard Webhooks signature (src/webhook-signing.ts), the POST through the
 *   same webhook client (src/actors/deliverer/http-client.ts, undici), which must answer 200. pg-boss's
 *   `work` (a fetch of `batchSize`, then the whole batch, then one complete) holds fewer requests in
 *   flight on average, so it is slower here.
 * - Not done, unlike the outbox: no attempt record per delivery, no per-endpoint fairness or hold; and
 *   pg-boss keeps the completed rows (state `completed`) for its archive instead of deleting them.
 * The timers and figures are bench:deliver's (`Deliveries`): drained = every job's `complete` committed.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import PgBoss from 'pg-boss';
import { Registry } from 'prom-client';
import { EndpointCache } from '../../src/actors/deliverer/endpoint-cache.ts';
import { WebhookHttpClient } from '../../src/actors/deliverer/http-client.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { EndpointStore } from '../../src/store/endpoints.ts';
import type { NewJob } from '../../src/store/outbox/job.ts';
import { migrate } from '../../src/store/postgres/migrate.ts';
import { openPgPool } from '../../src/store/postgres/pool.ts';
import { PgKv } from '../../src/store/postgres/kv.ts';
import { signWithKeys } from '../../src/webhook-signing.ts';
import { dropSchema } from '../postgres.ts';

export interface PgBossRun {
  url: string;
  origin: string;
  count: number;
  concurrency: number;
  endpoints: number;
  makeJobs: (endpointIds: string[], count: number) => NewJob[];
}

export interface PgBossFigures {
  perSecond: number;
  writeDeliverPerSecond: number;
  enqueuePerSecond: number;
  cpuUs: number;
  mainUs: number;
}

const QUEUE = 'webhooks';

export async function pgBossDeliveries(run: PgBossRun): Promise<PgBossFigures> {
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const pool = await openPgPool({ url: run.url, schema, logger: createLogger({ level: 'warn' }), registry: new Registry() });
  const boss = new PgBoss({ connectionString: run.url, schema: `${schema}_boss`, supervise: false, schedule: false });
  let failure: Error | undefined;
  boss.on('error', (err) => (failure ??= err));
  try {
    await migrate(pool);
    const store = new EndpointStore(new PgKv(pool), randomBytes(32));
    const ids: string[] = [];
    for (let e = 0; e < run.endpoints; e++) ids.push((await store.create({ url: `${run.origin}/ep${e}` })).endpoint.id);
    await boss.start();
    await boss.createQueue(QUEUE);
    const jobs = run.makeJobs(ids, run.count);
    const batches: PgBoss.JobInsert<NewJob>[][] = [];
    for (let i = 0; i < jobs.length; i += 1_000) batches.push(jobs.slice(i, i + 1_000).map((data) => ({ name: QUEUE, data })));
    jobs.length = 0;

    const writeStarted = performance.now();
    for (let b = 0; b < batches.length; b++) {
      await boss.insert(batches[b]!);
      batches[b] = [];
    }
    const written = performance.now();

    const client = new WebhookHttpClient({ policy: { allowPrivate: true }, concurrency: run.concurrency });
    const cache = new EndpointCache(store, 1_000, () => undefined);
    const cpuBefore = process.cpuUsage();
    const eluBefore = performance.eventLoopUtilization();
    const started = performance.now();
    await drain(boss, run, cache, client);
    const drained = performance.now();
    const cpu = process.cpuUsage(cpuBefore);
    const elu = performance.eventLoopUtilization(eluBefore);
    await client.close();
    if (failure !== undefined) throw failure;
    return {
      perSecond: run.count / ((drained - started) / 1000),
      writeDeliverPerSecond: run.count / ((drained - writeStarted) / 1000),
      enqueuePerSecond: run.count / ((written - writeStarted) / 1000),
      cpuUs: (cpu.user + cpu.system) / run.count,
      mainUs: (elu.active * 1000) / run.count,
    };
  } finally {
    await boss.stop({ graceful: false, wait: true }).catch(() => undefined);
    await pool.close();
    await dropSchema(run.url, schema);
    await dropSchema(run.url, `${schema}_boss`);
  }
}

/** Fetches, sends and completes until `run.count` jobs are completed, their `complete` resolved (see the module header). */
async function drain(boss: PgBoss, run: PgBossRun, cache: EndpointCache, client: WebhookHttpClient): Promise<void> {
  let inFlight = 0;
  let completed = 0;
  let finished: string[] = [];
  let completing: Promise<void> | null = null;
  let failure: Error | undefined;
  const fail = (err: unknown) => (failure ??= err instanceof Error ? err : new Error(String(err)));
  /** Counts the events the fetch loop waits for (a slot freed, a group completed), so none is missed during a fetch. */
  let events = 0;
  let wake: (() => void) | null = null;
  const nudge = () => {
    events++;
    wake?.();
    wake = null;
  };

  const flush = async (): Promise<void> => {
    while (finished.length > 0) {
      const ids = finished;
      finished = [];
      await boss.complete(QUEUE, ids);
      completed += ids.length;
    }
    completing = null;
    nudge();
  };

  const send = async (job: PgBoss.Job<NewJob>): Promise<void> => {
    const data = job.data;
    const now = Date.now();
    const entry = cache.fresh(data.endpointId, now) ?? (await cache.load(data.endpointId, now));
    if (entry.url === null) throw new Error(`endpoint ${data.endpointId} is gone`);
    const body = JSON.stringify(data.payload);
    const headers = signWithKeys({ id: data.id, timestamp: Math.floor(now / 1000), body, keys: entry.keys });
    const res = await client.post(entry.url, { ...headers }, body);
    if (res.status !== 200) throw new Error(`pg-boss POST got ${res.status ?? res.error?.message}`);
    finished.push(job.id);
    completing ??= flush().catch((err: unknown) => {
      fail(err);
      nudge();
    });
  };

  while (completed < run.count) {
    if (failure !== undefined) throw failure;
    const seen = events;
    const room = run.concurrency - inFlight;
    const jobs = room > 0 ? await boss.fetch<NewJob>(QUEUE, { batchSize: room }) : [];
    for (const job of jobs) {
      inFlight++;
      void send(job)
        .catch(fail)
        .finally(() => {
          inFlight--;
          nudge();
        });
    }
    if (jobs.length === 0 && events === seen) await new Promise<void>((resolve) => (wake = resolve));
  }
}
