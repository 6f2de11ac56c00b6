// The outbox keeps the order of one (subscription, log): a job that `follows` another is held, not due,
// while that one is in the outbox (pending or retrying), and is due once it is completed or
// dead-lettered, in the batch that deletes it; a dead letter so followed is superseded and its replay
// refused. Everything on a real LevelDB directory, across reopens.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { ERROR_CATALOG } from '../../src/errors.ts';
import { openDb, type Db } from '../../src/store/level/db.ts';
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
  const dir = await mkdtemp(join(tmpdir(), 'ethhook-outbox-order-'));
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

/** A job to ep_a; `follows` names the job it must wait for. */
function job(id: string, follows?: string, endpointId = 'ep_a'): NewJob {
  return newJob(id, endpointId, follows === undefined ? {} : { follows }, T0);
}

async function dueIds(outbox: LevelOutbox): Promise<string[]> {
  return (await outbox.due(clock + 1e9, 1_000)).map((j) => j.id).sort();
}

describe('a job that follows one in the outbox', () => {
  it('is held, not due, until that one completes; then due at once, in the same write', async () => {
    const { db } = await freshDb();
    const outbox = await LevelOutbox.open(new LevelKv(db), { now });
    let woken = 0;
    outbox.onEnqueue((n) => (woken += n));
    await outbox.enqueueBatch([job('msg_created'), job('msg_other')]);
    const result = await outbox.enqueueBatch([job('msg_removed', 'msg_created')]);
    expect(result).toEqual({ enqueued: 1, duplicates: 0 });
    expect(await dueIds(outbox)).toEqual(['msg_created', 'msg_other']);
    expect(outbox.depth()).toBe(3);
    expect(await outbox.get('msg_removed')).toMatchObject({ follows: 'msg_created', attempt: 0 });
    // Enqueued again while held: a duplicate, still held.
    expect(await outbox.enqueueBatch([job('msg_removed', 'msg_created')])).toEqual({ enqueued: 0, duplicates: 1 });

    // Retrying the creation does not release it.
    await outbox.reschedule({ id: 'msg_created' }, T0 + 10);
    expect(await dueIds(outbox)).toEqual(['msg_created', 'msg_other']);
    await Promise.resolve();
    woken = 0;
    expect(await outbox.complete({ id: 'msg_created' })).toBe(true);
    expect(await dueIds(outbox)).toEqual(['msg_other', 'msg_removed']);
    expect(outbox.depth()).toBe(2);
    await Promise.resolve();
    expect(woken).toBe(1);
    expect(await outbox.nextDueAt()).toBe(T0);
  });

  it('is due at once when what it follows already left, or never was in the outbox', async () => {
    const { db } = await freshDb();
    const outbox = await LevelOutbox.open(new LevelKv(db), { now });
    await outbox.enqueueBatch([job('msg_created')]);
    await outbox.complete({ id: 'msg_created' });
    await outbox.enqueueBatch([job('msg_removed', 'msg_created'), job('msg_orphan', 'msg_never')]);
    expect(await dueIds(outbox)).toEqual(['msg_orphan', 'msg_removed']);
  });

  it('waits for a job enqueued before it in the same batch, and a chain waits link by link', async () => {
    const { db } = await freshDb();
    const outbox = await LevelOutbox.open(new LevelKv(db), { now });
    // created (generation 0), its removal, the creation of generation 1, its removal.
    await outbox.enqueueBatch([job('msg_c0'), job('msg_r0', 'msg_c0')]);
    await outbox.enqueueBatch([job('msg_c1', 'msg_r0')]);
    await outbox.enqueueBatch([job('msg_r1', 'msg_c1')]);
    const order: string[] = [];
    for (let i = 0; i < 4; i++) {
      const due = await outbox.due(clock + 1e9, 10);
      expect(due).toHaveLength(1);
      order.push(due[0]!.id);
      await outbox.complete(due[0]!);
    }
    expect(order).toEqual(['msg_c0', 'msg_r0', 'msg_c1', 'msg_r1']);
    expect(outbox.depth()).toBe(0);
  });

  it('stays held across a reopen, counted in the depth, and is released after it', async () => {
    const { db, dir } = await freshDb();
    let outbox = await LevelOutbox.open(new LevelKv(db), { now });
    await outbox.enqueueBatch([job('msg_created'), job('msg_removed', 'msg_created'), job('msg_other', undefined, 'ep_b')]);
    await outbox.idle();
    await db.close();
    const reopened = await openDb(dir);
    dbs.push(reopened);
    outbox = await LevelOutbox.open(new LevelKv(reopened), { now });
    expect(outbox.depth()).toBe(3);
    expect(await dueIds(outbox)).toEqual(['msg_created', 'msg_other']);
    await outbox.complete({ id: 'msg_created' });
    expect(await dueIds(outbox)).toEqual(['msg_other', 'msg_removed']);
    expect(outbox.depth()).toBe(2);
  });
});

