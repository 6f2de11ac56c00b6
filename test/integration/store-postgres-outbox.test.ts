// The PostgreSQL outbox where it differs from LevelDB's: several instances (owners) on one schema claim
// due jobs without ever sharing one while a claim holds; an expired claim passes the job on; a change
// from an instance that lost its claim does nothing; a group whose transaction fails mid-way rejects
// every call and changes nothing; the counts follow the other instances' writes; a child killed with
// SIGKILL while enqueuing and completing loses nothing. On the run's real PostgreSQL, a schema per pool.
import { spawn } from 'node:child_process';
import { Registry, type Histogram } from 'prom-client';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/runtime/log.ts';
import type { AttemptRecord } from '../../src/store/attempts.ts';
import type { Job } from '../../src/store/outbox/job.ts';
import { PgKv } from '../../src/store/postgres/kv.ts';
import { PgOutbox, type PgOutboxOptions } from '../../src/store/postgres/outbox.ts';
import { openPgPool, type PgPool } from '../../src/store/postgres/pool.ts';
import { jobsFor, newJob } from '../support/jobs.ts';
import { waitFor } from '../support/kernel.ts';
import { freshPgPool, pgAdminUrl, type TestPgPool } from '../support/postgres.ts';

const T0 = 1_700_000_000_000;
const CHILD = new URL('./store-postgres-outbox-crash.child.ts', import.meta.url).pathname;

const schemas: TestPgPool[] = [];
const pools: PgPool[] = [];
let outboxes: PgOutbox[] = [];
afterEach(async () => {
  for (const o of outboxes) await o.close();
  outboxes = [];
});
afterAll(async () => {
  for (const p of pools) await p.close();
  for (const s of schemas) await s.drop();
});

/** A new migrated schema, with its pool and registry (for the operation counts). */
async function freshSchema(name: string): Promise<{ pool: TestPgPool; registry: Registry }> {
  const registry = new Registry();
  const pool = await freshPgPool(name, { registry });
  schemas.push(pool);
  return { pool, registry };
}

/** Another instance's pool on the same schema. */
async function secondPool(schema: string): Promise<PgPool> {
  const pool = await openPgPool({ url: pgAdminUrl(), schema, logger: createLogger({ level: 'silent' }), registry: new Registry() });
  pools.push(pool);
  return pool;
}

async function open(pool: PgPool, owner: string, options: Partial<PgOutboxOptions> = {}): Promise<PgOutbox> {
  const outbox = await PgOutbox.open(pool, new PgKv(pool), { owner, ...options });
  outboxes.push(outbox);
  return outbox;
}

const ids = (jobs: readonly Job[]) => jobs.map((j) => j.id);

function attempt(jobId: string, at = T0): AttemptRecord {
  return { jobId, endpointId: 'ep_a', at, attempt: 1, status: 200, durationMs: 5 };
}

async function commits(registry: Registry): Promise<number> {
  const metric = await (registry.getSingleMetric('store_operation_duration_seconds') as Histogram<'op'>).get();
  return (
    metric.values.find((v) => v.metricName === 'store_operation_duration_seconds_count' && v.labels.op === 'outbox.commit')?.value ?? 0
  );
}

