// The outbox against a model, on real LevelDB: rounds of enqueues, completes, reschedules, postpones,
// dead letters, due scans and idle() waits all running at once (group commits, the due-scan lower
// bound and its guard against scans that overlap writes), with the outbox reopened between some
// rounds. After every round a due scan returns exactly the model's due jobs in due order, and the
// counters match; once idle, the due index in LevelDB holds exactly the pending jobs' keys. Beyond the
// contract's model (test/contract/outbox.contract.ts): the jobs remembered as stored are bounded to a
// few, so stale entries are swept and jobs read back all the time, and LevelDB's due index is checked.
import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDb } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import { type Job } from '../../src/store/outbox/job.ts';
import { LevelOutbox } from '../../src/store/level/outbox/outbox.ts';
import { newJob } from '../support/jobs.ts';

const T0 = 1_700_000_000_000;
const IDS = Array.from({ length: 24 }, (_, i) => `msg_${String(i).padStart(2, '0')}`);

type Op =
  | { kind: 'enqueue'; id: string; at: number }
  | { kind: 'complete' | 'dead'; id: string; whole: boolean; grouped: boolean }
  | { kind: 'reschedule' | 'postpone'; id: string; at: number; whole: boolean }
  | { kind: 'scan'; now: number; limit: number }
  | { kind: 'idle' };

const time = fc.integer({ min: -50, max: 50 }).map((d) => T0 + d * 10);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('enqueue' as const), id: fc.constantFrom(...IDS), at: time }),
  // grouped: a complete through completeWithGroup (the group's shared promise), as the delivery loop does.
  fc.record({
    kind: fc.constantFrom('complete' as const, 'dead' as const),
    id: fc.constantFrom(...IDS),
    whole: fc.boolean(),
    grouped: fc.boolean(),
  }),
  fc.record({
    kind: fc.constantFrom('reschedule' as const, 'postpone' as const),
    id: fc.constantFrom(...IDS),
    at: time,
    whole: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('scan' as const), now: time, limit: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('idle' as const) }),
);

const dueKey = (at: number, id: string) => `${String(at).padStart(15, '0')}!${id}`;

describe('LevelOutbox against a model', () => {
  it('concurrent rounds of changes and scans: every later scan is exact, counters too', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ ops: fc.array(opArb, { minLength: 1, maxLength: 12 }), reopen: fc.boolean() }), {
          minLength: 1,
          maxLength: 8,
        }),
        // How many jobs the outbox remembers as stored: all of these ids, or a few (stale entries swept
        // and jobs read back from LevelDB all the time).
        fc.constantFrom(undefined, 1, 3),
        async (rounds, rememberAtMost) => {
          const dir = await mkdtemp(join(tmpdir(), 'ethhook-outbox-prop-'));
          const db = await openDb(dir);
          try {
            let outbox = await LevelOutbox.open(new LevelKv(db), { now: () => T0, rememberAtMost });
            const pending = new Map<string, number>(); // id -> nextAttemptAt
            const parked = new Set<string>();
            for (const { ops: round, reopen } of rounds) {
              // A new instance over the same LevelDB, as after a restart.
              if (reopen) outbox = await LevelOutbox.open(new LevelKv(db), { now: () => T0, rememberAtMost });
              // Within a round: enqueue only new ids, change only ids pending before it, one op per id.
              const before = new Map(pending);
              const copies = new Map<string, Job>((await outbox.due(T0 + 10_000, IDS.length)).map((j) => [j.id, j]));
              const used = new Set<string>();
              const running: Promise<unknown>[] = [];
              for (const op of round) {
                if (op.kind === 'scan') {
                  running.push(outbox.due(op.now, op.limit));
                  continue;
                }
                if (op.kind === 'idle') {
                  running.push(outbox.idle());
                  continue;
                }
                if (used.has(op.id)) continue;
                used.add(op.id);
                const ref = (whole: boolean) => (whole ? copies.get(op.id)! : op.id);
                if (op.kind === 'enqueue') {
                  if (before.has(op.id) || parked.has(op.id)) continue;
                  running.push(outbox.enqueueBatch([newJob(op.id, 'ep_a', { nextAttemptAt: op.at }, T0)]));
                  pending.set(op.id, op.at);
                } else if (before.has(op.id)) {
                  if (op.kind === 'complete')
                    running.push(op.grouped ? outbox.completeWithGroup(ref(op.whole)) : outbox.complete(ref(op.whole)));
                  if (op.kind === 'dead') running.push(outbox.deadLetter(ref(op.whole), 'model'));
                  if (op.kind === 'reschedule') running.push(outbox.reschedule(ref(op.whole), op.at));
                  if (op.kind === 'postpone') running.push(outbox.postpone(ref(op.whole), op.at));
                  if (op.kind === 'reschedule' || op.kind === 'postpone') pending.set(op.id, op.at);
                  else pending.delete(op.id);
                  if (op.kind === 'dead') parked.add(op.id);
                }
              }
              await Promise.all(running);
              const expected = [...pending].sort((a, b) => (dueKey(a[1], a[0]) < dueKey(b[1], b[0]) ? -1 : 1)).map(([id]) => id);
              expect((await outbox.due(T0 + 10_000, IDS.length)).map((j) => j.id)).toEqual(expected);
              const now = T0;
              const dueNow = expected.filter((id) => pending.get(id)! <= now).slice(0, 5);
              expect((await outbox.due(now, 5)).map((j) => j.id)).toEqual(dueNow);
              expect(outbox.depth()).toBe(pending.size);
              expect(outbox.deadLetterCount()).toBe(parked.size);
            }
            await outbox.idle();
            const index = await db.sublevel<string, string>('outbox-due', { valueEncoding: 'json' }).keys().all();
            expect(index).toEqual([...pending].map(([id, at]) => dueKey(at, id)).sort());
          } finally {
            await db.close();
            await rm(dir, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 60 },
    );
  }, 60_000);
});