describe('dead letters and their followers', () => {
  it('a follower held behind a job that dies is released, and the dead letter superseded: its replay is refused', async () => {
    const { db } = await freshDb();
    const outbox = await LevelOutbox.open(new LevelKv(db), { now });
    await outbox.enqueueBatch([job('msg_created'), job('msg_removed', 'msg_created')]);
    expect(await outbox.deadLetter({ id: 'msg_created' }, 'retries exhausted')).toBe(true);
    expect(await dueIds(outbox)).toEqual(['msg_removed']);
    expect(await outbox.getDeadLetter('msg_created')).toMatchObject({ supersededBy: 'msg_removed' });
    await expect(outbox.replayDeadLetter('msg_created')).rejects.toMatchObject({ code: 'ETHHOOK_ERR_DEAD_LETTER_SUPERSEDED' });
    expect(ERROR_CATALOG.find((e) => e.code === 'ETHHOOK_ERR_DEAD_LETTER_SUPERSEDED')?.httpStatus).toBe(409);
    expect(await outbox.replayAll({ endpointId: 'ep_a' })).toBe(0);
    expect(outbox.deadLetterCount()).toBe(1);
    expect(await dueIds(outbox)).toEqual(['msg_removed']);
  });

  it('a follower enqueued after its job died is due at once and supersedes the dead letter; a dead letter not followed replays', async () => {
    const { db } = await freshDb();
    const outbox = await LevelOutbox.open(new LevelKv(db), { now });
    await outbox.enqueueBatch([job('msg_c1'), job('msg_c2')]);
    await outbox.deadLetter({ id: 'msg_c1' }, 'HTTP 400');
    await outbox.deadLetter({ id: 'msg_c2' }, 'HTTP 400');
    await outbox.enqueueBatch([job('msg_r1', 'msg_c1')]);
    expect(await dueIds(outbox)).toEqual(['msg_r1']);
    expect(await outbox.getDeadLetter('msg_c1')).toMatchObject({ supersededBy: 'msg_r1', reason: 'HTTP 400' });
    expect((await outbox.getDeadLetter('msg_c2'))?.supersededBy).toBeUndefined();
    expect(await outbox.replayAll({ endpointId: 'ep_a' })).toBe(1);
    expect(await dueIds(outbox)).toEqual(['msg_c2', 'msg_r1']);
    expect((await outbox.listDeadLetters()).map((d) => d.id)).toEqual(['msg_c1']);
  });
});

describe('enqueues of followers racing with the writes of what they follow', () => {
  it('a follower is never held behind a job already deleted, and never due before it is', async () => {
    const { db } = await freshDb();
    const outbox = await LevelOutbox.open(new LevelKv(db), { now });
    const n = 200;
    const ids = Array.from({ length: n }, (_, i) => `msg_c${String(i).padStart(3, '0')}`);
    await outbox.enqueueBatch(ids.map((id) => job(id)));
    const firsts = await outbox.due(clock, n);
    // Every completion and every follower's enqueue in flight at once, interleaved.
    const writes: Array<Promise<unknown>> = [];
    for (let i = 0; i < n; i++) {
      writes.push(outbox.complete(firsts[i]!));
      writes.push(outbox.enqueueBatch([job(`msg_r${String(i).padStart(3, '0')}`, ids[i])]));
    }
    await Promise.all(writes);
    await outbox.idle();
    expect(await outbox.due(clock + 1e9, 1_000)).toHaveLength(n);
    expect(outbox.depth()).toBe(n);
  });
});