describe('claims shared by instances on one schema', () => {
  it('two instances claiming at once never get the same job while the claim holds, and together get all', async () => {
    const { pool } = await freshSchema('claims');
    const a = await open(pool, 'node-a');
    const b = await open(await secondPool(pool.schema), 'node-b');
    await a.enqueueBatch(jobsFor('ep_a', 150, 'x', T0).map((j) => ({ ...j, nextAttemptAt: T0 })));
    await b.enqueueBatch(jobsFor('ep_b', 150, 'y', T0).map((j) => ({ ...j, nextAttemptAt: T0 })));
    const gotA: string[] = [];
    const gotB: string[] = [];
    for (;;) {
      const [fromA, fromB] = await Promise.all([a.due(T0, 20, { exclude: new Set(gotA) }), b.due(T0, 20, { exclude: new Set(gotB) })]);
      gotA.push(...ids(fromA));
      gotB.push(...ids(fromB));
      if (fromA.length === 0 && fromB.length === 0) break;
    }
    expect(gotA.length).toBeGreaterThan(0);
    expect(gotB.length).toBeGreaterThan(0);
    expect(gotA.filter((id) => gotB.includes(id))).toEqual([]);
    expect(new Set([...gotA, ...gotB]).size).toBe(300);
    expect(gotA.length + gotB.length).toBe(300);
  });

  it('an instance gets its own claimed jobs again (exclude keeps them out), another only once the claim expired', async () => {
    const { pool } = await freshSchema('expiry');
    const a = await open(pool, 'node-a', { claimMs: 1_000 });
    const b = await open(await secondPool(pool.schema), 'node-b', { claimMs: 1_000 });
    await a.enqueueBatch([newJob('msg_1', 'ep_a', { nextAttemptAt: T0 }), newJob('msg_2', 'ep_a', { nextAttemptAt: T0 + 1 })]);
    expect(ids(await a.due(T0 + 1, 10))).toEqual(['msg_1', 'msg_2']);
    expect(ids(await a.due(T0 + 2, 10))).toEqual(['msg_1', 'msg_2']);
    expect(ids(await a.due(T0 + 2, 10, { exclude: new Set(['msg_1']) }))).toEqual(['msg_2']);
    // a's last claims run to T0 + 1002.
    expect(await b.due(T0 + 1_001, 10)).toEqual([]);
    expect(await b.nextDueAt()).toBe(T0 + 1_002);
    expect(await a.nextDueAt()).toBe(T0);
    expect(ids(await b.due(T0 + 1_002, 10))).toEqual(['msg_1', 'msg_2']);
    expect(await a.due(T0 + 1_002, 10)).toEqual([]);
  });

  it('a change from an instance that lost its claim does nothing; a job nobody holds may be changed by any', async () => {
    const { pool } = await freshSchema('lost');
    let clock = T0;
    const now = () => clock;
    const a = await open(pool, 'node-a', { claimMs: 1_000, now });
    const b = await open(await secondPool(pool.schema), 'node-b', { claimMs: 1_000, now });
    await a.enqueueBatch([newJob('msg_1'), newJob('msg_2'), newJob('msg_3')].map((j) => ({ ...j, nextAttemptAt: T0 })));
    const [job1] = await a.due(T0, 1);
    expect(job1!.id).toBe('msg_1');
    clock = T0 + 1_500;
    expect(ids(await b.due(clock, 1))).toEqual(['msg_1']);
    expect(await a.complete(job1!, attempt('msg_1'))).toBe(false);
    expect(await a.reschedule(job1!, clock + 10, attempt('msg_1'))).toBeUndefined();
    expect(await a.postpone(job1!, clock + 10)).toBeUndefined();
    expect(await a.deadLetter(job1!, 'HTTP 400')).toBe(false);
    expect(await b.get('msg_1')).toMatchObject({ attempt: 0, nextAttemptAt: T0 });
    expect(await a.attempts.list('ep_a')).toEqual([]);
    expect(a.depth()).toBe(3);
    expect(a.deadLetterCount()).toBe(0);
    expect(await b.complete('msg_1')).toBe(true);
    // Never claimed: any instance; claimed by a, expired, taken by nobody: still a's to complete.
    expect(await b.complete('msg_2')).toBe(true);
    expect(ids(await a.due(clock, 1))).toEqual(['msg_3']);
    clock += 5_000;
    expect(await a.complete('msg_3')).toBe(true);
    expect(await b.get('msg_3')).toBeUndefined();
  });

  it("completions grouped with one under another instance's claim: that one false, the rest done, every attempt of theirs listed", async () => {
    const { pool } = await freshSchema('mixed');
    const a = await open(pool, 'node-a', { now: () => T0, attemptsPerEndpoint: 3 });
    const b = await open(await secondPool(pool.schema), 'node-b', { now: () => T0 });
    await a.enqueueBatch(['msg_1', 'msg_2', 'msg_3', 'msg_4'].map((id) => newJob(id, 'ep_a', { nextAttemptAt: T0 })));
    expect(ids(await b.due(T0, 1))).toEqual(['msg_1']);
    expect(await a.complete('msg_2', attempt('msg_2'))).toBe(true);
    const results = await Promise.all([
      a.complete('msg_1', attempt('msg_1')),
      a.complete('msg_3', attempt('msg_3')),
      a.complete('msg_4', attempt('msg_4')),
    ]);
    expect(results).toEqual([false, true, true]);
    expect(ids(await b.due(T0, 10))).toEqual(['msg_1']);
    // Kept: the newest 3 records; numbers taken by msg_1's record that was not written would hide msg_2's.
    expect((await a.attempts.list('ep_a')).map((r) => r.jobId).sort()).toEqual(['msg_2', 'msg_3', 'msg_4']);
    expect(a.depth()).toBe(1);
  });

  it('reschedule and postpone let the job go: due at its new time for any instance', async () => {
    const { pool } = await freshSchema('release');
    const a = await open(pool, 'node-a', { now: () => T0 });
    const b = await open(await secondPool(pool.schema), 'node-b', { now: () => T0 });
    await a.enqueueBatch([newJob('msg_1', 'ep_a', { nextAttemptAt: T0 }), newJob('msg_2', 'ep_a', { nextAttemptAt: T0 })]);
    const [job1, job2] = await a.due(T0, 10);
    await a.reschedule(job1!, T0 + 10, attempt('msg_1'));
    await a.postpone(job2!, T0 + 20);
    expect(await b.due(T0 + 9, 10)).toEqual([]);
    expect(ids(await b.due(T0 + 20, 10))).toEqual(['msg_1', 'msg_2']);
    expect(await b.get('msg_1')).toMatchObject({ attempt: 1, nextAttemptAt: T0 + 10 });
    expect(await b.get('msg_2')).toMatchObject({ attempt: 0, nextAttemptAt: T0 + 20 });
  });

  it('a restarted instance takes its claimed jobs back at once', async () => {
    const { pool } = await freshSchema('restart');
    const a = await open(pool, 'node-a');
    await a.enqueueBatch([newJob('msg_1', 'ep_a', { nextAttemptAt: T0 })]);
    expect(ids(await a.due(T0, 10))).toEqual(['msg_1']);
    const b = await open(await secondPool(pool.schema), 'node-b');
    expect(await b.due(T0, 10)).toEqual([]);
    await open(pool, 'node-a');
    expect(ids(await b.due(T0, 10))).toEqual(['msg_1']);
  });

  it('a drained instance (its outbox closed) lets its claims go: another takes them at once', async () => {
    const { pool } = await freshSchema('drain');
    const a = await open(pool, 'node-a');
    await a.enqueueBatch([newJob('msg_1', 'ep_a', { nextAttemptAt: T0 }), newJob('msg_2', 'ep_a', { nextAttemptAt: T0 })]);
    expect(ids(await a.due(T0, 10))).toEqual(['msg_1', 'msg_2']);
    const b = await open(await secondPool(pool.schema), 'node-b');
    expect(await b.due(T0, 10)).toEqual([]);
    await a.close();
    expect(ids(await b.due(T0, 10))).toEqual(['msg_1', 'msg_2']);
  });
});

