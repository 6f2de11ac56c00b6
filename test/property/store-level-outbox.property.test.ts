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
import { LevelOutbox } from '../../src/store/level/outbox/outbox.ts';
import { MODEL_T0, modelDueKey, modelRounds, OutboxModel } from '../contract/outbox-model.ts';

describe('LevelOutbox against a model', () => {
  it('concurrent rounds of changes and scans: every later scan is exact, counters too', async () => {
    await fc.assert(
      fc.asyncProperty(modelRounds, fc.constantFrom(undefined, 1, 3), async (rounds, rememberAtMost) => {
        const dir = await mkdtemp(join(tmpdir(), 'ethhook-outbox-prop-'));
        const db = await openDb(dir);
        try {
          let outbox = await LevelOutbox.open(new LevelKv(db), { now: () => MODEL_T0, rememberAtMost });
          const model = new OutboxModel();
          for (const { ops, reopen } of rounds) {
            // A new instance over the same LevelDB, as after a restart.
            if (reopen) outbox = await LevelOutbox.open(new LevelKv(db), { now: () => MODEL_T0, rememberAtMost });
            await model.round(outbox, ops);
            await model.expectExact(outbox);
          }
          await outbox.idle();
          const index = await db.sublevel<string, string>('outbox-due', { valueEncoding: 'json' }).keys().all();
          expect(index).toEqual([...model.pending].map(([id, at]) => modelDueKey(at, id)).sort());
        } finally {
          await db.close();
          await rm(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 60 },
    );
  }, 60_000);
});
