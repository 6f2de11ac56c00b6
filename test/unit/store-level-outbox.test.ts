// The LevelDB outbox's own workings, on a real LevelDB directory: the jobs remembered as stored, one
// batch per group commit, the due window over a backlog larger than it, the webhook body kept in the
// job record. What every outbox does is test/contract/outbox.contract.ts.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { openDb, sublevel, type Db } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import { type NewJob } from '../../src/store/outbox/job.ts';
import { LevelOutbox } from '../../src/store/level/outbox/outbox.ts';
import { newJob } from '../support/jobs.ts';

const T0 = 1_700_000_000_000;
let clock = T0;
const now = () => clock;

const dirs: string[] = [];
const dbs: Db[] = [];
async function freshDb(): Promise<{ db: Db; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'ethhook-outbox-'));
  dirs.push(dir);
  const db = await openDb(dir);
  dbs.push(db);
  return { db, dir };
}
afterAll(async () => {
  for (const db of dbs) if (db.status === 'open') await db.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
beforeEach(() => {
  clock = T0;
});

/** A job seen at T0 - 5, as the tests below assume. */
function job(id: string, endpointId = 'ep_a', extra: Partial<NewJob> = {}): NewJob {
  return newJob(id, endpointId, { eventSeenAt: T0 - 5, ...extra }, T0);
}

describe('remembered jobs', () => {
  // Jobs are remembered as stored up to a bound; a write leaves a stale entry that the lookups skip and
  // that is swept out when the bound is reached. Whatever is remembered or not, answers are the same.
  it('stay right past the bound: stale entries never answer, a full map is swept, jobs beyond it are read', async () => {
    const { db } = await freshDb();
    const outbox = await LevelOutbox.open(new LevelKv(db), { now, rememberAtMost: 4 });
    await outbox.enqueueBatch(['msg_a', 'msg_b', 'msg_c', 'msg_d'].map((id) => job(id)));
    const first = await outbox.due(T0, 10);
    expect(first.map((j) => j.id)).toEqual(['msg_a', 'msg_b', 'msg_c', 'msg_d']);
    await Promise.all([outbox.completeWithGroup(first[0]!), outbox.complete(first[1]!)]);
    // Stale entries: by id or by object, a delivered job is gone.
    expect(await outbox.complete('msg_a')).toBe(false);
    expect(await outbox.complete(first[1]!)).toBe(false);
    expect(await outbox.reschedule('msg_a', T0)).toBeUndefined();
    // The map is full (2 live, 2 stale): the next jobs sweep it, two fit, the third is read when due.
    await outbox.enqueueBatch(['msg_e', 'msg_f', 'msg_g'].map((id) => job(id)));
    const next = await outbox.due(T0, 10);
    expect(next.map((j) => j.id)).toEqual(['msg_c', 'msg_d', 'msg_e', 'msg_f', 'msg_g']);
    const moved = await outbox.reschedule(next[4]!, T0 + 5);
    expect(moved).toMatchObject({ id: 'msg_g', attempt: 1, nextAttemptAt: T0 + 5 });
    // The old object of a rescheduled job is no longer the stored one: its id resolves to the new one.
    expect(await outbox.complete(next[4]!)).toBe(true);
    expect(await outbox.complete('msg_g')).toBe(false);
    expect(await outbox.complete('msg_c')).toBe(true);
    await Promise.all(next.slice(1, 4).map((j) => outbox.completeWithGroup(j)));
    expect(outbox.depth()).toBe(0);
    expect(await outbox.due(T0 + 1e9, 10)).toEqual([]);
    expect(await db.sublevel('outbox-jobs').keys().all()).toEqual([]);
  });
});

describe('group commit', () => {
  /** Counts db.batch calls and remembers the keys of every batch once LevelDB has written it. */
  function watchBatches(db: Db) {
    const original = db.batch.bind(db) as unknown as (ops: Array<{ key: string }>) => Promise<void>;
    const seen = { batches: 0, written: new Set<string>(), failNext: false };
    (db as unknown as { batch: (ops: Array<{ key: string }>) => Promise<void> }).batch = (ops) => {
      seen.batches++;
      if (seen.failNext) {
        seen.failNext = false;
        return Promise.reject(new Error('injected batch failure'));
      }
      return original(ops).then(() => {
        for (const op of ops) seen.written.add(op.key);
      });
    };
    return seen;
  }

  it('changes queued while a write is in flight share the next batch; each resolves only once written', async () => {
    const { db } = await freshDb();
    const outbox = await LevelOutbox.open(new LevelKv(db), { now });
    const ids = Array.from({ length: 100 }, (_, i) => `msg_${String(i).padStart(3, '0')}`);
    await outbox.enqueueBatch(ids.map((id) => job(id)));
    const held = await outbox.due(T0, 100);
    const seen = watchBatches(db);
    const acked: string[] = [];
    // Job writes are batched at the root with full keys.
    const jobKey = (id: string) => `${sublevel(db, 'outbox-jobs').prefix}${id}`;
    const complete = (j: (typeof held)[number]) =>
      outbox.complete(j, { jobId: j.id, endpointId: j.endpointId, at: T0, status: 200, durationMs: 1 }).then((ok) => {
        // The durability contract: the job's deletion is written before the caller hears of it.
        expect(seen.written.has(jobKey(j.id))).toBe(true);
        acked.push(j.id);
        return ok;
      });
    const first = complete(held[0]!);
    await new Promise((r) => setImmediate(r)); // the first group is now reading or writing
    const rest = held.slice(1).map(complete);
    expect(await Promise.all([first, ...rest])).toEqual(held.map(() => true));
    expect(seen.batches).toBe(2);
    expect(acked).toHaveLength(100);
    expect(outbox.depth()).toBe(0);
    expect(await outbox.due(T0 + 1e9, 10)).toEqual([]);
    expect(await outbox.attempts.list('ep_a', { limit: 200 })).toHaveLength(100);
  });

  it('a failed batch rejects every change in it and changes nothing', async () => {
    const { db } = await freshDb();
    const outbox = await LevelOutbox.open(new LevelKv(db), { now });
    await outbox.enqueueBatch([job('msg_1'), job('msg_2'), job('msg_3')]);
    const held = await outbox.due(T0, 10);
    const seen = watchBatches(db);
    seen.failNext = true;
    const results = await Promise.allSettled([
      outbox.complete(held[0]!),
      outbox.reschedule(held[1]!, T0 + 50),
      outbox.deadLetter(held[2]!, 'x'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(outbox.depth()).toBe(3);
    expect(outbox.deadLetterCount()).toBe(0);
    expect((await outbox.due(T0, 10)).map((j) => j.id)).toEqual(['msg_1', 'msg_2', 'msg_3']);
    // The writer goes on with the next group.
    expect(await outbox.complete(held[0]!)).toBe(true);
    expect(outbox.depth()).toBe(2);
  });

  it('completeWithGroup: one shared promise per group, settled only once its batch is written, or rejected with it', async () => {
    const { db } = await freshDb();
    const outbox = await LevelOutbox.open(new LevelKv(db), { now });
    const ids = Array.from({ length: 6 }, (_, i) => `msg_g${i}`);
    await outbox.enqueueBatch(ids.map((id) => job(id)));
    const held = await outbox.due(T0, 10);
    const seen = watchBatches(db);
    const record = (j: (typeof held)[number]) => ({ jobId: j.id, endpointId: j.endpointId, at: T0, status: 200, durationMs: 1 });
    const jobKey = (id: string) => `${sublevel(db, 'outbox-jobs').prefix}${id}`;
    // Three calls of one synchronous burst: one group, one promise.
    const calls = held.slice(0, 3).map((j) => outbox.completeWithGroup(j, record(j)));
    expect(calls[1]).toBe(calls[0]);
    expect(calls[2]).toBe(calls[0]);
    await calls[0];
    // The durability contract: the deletions are written before the callers hear of them.
    for (const j of held.slice(0, 3)) expect(seen.written.has(jobKey(j.id))).toBe(true);
    expect(outbox.depth()).toBe(3);
    expect((await outbox.attempts.list('ep_a')).map((r) => r.jobId).sort()).toEqual(
      held
        .slice(0, 3)
        .map((j) => j.id)
        .sort(),
    );
    // A failed batch rejects the group's promise, and changes nothing.
    seen.failNext = true;
    const failed = held.slice(3).map((j) => outbox.completeWithGroup(j, record(j)));
    await expect(failed[0]).rejects.toThrow('injected batch failure');
    expect(outbox.depth()).toBe(3);
    expect((await outbox.due(T0, 10)).map((j) => j.id)).toEqual(held.slice(3).map((j) => j.id));
    // A bad record rejects its own call; the next group goes on.
    await expect(outbox.completeWithGroup(held[3]!, { ...record(held[3]!), durationMs: -1 })).rejects.toMatchObject({
      code: 'ETHHOOK_ERR_INVALID_INPUT',
    });
    await outbox.completeWithGroup(held[4]!, record(held[4]!));
    expect(outbox.depth()).toBe(2);
  });
});

describe('due scans over delivered jobs', () => {
  it('start past the delivered front of the index, yet see every job written before it since', async () => {
    const { db } = await freshDb();
    const outbox = await LevelOutbox.open(new LevelKv(db), { now });
    const ids = Array.from({ length: 50 }, (_, i) => `msg_${String(i).padStart(3, '0')}`);
    await outbox.enqueueBatch(ids.map((id, i) => job(id, 'ep_a', { nextAttemptAt: T0 + i })));
    const front = await outbox.due(T0 + 1000, 40);
    await Promise.all(front.map((j) => outbox.complete(j)));
    expect((await outbox.due(T0 + 1000, 100)).map((j) => j.id)).toEqual(ids.slice(40));
    // Behind the remembered start: a new job, a rescheduled one, a postponed one, a replayed one.
    await outbox.enqueueBatch([job('msg_early', 'ep_a', { nextAttemptAt: T0 - 1000 })]);
    await outbox.reschedule('msg_045', T0 - 2000);
    await outbox.postpone('msg_046', T0 - 3000);
    await outbox.deadLetter('msg_047', 'x');
    clock = T0 - 4000;
    await outbox.replayDeadLetter('msg_047');
    expect((await outbox.due(T0 - 1000, 100)).map((j) => j.id)).toEqual(['msg_047', 'msg_046', 'msg_045', 'msg_early']);
    expect(await outbox.nextDueAt()).toBe(T0 - 4000);
    expect(await outbox.due(T0, 0)).toEqual([]);
    expect((await outbox.due(T0 + 1000, 100)).length).toBe(11);
  });

  it('a scan that read before a write landed does not move the start past the written key', async () => {
    const { db } = await freshDb();
    const outbox = await LevelOutbox.open(new LevelKv(db), { now });
    await outbox.enqueueBatch([job('msg_b', 'ep_a', { nextAttemptAt: T0 + 10 }), job('msg_c', 'ep_a', { nextAttemptAt: T0 + 20 })]);
    // Hold every read of the due index after it has read, until `release`: the write lands in between.
    type Keys = { nextv: (n: number) => Promise<string[]>; all: () => Promise<string[]> };
    const index = (outbox as unknown as { dueIndex: { keys: (o: object) => Keys } }).dueIndex;
    const keys = index.keys.bind(index);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    index.keys = (options) => {
      const it = keys(options);
      const [nextv, all] = [it.nextv.bind(it), it.all.bind(it)];
      it.nextv = async (n) => nextv(n).then(async (got) => (await gate, got));
      it.all = async () => all().then(async (got) => (await gate, got));
      return it;
    };
    const scan = outbox.due(T0 + 100, 10);
    const next = outbox.nextDueAt();
    await outbox.enqueueBatch([job('msg_a', 'ep_a', { nextAttemptAt: T0 + 5 })]);
    index.keys = keys;
    release();
    expect((await scan).map((j) => j.id)).toEqual(['msg_b', 'msg_c']);
    expect(await next).toBe(T0 + 10);
    expect((await outbox.due(T0 + 100, 10)).map((j) => j.id)).toEqual(['msg_a', 'msg_b', 'msg_c']);
    expect(await outbox.nextDueAt()).toBe(T0 + 5);
  });
});

describe('a backlog larger than the in-memory due window', () => {
  // The window holds 4 keys here: due() and nextDueAt() must read on from LevelDB, in due order,
  // while jobs are completed and rescheduled around it, and after a reopen.
  it('hands out every due job in order across refills, reschedules and a reopen', async () => {
    const { db } = await freshDb();
    let outbox = await LevelOutbox.open(new LevelKv(db), { now, dueWindow: 4 });
    const ids = Array.from({ length: 30 }, (_, i) => `msg_${String(i).padStart(2, '0')}`);
    await outbox.enqueueBatch(ids.map((id, i) => job(id, 'ep_a', { nextAttemptAt: T0 + i })));
    expect(await outbox.nextDueAt()).toBe(T0);

    const seen: string[] = [];
    const taken = new Set<string>();
    for (let round = 0; round < 10 && seen.length < 30; round++) {
      const due = await outbox.due(T0 + 100, 3, { exclude: taken });
      for (const j of due) {
        seen.push(j.id);
        taken.add(j.id);
      }
      // Settle the first of each round at once; the others stay in flight (excluded) for a while.
      if (due[0]) {
        await outbox.complete(due[0]);
        taken.delete(due[0].id);
      }
    }
    expect(seen).toEqual(ids);

    // Everything still pending goes far ahead; only the later of them are due by then.
    const pending = ids.filter((id) => taken.has(id));
    for (const [i, id] of pending.entries()) await outbox.reschedule(id, T0 + 1_000 + i);
    expect(await outbox.due(T0 + 999, 10)).toEqual([]);
    expect(await outbox.nextDueAt()).toBe(T0 + 1_000);

    outbox = await LevelOutbox.open(new LevelKv(db), { now, dueWindow: 4 });
    expect(outbox.depth()).toBe(pending.length);
    const after: string[] = [];
    for (let i = 0; i < 10; i++) {
      const due = await outbox.due(T0 + 5_000, 4);
      if (due.length === 0) break;
      for (const j of due) {
        after.push(j.id);
        await outbox.complete(j);
      }
    }
    expect(after).toEqual(pending);
    expect(await outbox.nextDueAt()).toBeUndefined();
    expect(outbox.depth()).toBe(0);
  });
});

describe('skipping endpoints that cannot take more', () => {
  // Jobs of a blocked endpoint fill the front of the index; the other endpoint's jobs behind them are
  // still found, from the window, from refills (the window holds 4 keys) and from a reopened outbox,
  // whose window is read back from LevelDB with each job's endpoint.
  it("finds the jobs of other endpoints behind a blocked endpoint's backlog, before and after a reopen", async () => {
    const { db } = await freshDb();
    let outbox = await LevelOutbox.open(new LevelKv(db), { now, dueWindow: 4 });
    const slow = Array.from({ length: 20 }, (_, i) => job(`msg_s${String(i).padStart(2, '0')}`, 'ep_slow', { nextAttemptAt: T0 + i }));
    const fast = Array.from({ length: 3 }, (_, i) => job(`msg_f${i}`, 'ep_fast', { nextAttemptAt: T0 + 100 + i }));
    await outbox.enqueueBatch([...slow, ...fast]);
    const skip = new Set(['ep_slow']);
    expect((await outbox.due(T0 + 200, 10, { skipEndpoints: skip })).map((j) => j.id)).toEqual(['msg_f0', 'msg_f1', 'msg_f2']);
    expect((await outbox.due(T0 + 200, 2)).map((j) => j.id)).toEqual(['msg_s00', 'msg_s01']);
    outbox = await LevelOutbox.open(new LevelKv(db), { now, dueWindow: 4 });
    expect((await outbox.due(T0 + 200, 2, { skipEndpoints: skip })).map((j) => j.id)).toEqual(['msg_f0', 'msg_f1']);
    expect((await outbox.due(T0 + 200, 5, { skipEndpoints: new Set(['ep_fast']) })).map((j) => j.endpointId)).toEqual(
      Array(5).fill('ep_slow'),
    );
  });
});

describe('the webhook body', () => {
  // The payload is serialized and encoded once, with the job's record: the stored record is exactly the
  // job's JSON (UTF-8, multi-byte characters included), and bodyOf serves the payload's JSON as those
  // bytes, the same ones at every call, through a reschedule and for a job read back after a reopen.
  // A job record written by something other than the outbox (payload not last) has no body at its end:
  // the body served is still exactly the payload's JSON.
  it('serves the payload as the body of a record whose payload is not its last field', async () => {
    const { db } = await freshDb();
    let outbox = await LevelOutbox.open(new LevelKv(db), { now });
    const j = job('msg_mid');
    await outbox.enqueueBatch([j]);
    const stored = await outbox.get('msg_mid');
    const { id, payload, ...rest } = stored!;
    await sublevel<string>(db, 'outbox-jobs').put('msg_mid', JSON.stringify({ id, payload, ...rest }), { valueEncoding: 'utf8' });
    outbox = await LevelOutbox.open(new LevelKv(db), { now, rememberAtMost: 1 });
    const [read] = await outbox.due(T0 + 10, 1);
    expect(read).toMatchObject({ id: 'msg_mid', payload: j.payload });
    expect(outbox.bodyOf(read!).toString('utf8')).toBe(JSON.stringify(j.payload));
  });

  it('is stored within the job record and served by bodyOf, before and after a reopen', async () => {
    const { db } = await freshDb();
    let outbox = await LevelOutbox.open(new LevelKv(db), { now });
    const j = job('msg_body');
    j.payload.data.subscriptionId = 'sub_é€😀';
    await outbox.enqueueBatch([j]);
    const expected = JSON.stringify(j.payload);
    const [due] = await outbox.due(T0, 1);
    const body = outbox.bodyOf(due!);
    expect(body.toString('utf8')).toBe(expected);
    expect(body.length).toBe(Buffer.byteLength(expected));
    expect(outbox.bodyOf(due!)).toBe(body);
    const raw = await sublevel<string>(db, 'outbox-jobs').get('msg_body', { valueEncoding: 'utf8' });
    expect(JSON.parse(raw!)).toEqual(await outbox.get('msg_body'));
    expect(await outbox.get('msg_body')).toMatchObject({ id: 'msg_body', attempt: 0, payload: j.payload });

    const moved = await outbox.reschedule(due!, T0 + 10);
    expect(outbox.bodyOf(moved!)).toBe(body);
    outbox = await LevelOutbox.open(new LevelKv(db), { now });
    const [again] = await outbox.due(T0 + 10, 1);
    expect(again).toMatchObject({ id: 'msg_body', attempt: 1, payload: j.payload });
    const read = outbox.bodyOf(again!);
    expect(read.toString('utf8')).toBe(expected);
    expect(outbox.bodyOf(again!)).toBe(read);
  });
});