describe('group commit', () => {
  it('changes queued together are one transaction, applied in call order, each resolved once it committed', async () => {
    const { pool, registry } = await freshSchema('group');
    const outbox = await open(pool, 'node-a', { now: () => T0 });
    await outbox.enqueueBatch([newJob('msg_1'), newJob('msg_2'), newJob('msg_3')].map((j) => ({ ...j, nextAttemptAt: T0 })));
    const before = await commits(registry);
    const results = await Promise.all([
      outbox.reschedule('msg_1', T0 + 5, attempt('msg_1')),
      outbox.postpone('msg_1', T0 + 7),
      outbox.complete('msg_1', attempt('msg_1', T0 + 1)),
      outbox.complete('msg_1'),
      outbox.deadLetter('msg_2', 'HTTP 410', attempt('msg_2')),
      outbox.completeWithGroup('msg_3'),
      outbox.reschedule('msg_gone', T0 + 5),
    ]);
    expect(await commits(registry)).toBe(before + 1);
    expect(results[0]).toMatchObject({ id: 'msg_1', attempt: 1, nextAttemptAt: T0 + 5 });
    expect(results[1]).toMatchObject({ id: 'msg_1', attempt: 1, nextAttemptAt: T0 + 7 });
    expect(results.slice(2)).toEqual([true, false, true, undefined, undefined]);
    expect(await outbox.get('msg_1')).toBeUndefined();
    expect(await outbox.getDeadLetter('msg_2')).toMatchObject({ reason: 'HTTP 410', deadAt: T0, job: { attempt: 1 } });
    expect((await outbox.attempts.list('ep_a')).map((r) => r.jobId).sort()).toEqual(['msg_1', 'msg_1', 'msg_2']);
    expect(outbox.depth()).toBe(0);
    expect(outbox.deadLetterCount()).toBe(1);
  });

  it('a transaction failing mid-group rejects every call in it and changes nothing', async () => {
    const { pool } = await freshSchema('fail');
    const outbox = await open(pool, 'node-a', { now: () => T0 });
    await outbox.enqueueBatch([
      newJob('msg_1', 'ep_a', { nextAttemptAt: T0 }),
      newJob('msg_2', 'ep_a', { nextAttemptAt: T0 }),
      newJob('msg_3', 'ep_a', { nextAttemptAt: T0 }),
      newJob('msg_4', 'ep_a', { nextAttemptAt: T0, follows: 'msg_1' }),
    ]);
    // The dead letter's insert fails, after the followers' release and the deletes ran.
    await pool.run('test', (c) =>
      c.query(`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
               CREATE TRIGGER refuse BEFORE INSERT ON outbox_dead FOR EACH ROW EXECUTE FUNCTION refuse()`),
    );
    const settled = await Promise.allSettled([
      outbox.complete('msg_1', attempt('msg_1')),
      outbox.reschedule('msg_2', T0 + 10, attempt('msg_2')),
      outbox.deadLetter('msg_3', 'HTTP 400'),
      outbox.completeWithGroup('msg_4'),
    ]);
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    expect(String((settled[0] as PromiseRejectedResult).reason)).toContain('refused by the test');
    for (const id of ['msg_1', 'msg_2', 'msg_3', 'msg_4']) expect(await outbox.get(id)).toMatchObject({ attempt: 0, nextAttemptAt: T0 });
    expect(ids(await outbox.due(T0, 10))).toEqual(['msg_1', 'msg_2', 'msg_3']);
    expect(await outbox.listDeadLetters()).toEqual([]);
    expect(await outbox.attempts.list('ep_a')).toEqual([]);
    expect(outbox.depth()).toBe(4);
    expect(outbox.deadLetterCount()).toBe(0);

    await pool.run('test', (c) => c.query('DROP TRIGGER refuse ON outbox_dead'));
    expect(await Promise.all([outbox.complete('msg_1'), outbox.deadLetter('msg_3', 'HTTP 400')])).toEqual([true, true]);
    expect(ids(await outbox.due(T0, 10))).toEqual(['msg_2', 'msg_4']);
    expect(outbox.depth()).toBe(2);
    expect(outbox.deadLetterCount()).toBe(1);
  });
});