describe('property: any interleaving of enqueues and outcomes keeps each chain in order', () => {
  // Chains of jobs c0 <- r0 <- c1 <- r1 (each follows the one before), on a few logs; a model of what
  // is in the outbox says which jobs may be due; the outbox must hand out exactly the ones it allows.
  type Step =
    | { kind: 'enqueue'; chain: number }
    | { kind: 'outcome'; pick: number; outcome: 'complete' | 'dead' | 'retry' }
    | { kind: 'replay'; pick: number };
  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.record({ kind: fc.constant('enqueue' as const), chain: fc.nat(2) }),
    fc.record({
      kind: fc.constant('outcome' as const),
      pick: fc.nat(),
      outcome: fc.constantFrom('complete' as const, 'dead' as const, 'retry' as const),
    }),
    fc.record({ kind: fc.constant('replay' as const), pick: fc.nat() }),
  );

  it('due jobs are exactly those whose predecessor is not in the outbox; replays never reorder', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), async (steps) => {
        const { db } = await freshDb();
        const outbox = await LevelOutbox.open(new LevelKv(db), { now });
        const links = ['c0', 'r0', 'c1', 'r1'];
        const next = [0, 0, 0];
        const idOf = (chain: number, link: number) => `msg_${chain}_${links[link]}`;
        const pending = new Set<string>();
        const dead = new Set<string>();
        const sent: string[] = [];
        const predecessor = new Map<string, string>();
        for (const s of steps) {
          if (s.kind === 'enqueue') {
            const link = next[s.chain]!;
            if (link >= links.length) continue;
            next[s.chain] = link + 1;
            const id = idOf(s.chain, link);
            const follows = link === 0 ? undefined : idOf(s.chain, link - 1);
            if (follows !== undefined) predecessor.set(id, follows);
            await outbox.enqueueBatch([job(id, follows)]);
            pending.add(id);
          } else if (s.kind === 'outcome') {
            const due = await outbox.due(clock + 1e9, 100);
            // The model: due = pending whose predecessor is not pending.
            const allowed = [...pending].filter((id) => !pending.has(predecessor.get(id) ?? '')).sort();
            expect(due.map((j) => j.id).sort()).toEqual(allowed);
            if (due.length === 0) continue;
            const j = due[s.pick % due.length]!;
            if (s.outcome === 'retry') {
              await outbox.reschedule(j, clock + 1);
              continue;
            }
            sent.push(j.id);
            if (s.outcome === 'complete') await outbox.complete(j);
            else {
              await outbox.deadLetter(j, 'test');
              dead.add(j.id);
            }
            pending.delete(j.id);
          } else {
            const letters = [...dead].sort();
            if (letters.length === 0) continue;
            const id = letters[s.pick % letters.length]!;
            const chain = Number(id.split('_')[1]);
            const link = links.indexOf(id.split('_')[2]!);
            // A dead letter whose follower was enqueued is superseded: refused, and it stays.
            const followed = next[chain]! > link + 1;
            if (followed) {
              await expect(outbox.replayDeadLetter(id)).rejects.toMatchObject({ code: 'ETHHOOK_ERR_DEAD_LETTER_SUPERSEDED' });
            } else {
              await outbox.replayDeadLetter(id);
              dead.delete(id);
              pending.add(id);
            }
          }
        }
        expect(outbox.depth()).toBe(pending.size);
        // What reached the receiver, chain by chain, is in chain order.
        for (let chain = 0; chain < 3; chain++) {
          const mine = sent.filter((id) => id.startsWith(`msg_${chain}_`)).map((id) => links.indexOf(id.split('_')[2]!));
          for (let i = 1; i < mine.length; i++) expect(mine[i]!).toBeGreaterThanOrEqual(mine[i - 1]!);
        }
        await outbox.idle();
        await db.close();
      }),
      { numRuns: 60 },
    );
  });
});
