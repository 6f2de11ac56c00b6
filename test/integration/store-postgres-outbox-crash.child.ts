// Child process of store-postgres-outbox.test.ts: on the schema it is given, enqueues numbered batches of
// 100 jobs plus a marker (the caller's extra op, in the same transaction) and, at the same time, claims
// due jobs and completes them with an attempt record, printing `e <batch>` for each committed batch and
// `c <jobId>` for each completion, until killed.
import { Registry } from 'prom-client';
import { createLogger } from '../../src/runtime/log.ts';
import { PgKv } from '../../src/store/postgres/kv.ts';
import { PgOutbox } from '../../src/store/postgres/outbox.ts';
import { openPgPool } from '../../src/store/postgres/pool.ts';
import { jobsFor } from '../support/jobs.ts';

const [url, schema] = process.argv.slice(2) as [string, string];
const pool = await openPgPool({ url, schema, logger: createLogger({ level: 'silent' }), registry: new Registry() });
const kv = new PgKv(pool);
// Every attempt kept, so a completed job is known by its record.
const outbox = await PgOutbox.open(pool, kv, { owner: 'crash-child', attemptsPerEndpoint: 999_999 });

async function enqueue(): Promise<never> {
  for (let b = 0; ; b++) {
    const jobs = jobsFor('ep_a', 100, `b${b}`).map((j, i) => ({ ...j, id: `msg_b${b}_j${i}`, endpointId: `ep_${i % 7}` }));
    await outbox.enqueueBatch(jobs, [{ type: 'put', space: 'test-markers', key: String(b).padStart(8, '0'), value: b }]);
    process.stdout.write(`e ${b}\n`);
  }
}

async function complete(): Promise<never> {
  for (;;) {
    const due = await outbox.due(Date.now(), 60);
    await Promise.all(
      due.map(async (job) => {
        const done = await outbox.complete(job, {
          jobId: job.id,
          endpointId: job.endpointId,
          at: Date.now(),
          attempt: 1,
          status: 200,
          durationMs: 1,
        });
        if (done) process.stdout.write(`c ${job.id}\n`);
      }),
    );
    if (due.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

await Promise.all([enqueue(), complete()]);