describe('order across instances', () => {
  it('a follower enqueued by one instance is held behind the job another completes, and released by it', async () => {
    const { pool } = await freshSchema('order');
    const a = await open(pool, 'node-a', { now: () => T0 });
    const b = await open(await secondPool(pool.schema), 'node-b', { now: () => T0 });
    let woken = 0;
    a.onEnqueue((n) => (woken += n));
    await a.enqueueBatch([newJob('msg_c', 'ep_a', { nextAttemptAt: T0 })]);
    await b.enqueueBatch([newJob('msg_r', 'ep_a', { nextAttemptAt: T0, follows: 'msg_c' })]);
    expect(ids(await a.due(T0, 10))).toEqual(['msg_c']);
    await Promise.resolve();
    woken = 0;
    expect(await a.deadLetter('msg_c', 'HTTP 400')).toBe(true);
    expect(ids(await b.due(T0, 10))).toEqual(['msg_r']);
    await Promise.resolve();
    expect(woken).toBe(1);
    expect(await b.getDeadLetter('msg_c')).toMatchObject({ supersededBy: 'msg_r' });
    await expect(b.replayDeadLetter('msg_c')).rejects.toMatchObject({ code: 'ETHHOOK_ERR_DEAD_LETTER_SUPERSEDED' });
  });

  it('followers enqueued while their jobs complete, from two instances at once, are each due exactly once their job left', async () => {
    const { pool } = await freshSchema('race');
    const a = await open(pool, 'node-a', { now: () => T0 });
    const b = await open(await secondPool(pool.schema), 'node-b', { now: () => T0 });
    const n = 100;
    const firsts = Array.from({ length: n }, (_, i) => newJob(`msg_c${String(i).padStart(3, '0')}`, 'ep_a', { nextAttemptAt: T0 }));
    await a.enqueueBatch(firsts);
    const claimed = await a.due(T0, n);
    expect(claimed).toHaveLength(n);
    const writes: Array<Promise<unknown>> = [];
    for (let i = 0; i < n; i++) {
      writes.push(a.complete(claimed[i]!));
      writes.push(b.enqueueBatch([newJob(`msg_r${String(i).padStart(3, '0')}`, 'ep_a', { nextAttemptAt: T0, follows: firsts[i]!.id })]));
    }
    await Promise.all(writes);
    const due = await b.due(T0, 10 * n);
    expect(due.every((j) => j.id.startsWith('msg_r'))).toBe(true);
    expect(due).toHaveLength(n);
  });
});

