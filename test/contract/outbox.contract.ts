/**
 * The outbox contract (src/store/outbox/contract.ts) as tests every engine runs: enqueue (one atomic
 * write with its extra ops, idempotent by id), due order, reschedule / postpone / complete / dead
 * letter and their answers for jobs already gone, dead-letter listing and replay, counters and attempt
 * records across a reopen, the order of one (subscription, log) (held followers, superseded dead
 * letters), and a model of the whole queue under concurrent changes and reopens.
 *
 * An engine's test file calls `describeOutboxContract(name, open)`:
 * - `open(options)` opens a fresh, empty store (its own LevelDB directory, its own PostgreSQL schema)
 *   and resolves with `{ outbox, kv, reopen, close }`: the outbox on that store (its clock
 *   `options.now`, its attempt log keeping `options.attemptsPerEndpoint` records per endpoint when
 *   given), the key-value engine of the same store (the outbox writes its `extraOps` there);
 * - `reopen()` waits until the outbox is idle, closes this instance and opens the same store again with
 *   the same options, as a restarted node would (the old handles are not used after it);
 * - `close()` waits until the outbox is idle and closes everything `open` opened (the data may go); a
 *   second call does nothing.
 * Every store a test opens is closed after it.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ERROR_CATALOG } from '../../src/errors.ts';
import type { Kv } from '../../src/store/kv.ts';
import type { OutboxStore } from '../../src/store/outbox/contract.ts';
import type { NewJob } from '../../src/store/outbox/job.ts';
import { newJob } from '../support/jobs.ts';
import { MODEL_T0, modelRounds, OutboxModel } from './outbox-model.ts';

export interface OutboxContractOptions {
  /** The outbox's clock (ms). */
  now: () => number;
  /** Attempt records kept per endpoint (the engine's default when absent). */
  attemptsPerEndpoint?: number;
}

export interface OutboxContractStore {
  outbox: OutboxStore;
  kv: Kv;
  reopen(): Promise<OutboxContractStore>;
  close(): Promise<void>;
}

export type OpenOutboxStore = (options: OutboxContractOptions) => Promise<OutboxContractStore>;

const T0 = 1_700_000_000_000;

/** A job seen at T0 - 5, as the tests below assume. */
function job(id: string, endpointId = 'ep_a', extra: Partial<NewJob> = {}): NewJob {
  return newJob(id, endpointId, { eventSeenAt: T0 - 5, ...extra }, T0);
}

/** A job to ep_a; `follows` names the job it must wait for. */
function follower(id: string, follows?: string, endpointId = 'ep_a'): NewJob {
  return newJob(id, endpointId, follows === undefined ? {} : { follows }, T0);
}

