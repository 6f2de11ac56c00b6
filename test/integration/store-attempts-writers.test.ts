// The attempt log with several writers on one PostgreSQL store (instances recording attempts of the same
// endpoint at once): no writer overwrites another's pages, and old pages still go.
import { afterAll, describe, expect, it } from 'vitest';
import { AttemptLog, type AttemptRecord } from '../../src/store/attempts.ts';
import { PgKv } from '../../src/store/postgres/kv.ts';
import { freshPgPool, type TestPgPool } from '../support/postgres.ts';

const pools: TestPgPool[] = [];
afterAll(async () => {
  for (const p of pools) await p.drop();
});

const record = (jobId: string, at: number): AttemptRecord => ({ jobId, endpointId: 'ep', at, attempt: 1, status: 200, durationMs: 1 });

async function write(log: AttemptLog, kv: PgKv, records: AttemptRecord[]): Promise<void> {
  await log.ready(['ep']);
  await kv.batch(log.pageOps('ep', records));
  log.written();
  await log.idle();
}

describe('attempt log: several writers', () => {
  it('two instances numbering from the same page keep both their records', async () => {
    const pool = await freshPgPool('attempts_writers');
    pools.push(pool);
    const kv = new PgKv(pool);
    const a = new AttemptLog(kv, 100, 'node-a');
    const b = new AttemptLog(kv, 100, 'node-b');
    await a.ready(['ep']);
    await b.ready(['ep']);
    // Both start at number 0: without their ids in the keys, the second page would replace the first.
    await write(a, kv, [record('job_a1', 1), record('job_a2', 2)]);
    await write(b, kv, [record('job_b1', 3)]);
    const listed = await new AttemptLog(kv, 100).list('ep');
    expect(listed.map((r) => r.jobId).sort()).toEqual(['job_a1', 'job_a2', 'job_b1']);
  });

  it("a writer that fell behind numbers from the others' newest page again after a second; the newest records stay", async () => {
    const pool = await freshPgPool('attempts_trim');
    pools.push(pool);
    const kv = new PgKv(pool);
    const keep = 4;
    const busy = new AttemptLog(kv, keep, 'busy');
    let clock = 0;
    const quiet = new AttemptLog(kv, keep, 'quiet', () => clock);
    await quiet.ready(['ep']);
    for (let i = 0; i < 300; i++) await write(busy, kv, [record(`busy_${i}`, i)]);
    // A second later the quiet one numbers from the busy one's newest page, and removes what is old for both.
    clock += 1_000;
    await write(quiet, kv, [record('quiet_1', 1_000), record('quiet_2', 1_001), record('quiet_3', 1_002)]);
    await write(quiet, kv, [record('quiet_4', 1_003)]);
    const newest = await new AttemptLog(kv, keep).list('ep', { limit: 2 });
    expect(newest.map((r) => r.jobId)).toEqual(['quiet_4', 'quiet_3']);
    const left = await kv.space('attempts').keys({});
    // Pages older than the bound went, whichever writer wrote them.
    expect(left.length).toBeLessThan(300);
  });
});