describe('statements the pool runs again', () => {
  // The pool runs an operation again when it answered with an error, though its commit may have landed
  // (an error reported after the commit, a connection cut just after it). Here the first group of
  // completions lands and then runs again, finding its job gone: its attempt record stays, and the
  // pages of the groups after it do not overwrite it.
  it('a completion group that landed and ran again keeps its attempt record', async () => {
    const { pool } = await freshSchema('run_again');
    let again = true;
    const twice: PgPool = {
      ...pool,
      run: async (op, fn, options) => {
        if (op === 'outbox.commit' && again) {
          again = false;
          await pool.run(op, fn, options);
        }
        return pool.run(op, fn, options);
      },
    };
    const a = await open(twice, 'node-a');
    await a.enqueueBatch(jobsFor('ep_a', 10, 'x').map((j) => ({ ...j, nextAttemptAt: T0 })));
    const due = await a.due(T0, 10);
    expect(due).toHaveLength(10);
    // The first group (run twice) completes its jobs; its second run finds them gone, so its calls
    // answer false (not counted here), as for a job gone elsewhere. Then one more job, one more page.
    await Promise.all(due.slice(0, 9).map((j) => a.complete(j, attempt(j.id))));
    expect(again).toBe(false);
    expect(await a.complete(due[9]!, attempt(due[9]!.id))).toBe(true);
    for (const j of due) expect(await a.get(j.id)).toBeUndefined();
    const listed = (await a.attempts.list('ep_a')).map((r) => r.jobId).sort();
    expect(listed).toEqual(ids(due).sort());
  });
});

describe('counts and bodies', () => {
  it("depth and the dead-letter count follow another instance's writes (recounted in the background)", async () => {
    const { pool } = await freshSchema('counts');
    const a = await open(pool, 'node-a', { recountEveryMs: 50 });
    const b = await open(await secondPool(pool.schema), 'node-b');
    await b.enqueueBatch(jobsFor('ep_a', 5, 'x'));
    await b.deadLetter('msg_x_0', 'HTTP 400');
    await expect.poll(() => [a.depth(), a.deadLetterCount()]).toEqual([4, 1]);
    expect([b.depth(), b.deadLetterCount()]).toEqual([4, 1]);
  });

  it("an instance that completes another's jobs before its next recount counts zero, not below", async () => {
    const { pool } = await freshSchema('below');
    const a = await open(pool, 'node-a', { now: () => T0, recountEveryMs: 3_600_000 });
    const b = await open(await secondPool(pool.schema), 'node-b', { now: () => T0 });
    await b.enqueueBatch(['msg_1', 'msg_2', 'msg_3'].map((id) => newJob(id, 'ep_a', { nextAttemptAt: T0 })));
    expect(a.depth()).toBe(0);
    expect(ids(await a.due(T0, 10)).sort()).toEqual(['msg_1', 'msg_2', 'msg_3']);
    expect(await Promise.all(['msg_1', 'msg_2'].map((id) => a.complete(id, attempt(id))))).toEqual([true, true]);
    expect(a.depth()).toBe(0);
    expect(b.depth()).toBe(3);
  });

  it('the body is the payload as it was enqueued, byte for byte, on whichever instance reads the job', async () => {
    const { pool } = await freshSchema('body');
    const a = await open(pool, 'node-a');
    const b = await open(await secondPool(pool.schema), 'node-b');
    const job = newJob('msg_1', 'ep_a', { nextAttemptAt: T0 });
    job.payload.data.data = '0x"\\\u00e9\u2028';
    await a.enqueueBatch([job]);
    const expected = Buffer.from(JSON.stringify(job.payload));
    const [read] = await b.due(T0, 1);
    expect(b.bodyOf(read!).equals(expected)).toBe(true);
    expect(b.bodyOf(read!)).toBe(b.bodyOf(read!));
    const rescheduled = await b.reschedule(read!, T0 + 1);
    expect(b.bodyOf((await a.get('msg_1'))!).equals(expected)).toBe(true);
    expect(a.bodyOf(rescheduled!).equals(expected)).toBe(true);
  });

  it('a claimed job whose stored text does not end with its payload (imported as another store wrote it) still has its payload as body', async () => {
    const { pool } = await freshSchema('body_import');
    const a = await open(pool, 'node-a');
    const job = { ...newJob('msg_1', 'ep_a', { nextAttemptAt: T0 }), attempt: 0, createdAt: T0 } as Job;
    const { payload, ...rest } = job;
    const text = JSON.stringify({ payload, ...rest, nested: { payload: 'x' } });
    expect(await a.importJobs([{ job, text, heldBy: undefined }])).toBe(1);
    const [read] = await a.due(T0, 1);
    expect(a.bodyOf(read!).equals(Buffer.from(JSON.stringify(payload)))).toBe(true);
  });
});

