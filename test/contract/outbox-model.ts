/**
 * The model an outbox is checked against (test/contract/outbox.contract.ts on every engine; the LevelDB
 * outbox's own property test with its memory bounds varied): rounds of enqueues, completes, reschedules,
 * postpones, dead letters, due scans and idle() waits, all running at once. Within a round only new ids
 * are enqueued and only ids pending before it are changed, one op per id; `OutboxModel` keeps which jobs
 * are pending (with their due time) and parked, and `expectExact` checks that a due scan returns exactly
 * the model's jobs in due order, and the counters.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import type { OutboxStore } from '../../src/store/outbox/contract.ts';
import type { Job } from '../../src/store/outbox/job.ts';
import { newJob } from '../support/jobs.ts';

export const MODEL_T0 = 1_700_000_000_000;
const IDS = Array.from({ length: 24 }, (_, i) => `msg_${String(i).padStart(2, '0')}`);

type Op =
  | { kind: 'enqueue'; id: string; at: number }
  | { kind: 'complete' | 'dead'; id: string; whole: boolean; grouped: boolean }
  | { kind: 'reschedule' | 'postpone'; id: string; at: number; whole: boolean }
  | { kind: 'scan'; now: number; limit: number }
  | { kind: 'idle' };

const time = fc.integer({ min: -50, max: 50 }).map((d) => MODEL_T0 + d * 10);
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

/** Rounds of ops, each with whether the store is reopened before it (as after a restart). */
export const modelRounds = fc.array(fc.record({ ops: fc.array(opArb, { minLength: 1, maxLength: 12 }), reopen: fc.boolean() }), {
  minLength: 1,
  maxLength: 8,
});

export const modelDueKey = (at: number, id: string): string => `${String(at).padStart(15, '0')}!${id}`;

export class OutboxModel {
  /** id -> nextAttemptAt */
  readonly pending = new Map<string, number>();
  readonly parked = new Set<string>();

  /** Runs one round's ops on `outbox` at once and moves the model with them. */
  async round(outbox: OutboxStore, ops: readonly Op[]): Promise<void> {
    const before = new Map(this.pending);
    const copies = new Map<string, Job>((await outbox.due(MODEL_T0 + 10_000, IDS.length)).map((j) => [j.id, j]));
    const used = new Set<string>();
    const running: Promise<unknown>[] = [];
    for (const op of ops) {
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
        if (before.has(op.id) || this.parked.has(op.id)) continue;
        running.push(outbox.enqueueBatch([newJob(op.id, 'ep_a', { nextAttemptAt: op.at }, MODEL_T0)]));
        this.pending.set(op.id, op.at);
      } else if (before.has(op.id)) {
        if (op.kind === 'complete') running.push(op.grouped ? outbox.completeWithGroup(ref(op.whole)) : outbox.complete(ref(op.whole)));
        if (op.kind === 'dead') running.push(outbox.deadLetter(ref(op.whole), 'model'));
        if (op.kind === 'reschedule') running.push(outbox.reschedule(ref(op.whole), op.at));
        if (op.kind === 'postpone') running.push(outbox.postpone(ref(op.whole), op.at));
        if (op.kind === 'reschedule' || op.kind === 'postpone') this.pending.set(op.id, op.at);
        else this.pending.delete(op.id);
        if (op.kind === 'dead') this.parked.add(op.id);
      }
    }
    await Promise.all(running);
  }

  /** A due scan returns exactly the pending jobs in due order (all, and the first 5 due by MODEL_T0); the counters match. */
  async expectExact(outbox: OutboxStore): Promise<void> {
    const expected = [...this.pending].sort((a, b) => (modelDueKey(a[1], a[0]) < modelDueKey(b[1], b[0]) ? -1 : 1)).map(([id]) => id);
    expect((await outbox.due(MODEL_T0 + 10_000, IDS.length)).map((j) => j.id)).toEqual(expected);
    const dueNow = expected.filter((id) => this.pending.get(id)! <= MODEL_T0).slice(0, 5);
    expect((await outbox.due(MODEL_T0, 5)).map((j) => j.id)).toEqual(dueNow);
    expect(outbox.depth()).toBe(this.pending.size);
    expect(outbox.deadLetterCount()).toBe(this.parked.size);
  }
}