export function describeOutboxContract(name: string, open: OpenOutboxStore): void {
  describe(`outbox contract on ${name}`, () => {
    let clock = T0;
    const now = () => clock;
    const opened: OutboxContractStore[] = [];
    async function fresh(options: Partial<OutboxContractOptions> = {}): Promise<OutboxContractStore> {
      const store = await open({ now, ...options });
      opened.push(store);
      return store;
    }
    async function reopen(store: OutboxContractStore): Promise<OutboxContractStore> {
      const again = await store.reopen();
      opened.push(again);
      return again;
    }
    async function dueIds(outbox: OutboxStore): Promise<string[]> {
      return (await outbox.due(clock + 1e9, 1_000)).map((j) => j.id).sort();
    }
    beforeEach(() => {
      clock = T0;
    });
    afterEach(async () => {
      for (const store of opened.splice(0)) await store.close();
    });

    describe('enqueue', () => {
      it("writes jobs and the caller's extra ops in one batch, due now, attempt 0", async () => {
        const { outbox, kv } = await fresh();
        const markers = kv.space<number>('test-markers');
        let woken = 0;
        outbox.onEnqueue((n) => (woken += n));
        const result = await outbox.enqueueBatch(
          [job('msg_1'), job('msg_2')],
          [{ type: 'put', space: 'test-markers', key: 'block-10', value: 10 }],
        );
        expect(result).toEqual({ enqueued: 2, duplicates: 0 });
        expect(await markers.get('block-10')).toBe(10);
        expect(await outbox.get('msg_1')).toMatchObject({ attempt: 0, nextAttemptAt: T0, createdAt: T0, eventSeenAt: T0 - 5 });
        expect(outbox.depth()).toBe(2);
        await Promise.resolve();
        expect(woken).toBe(2);
      });

      it('writes nothing at all when one operation of the batch is invalid', async () => {
        const { outbox, kv } = await fresh();
        const markers = kv.space<number>('test-markers');
        await expect(
          outbox.enqueueBatch(
            [job('msg_1'), job('msg_2')],
            [
              { type: 'put', space: 'test-markers', key: 'ok', value: 1 },
              { type: 'put', space: 'test-markers', key: null as unknown as string, value: 2 },
            ],
          ),
        ).rejects.toThrow();
        expect(await outbox.get('msg_1')).toBeUndefined();
        expect(await markers.get('ok')).toBeUndefined();
        expect(await outbox.due(T0 + 1, 10)).toEqual([]);
        expect(outbox.depth()).toBe(0);
      });

      it('rejects a malformed job before writing anything', async () => {
        const { outbox } = await fresh();
        const bad: Array<[Partial<NewJob>, string]> = [
          [{ type: 'log.other' as never }, 'type'],
          [{ endpointId: '' }, 'endpointId'],
          [{ id: undefined }, 'id'],
          [{ eventSeenAt: Number.NaN }, 'eventSeenAt'],
          [{ nextAttemptAt: Number.POSITIVE_INFINITY }, 'nextAttemptAt'],
          [{ type: 'log.removed' }, 'payload.type'],
        ];
        for (const [fields, field] of bad) {
          await expect(outbox.enqueueBatch([job('msg_1'), { ...job('msg_2'), ...fields }])).rejects.toThrow(`invalid job: ${field}`);
        }
        expect(outbox.depth()).toBe(0);
        expect(await outbox.due(T0 + 1_000, 10)).toEqual([]);
      });

      it('is idempotent: ids already pending, dead, or repeated in the batch are skipped; extra ops still land', async () => {
        const { outbox, kv } = await fresh();
        const markers = kv.space<number>('test-markers');
        await outbox.enqueueBatch([job('msg_1'), job('msg_2')]);
        await outbox.deadLetter({ id: 'msg_2' }, 'test');
        const again = await outbox.enqueueBatch(
          [job('msg_1'), job('msg_2'), job('msg_3'), job('msg_3')],
          [{ type: 'put', space: 'test-markers', key: 'm', value: 1 }],
        );
        expect(again).toEqual({ enqueued: 1, duplicates: 3 });
        expect(await markers.get('m')).toBe(1);
        expect(outbox.depth()).toBe(2);
        expect(outbox.deadLetterCount()).toBe(1);
      });
    });

    describe('due, reschedule, complete', () => {
      it('returns due jobs earliest first, honours limit and exclude, and tells when the next is due', async () => {
        const { outbox } = await fresh();
        expect(await outbox.nextDueAt()).toBeUndefined();
        await outbox.enqueueBatch([
          job('msg_c', 'ep_a', { nextAttemptAt: T0 + 30 }),
          job('msg_a', 'ep_a', { nextAttemptAt: T0 + 10 }),
          job('msg_b', 'ep_a', { nextAttemptAt: T0 + 20 }),
        ]);
        expect(await outbox.nextDueAt()).toBe(T0 + 10);
        expect((await outbox.due(T0 + 9, 10)).map((j) => j.id)).toEqual([]);
        expect((await outbox.due(T0 + 20, 10)).map((j) => j.id)).toEqual(['msg_a', 'msg_b']);
        expect((await outbox.due(T0 + 100, 2)).map((j) => j.id)).toEqual(['msg_a', 'msg_b']);
        expect((await outbox.due(T0 + 100, 2, { exclude: new Set(['msg_a']) })).map((j) => j.id)).toEqual(['msg_b', 'msg_c']);
      });

      it('reschedule bumps the attempt, moves the job in due order and records the attempt', async () => {
        const { outbox } = await fresh();
        await outbox.enqueueBatch([job('msg_1'), job('msg_2')]);
        const updated = await outbox.reschedule({ id: 'msg_1' }, T0 + 5000, {
          jobId: 'msg_1',
          endpointId: 'ep_a',
          at: T0,
          attempt: 1,
          status: 503,
          durationMs: 12,
        });
        expect(updated).toMatchObject({ attempt: 1, nextAttemptAt: T0 + 5000 });
        expect((await outbox.due(T0, 10)).map((j) => j.id)).toEqual(['msg_2']);
        expect((await outbox.due(T0 + 5000, 10)).map((j) => j.id)).toEqual(['msg_2', 'msg_1']);
        expect(await outbox.attempts.list('ep_a')).toEqual([
          { jobId: 'msg_1', endpointId: 'ep_a', at: T0, attempt: 1, status: 503, durationMs: 12 },
        ]);
        expect(await outbox.reschedule({ id: 'msg_gone' }, T0)).toBeUndefined();
        await expect(outbox.reschedule({ id: 'msg_2' }, Number.NaN)).rejects.toMatchObject({ code: 'ETHHOOK_ERR_INVALID_INPUT' });
      });

      it('complete deletes the job for good; completing twice is a no-op', async () => {
        const { outbox } = await fresh();
        await outbox.enqueueBatch([job('msg_1')]);
        expect(await outbox.complete('msg_1', { jobId: 'msg_1', endpointId: 'ep_a', at: T0, status: 200, durationMs: 3 })).toBe(true);
        expect(await outbox.complete('msg_1')).toBe(false);
        expect(await outbox.get('msg_1')).toBeUndefined();
        expect(await outbox.due(T0 + 1e9, 10)).toEqual([]);
        expect(outbox.depth()).toBe(0);
        expect((await outbox.attempts.list('ep_a'))[0]).toMatchObject({ status: 200 });
      });

      it('concurrent completes of many jobs keep the depth exact', async () => {
        const { outbox } = await fresh();
        const ids = Array.from({ length: 200 }, (_, i) => `msg_${i}`);
        await outbox.enqueueBatch(ids.map((id) => job(id)));
        const results = await Promise.all([...ids, ...ids.slice(0, 50)].map((id) => outbox.complete(id)));
        expect(results.filter(Boolean)).toHaveLength(200);
        expect(outbox.depth()).toBe(0);
      });
    });

    describe('dead letters and replay', () => {
      it('dead-letters atomically, lists by endpoint and time, replays one and all since a time', async () => {
        const { outbox } = await fresh();
        await outbox.enqueueBatch([job('msg_a1', 'ep_a'), job('msg_a2', 'ep_a'), job('msg_a3', 'ep_a'), job('msg_b1', 'ep_b')]);
        await outbox.reschedule({ id: 'msg_a1' }, T0);
        clock = T0 + 100;
        expect(
          await outbox.deadLetter({ id: 'msg_a1' }, 'retries exhausted', {
            jobId: 'msg_a1',
            endpointId: 'ep_a',
            at: clock,
            status: 500,
            durationMs: 4,
          }),
        ).toBe(true);
        clock = T0 + 200;
        await outbox.deadLetter({ id: 'msg_b1' }, 'HTTP 400');
        clock = T0 + 300;
        await outbox.deadLetter({ id: 'msg_a2' }, 'endpoint disabled');
        clock = T0 + 400;
        await outbox.deadLetter({ id: 'msg_a3' }, 'endpoint disabled');
        expect(await outbox.deadLetter({ id: 'msg_a3' }, 'twice')).toBe(false);
        expect(outbox.depth()).toBe(0);
        expect(outbox.deadLetterCount()).toBe(4);
        expect(await outbox.get('msg_a1')).toBeUndefined();
        expect(await outbox.due(T0 + 1e9, 10)).toEqual([]);

        const a1 = await outbox.getDeadLetter('msg_a1');
        expect(a1).toMatchObject({ id: 'msg_a1', reason: 'retries exhausted', deadAt: T0 + 100, job: { attempt: 2 } });
        expect((await outbox.listDeadLetters()).map((d) => d.id)).toEqual(['msg_a1', 'msg_b1', 'msg_a2', 'msg_a3']);
        expect((await outbox.listDeadLetters({ endpointId: 'ep_a' })).map((d) => d.id)).toEqual(['msg_a1', 'msg_a2', 'msg_a3']);
        expect((await outbox.listDeadLetters({ endpointId: 'ep_a', since: T0 + 300, limit: 1 })).map((d) => d.id)).toEqual(['msg_a2']);
        expect((await outbox.listDeadLetters({ since: T0 + 150 })).map((d) => d.id)).toEqual(['msg_b1', 'msg_a2', 'msg_a3']);

        clock = T0 + 1000;
        const replayed = await outbox.replayDeadLetter('msg_a1');
        expect(replayed).toMatchObject({ id: 'msg_a1', attempt: 0, nextAttemptAt: T0 + 1000 });
        await expect(outbox.replayDeadLetter('msg_a1')).rejects.toMatchObject({ code: 'ETHHOOK_ERR_DEAD_LETTER_NOT_FOUND' });

        expect(await outbox.replayAll({ endpointId: 'ep_a', since: T0 + 350 })).toBe(1);
        expect((await outbox.due(clock, 10)).map((j) => j.id).sort()).toEqual(['msg_a1', 'msg_a3']);
        expect((await outbox.listDeadLetters()).map((d) => d.id)).toEqual(['msg_b1', 'msg_a2']);
        expect(outbox.depth()).toBe(2);
        expect(outbox.deadLetterCount()).toBe(2);
      });

      it('replays more dead letters than one chunk', async () => {
        const { outbox } = await fresh();
        const ids = Array.from({ length: 1203 }, (_, i) => `msg_${String(i).padStart(5, '0')}`);
        await outbox.enqueueBatch(ids.map((id) => job(id, 'ep_bulk')));
        for (const id of ids) await outbox.deadLetter({ id }, 'bulk');
        expect(await outbox.replayAll({ endpointId: 'ep_bulk' })).toBe(1203);
        expect(outbox.deadLetterCount()).toBe(0);
        expect((await outbox.due(clock, 2000)).length).toBe(1203);
      });
    });

    describe('counters and attempt records', () => {
      it('depth and dead-letter count survive a reopen', async () => {
        const store = await fresh();
        const outbox = store.outbox;
        await outbox.enqueueBatch([job('msg_1'), job('msg_2'), job('msg_3')]);
        await outbox.deadLetter({ id: 'msg_3' }, 'x');
        const { outbox: reopened } = await reopen(store);
        expect(reopened.depth()).toBe(2);
        expect(reopened.deadLetterCount()).toBe(1);
      });

      it('keeps exactly the configured number of attempts per endpoint, newest first', async () => {
        const { outbox } = await fresh({ attemptsPerEndpoint: 8 });
        for (let i = 0; i < 50; i++) {
          await outbox.attempts.record({ jobId: `msg_${i}`, endpointId: 'ep_a', at: T0 + i, durationMs: 1, error: 'ECONNREFUSED' });
          await outbox.attempts.record({ jobId: `msg_${i}`, endpointId: 'ep_b', at: T0 + i, durationMs: 1 });
        }
        const a = await outbox.attempts.list('ep_a', { limit: 100 });
        expect(a.map((r) => r.jobId)).toEqual(Array.from({ length: 8 }, (_, i) => `msg_${49 - i}`));
        expect(a.map((r) => r.at)).toEqual([...a.map((r) => r.at)].sort((x, y) => y - x));
        expect((await outbox.attempts.list('ep_a', { before: T0 + 45, limit: 2 })).map((r) => r.jobId)).toEqual(['msg_44', 'msg_43']);
        expect((await outbox.attempts.list('ep_b', { limit: 100 })).length).toBe(8);
      });
    });

    describe('group commit semantics', () => {
      it('a bad argument rejects its own call only', async () => {
        const { outbox } = await fresh();
        await outbox.enqueueBatch([job('msg_1'), job('msg_2')]);
        const [bad, good] = await Promise.allSettled([
          outbox.complete('msg_1', { jobId: 'msg_1', endpointId: '', at: T0, durationMs: 1 }),
          outbox.complete('msg_2'),
        ]);
        expect(bad.status).toBe('rejected');
        expect(good).toEqual({ status: 'fulfilled', value: true });
        expect(await outbox.get('msg_1')).toBeDefined();
      });

      it('changes to one job in one group apply in call order', async () => {
        const { outbox } = await fresh();
        await outbox.enqueueBatch([job('msg_1'), job('msg_2')]);
        const [j1, j2] = await outbox.due(T0, 10);
        const [rescheduled, completed, postponed, parked] = await Promise.all([
          outbox.reschedule(j1!, T0 + 100),
          outbox.complete(j1!),
          outbox.postpone('msg_2', T0 + 200),
          outbox.deadLetter(j2!, 'gone'),
        ]);
        expect(rescheduled).toMatchObject({ id: 'msg_1', attempt: 1, nextAttemptAt: T0 + 100 });
        expect(completed).toBe(true);
        expect(postponed).toMatchObject({ id: 'msg_2', attempt: 0, nextAttemptAt: T0 + 200 });
        expect(parked).toBe(true);
        expect(await outbox.getDeadLetter('msg_2')).toMatchObject({ job: { nextAttemptAt: T0 + 200, attempt: 0 } });
        expect(await outbox.due(T0 + 1e9, 10)).toEqual([]);
        expect(await outbox.nextDueAt()).toBeUndefined();
        expect([outbox.depth(), outbox.deadLetterCount()]).toEqual([0, 1]);
      });

      it('a known job is changed without reading it, any other is read; both answer "already gone" exactly', async () => {
        const { outbox } = await fresh();
        await outbox.enqueueBatch([job('msg_1'), job('msg_2')]);
        const [j1] = await outbox.due(T0, 1);
        expect(await Promise.all([outbox.complete(j1!), outbox.complete(j1!), outbox.complete('msg_1')])).toEqual([true, false, false]);
        expect(await outbox.reschedule(j1!, T0 + 1)).toBeUndefined();
        expect(await outbox.postpone(j1!, T0 + 1)).toBeUndefined();
        expect(await outbox.deadLetter(j1!, 'late')).toBe(false);
        expect([outbox.depth(), outbox.deadLetterCount()]).toEqual([1, 0]);
      });

      it('a due read that overlaps a write of its job does not lease the copy it read', async () => {
        const { outbox } = await fresh();
        await outbox.enqueueBatch([job('msg_1')]);
        // The scan and the reschedule race; whichever copy the scan returns, completing it must delete
        // the stored job with its current due key.
        const [scanned, rescheduled] = await Promise.all([outbox.due(T0, 10), outbox.reschedule('msg_1', T0 + 50)]);
        expect(rescheduled).toMatchObject({ nextAttemptAt: T0 + 50 });
        expect(await outbox.complete(scanned[0] ?? 'msg_1')).toBe(true);
        expect(await outbox.nextDueAt()).toBeUndefined();
        expect(outbox.depth()).toBe(0);
      });

      it('a stale copy of a job cannot undo a later change of it', async () => {
        const { outbox } = await fresh();
        await outbox.enqueueBatch([job('msg_1')]);
        const [stale] = await outbox.due(T0, 1);
        await outbox.reschedule(stale!, T0 + 50);
        expect(await outbox.complete(stale!)).toBe(true);
        expect(await outbox.nextDueAt()).toBeUndefined();
        expect(outbox.depth()).toBe(0);
      });
    });

    describe('postpone', () => {
      it('moves the job later without counting an attempt or recording one', async () => {
        const { outbox } = await fresh();
        await outbox.enqueueBatch([job('msg_1'), job('msg_2')]);
        const [j1] = await outbox.due(T0, 1);
        expect(await outbox.postpone(j1!, T0 + 500)).toMatchObject({ id: 'msg_1', attempt: 0, nextAttemptAt: T0 + 500 });
        expect(await outbox.postpone('msg_1', T0 + 700)).toMatchObject({ attempt: 0, nextAttemptAt: T0 + 700 });
        expect((await outbox.due(T0 + 699, 10)).map((j) => j.id)).toEqual(['msg_2']);
        expect((await outbox.due(T0 + 700, 10)).map((j) => j.id)).toEqual(['msg_2', 'msg_1']);
        expect(await outbox.attempts.list('ep_a')).toEqual([]);
        expect(await outbox.postpone('msg_gone', T0)).toBeUndefined();
        await expect(outbox.postpone('msg_2', Number.POSITIVE_INFINITY)).rejects.toMatchObject({ code: 'ETHHOOK_ERR_INVALID_INPUT' });
        expect(outbox.depth()).toBe(2);
      });
    });

    describe('a job that follows one in the outbox', () => {
      it('is held, not due, until that one completes; then due at once, in the same write', async () => {
        const { outbox } = await fresh();
        let woken = 0;
        outbox.onEnqueue((n) => (woken += n));
        await outbox.enqueueBatch([follower('msg_created'), follower('msg_other')]);
        const result = await outbox.enqueueBatch([follower('msg_removed', 'msg_created')]);
        expect(result).toEqual({ enqueued: 1, duplicates: 0 });
        expect(await dueIds(outbox)).toEqual(['msg_created', 'msg_other']);
        expect(outbox.depth()).toBe(3);
        expect(await outbox.get('msg_removed')).toMatchObject({ follows: 'msg_created', attempt: 0 });
        // Enqueued again while held: a duplicate, still held.
        expect(await outbox.enqueueBatch([follower('msg_removed', 'msg_created')])).toEqual({ enqueued: 0, duplicates: 1 });

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
        const { outbox } = await fresh();
        await outbox.enqueueBatch([follower('msg_created')]);
        await outbox.complete({ id: 'msg_created' });
        await outbox.enqueueBatch([follower('msg_removed', 'msg_created'), follower('msg_orphan', 'msg_never')]);
        expect(await dueIds(outbox)).toEqual(['msg_orphan', 'msg_removed']);
      });

      it('waits for a job enqueued before it in the same batch, and a chain waits link by link', async () => {
        const { outbox } = await fresh();
        // created (generation 0), its removal, the creation of generation 1, its removal.
        await outbox.enqueueBatch([follower('msg_c0'), follower('msg_r0', 'msg_c0')]);
        await outbox.enqueueBatch([follower('msg_c1', 'msg_r0')]);
        await outbox.enqueueBatch([follower('msg_r1', 'msg_c1')]);
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
        const store = await fresh();
        let outbox = store.outbox;
        await outbox.enqueueBatch([
          follower('msg_created'),
          follower('msg_removed', 'msg_created'),
          follower('msg_other', undefined, 'ep_b'),
        ]);
        await outbox.idle();
        outbox = (await reopen(store)).outbox;
        expect(outbox.depth()).toBe(3);
        expect(await dueIds(outbox)).toEqual(['msg_created', 'msg_other']);
        await outbox.complete({ id: 'msg_created' });
        expect(await dueIds(outbox)).toEqual(['msg_other', 'msg_removed']);
        expect(outbox.depth()).toBe(2);
      });
    });

    describe('dead letters and their followers', () => {
      it('a follower held behind a job that dies is released, and the dead letter superseded: its replay is refused', async () => {
        const { outbox } = await fresh();
        await outbox.enqueueBatch([follower('msg_created'), follower('msg_removed', 'msg_created')]);
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
        const { outbox } = await fresh();
        await outbox.enqueueBatch([follower('msg_c1'), follower('msg_c2')]);
        await outbox.deadLetter({ id: 'msg_c1' }, 'HTTP 400');
        await outbox.deadLetter({ id: 'msg_c2' }, 'HTTP 400');
        await outbox.enqueueBatch([follower('msg_r1', 'msg_c1')]);
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
        const { outbox } = await fresh();
        const n = 200;
        const ids = Array.from({ length: n }, (_, i) => `msg_c${String(i).padStart(3, '0')}`);
        await outbox.enqueueBatch(ids.map((id) => follower(id)));
        const firsts = await outbox.due(clock, n);
        // Every completion and every follower's enqueue in flight at once, interleaved.
        const writes: Array<Promise<unknown>> = [];
        for (let i = 0; i < n; i++) {
          writes.push(outbox.complete(firsts[i]!));
          writes.push(outbox.enqueueBatch([follower(`msg_r${String(i).padStart(3, '0')}`, ids[i])]));
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
            const store = await open({ now });
            const outbox = store.outbox;
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
                await outbox.enqueueBatch([follower(id, follows)]);
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
            await store.close();
          }),
          { numRuns: 60 },
        );
      });
    });

    describe('against a model', () => {
      // Rounds of enqueues, completes, reschedules, postpones, dead letters, due scans and idle() waits all
      // running at once, with the store reopened between some rounds: after every round a due scan
      // returns exactly the model's due jobs in due order, and the counters match, after a last reopen too.
      it('concurrent rounds of changes and scans: every later scan is exact, counters too', async () => {
        await fc.assert(
          fc.asyncProperty(modelRounds, async (rounds) => {
            let store = await open({ now: () => MODEL_T0 });
            try {
              const model = new OutboxModel();
              for (const { ops, reopen } of rounds) {
                // A new instance over the same store, as after a restart.
                if (reopen) store = await store.reopen();
                await model.round(store.outbox, ops);
                await model.expectExact(store.outbox);
              }
              store = await store.reopen();
              await model.expectExact(store.outbox);
            } finally {
              await store.close();
            }
          }),
          { numRuns: 30 },
        );
      });
    });
  });
}