/**
 * Runs the child until it has enqueued `minBatches` and completed a job (on a loaded machine its
 * completions may trail its enqueues), then a random few ms more, then SIGKILLs it.
 */
function runAndKill(
  url: string,
  schema: string,
  minBatches: number,
  beforeKill: () => Promise<void>,
): Promise<{ enqueued: number; completed: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, url, schema], { stdio: ['ignore', 'pipe', 'pipe'] });
    let enqueued = -1;
    const completed: string[] = [];
    let killing = false;
    let stderr = '';
    let partial = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        const [kind, value] = line.split(' ');
        if (kind === 'e') enqueued = Number(value);
        else if (kind === 'c') completed.push(value!);
      }
      if (!killing && enqueued >= minBatches && completed.length > 0) {
        killing = true;
        setTimeout(() => void beforeKill().then(() => child.kill('SIGKILL'), reject), Math.floor(Math.random() * 30));
      }
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve({ enqueued, completed });
      else reject(new Error(`child exited with ${code}: ${stderr}`));
    });
  });
}

describe('kill -9 while enqueuing and completing', () => {
  it('every job enqueued is pending or completed (its attempt recorded), never both, never lost; 3 random kills', async () => {
    for (let round = 0; round < 3; round++) {
      const { pool } = await freshSchema(`crash${round}`);
      // The child's connections carry a name of their own (a connection string's application_name
      // wins over the pool's): a transaction it sent before the kill may still commit on the server,
      // so the store is read once none of its backends is left.
      const child = `crash-child-${pool.schema}`;
      const url = new URL(pgAdminUrl());
      url.searchParams.set('application_name', child);
      const sessions = async () =>
        (
          await pool.run('test', (c) =>
            c.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [child]),
          )
        ).rows[0]!.n;
      let named = 0;
      const { enqueued, completed } = await runAndKill(url.toString(), pool.schema, 8 + round * 4, async () => {
        named = await sessions();
      });
      // The name reached the server (else the wait below would pass at once and prove nothing).
      expect(named).toBeGreaterThan(0);
      await waitFor(async () => (await sessions()) === 0, 15_000, "the killed child's backends to end");

      const markers = new Set(
        (await pool.run('test', (c) => c.query<{ value: number }>("SELECT value FROM kv WHERE space = 'test-markers'"))).rows.map(
          (r) => r.value,
        ),
      );
      const pending = new Set((await pool.run('test', (c) => c.query<{ id: string }>('SELECT id FROM outbox_jobs'))).rows.map((r) => r.id));
      const pages = (
        await pool.run('test', (c) => c.query<{ value: { r: Array<[string]> } }>("SELECT value FROM kv WHERE space = 'attempts'"))
      ).rows;
      const done = pages.flatMap((p) => p.value.r.map(([jobId]) => jobId));
      expect(new Set(done).size).toBe(done.length);
      const doneSet = new Set(done);

      for (let b = 0; b <= enqueued; b++) expect(markers.has(b)).toBe(true);
      for (const id of [...pending, ...done]) expect(markers.has(Number(/^msg_b(\d+)_/.exec(id)![1]))).toBe(true);
      // Each job of each committed batch: pending or done, never both (completed twice), never neither (lost).
      const both: string[] = [];
      const neither: string[] = [];
      for (const b of markers) {
        for (let i = 0; i < 100; i++) {
          const id = `msg_b${b}_j${i}`;
          if (pending.has(id) && doneSet.has(id)) both.push(id);
          if (!pending.has(id) && !doneSet.has(id)) neither.push(id);
        }
      }
      expect({ round, both, neither }).toEqual({ round, both: [], neither: [] });
      expect(completed.length).toBeGreaterThan(0);
      for (const id of completed) {
        expect(pending.has(id)).toBe(false);
        expect(doneSet.has(id)).toBe(true);
      }
      const reopened = await open(pool, 'verifier');
      expect(reopened.depth()).toBe(pending.size);
    }
  });
});
