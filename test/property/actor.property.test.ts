// Actor invariants on real cells under a real supervisor: FIFO per sender, one message at a time,
// nothing lost across restarts but the message that panicked (which goes to dead letters, counted).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ActorContext } from '../../src/runtime/types.ts';
import { start, waitFor } from '../support/kernel.ts';

interface Msg {
  sender: number;
  seq: number;
  panic: boolean;
  async: boolean;
}

const msgs = fc
  .array(fc.record({ sender: fc.integer({ min: 0, max: 3 }), roll: fc.integer({ min: 0, max: 9 }), async: fc.boolean() }), {
    maxLength: 60,
  })
  .map((list) => {
    const seqs = [0, 0, 0, 0];
    return list.map(({ sender, roll, async }) => ({ sender, async, panic: roll < 3, seq: seqs[sender]!++ }));
  });

describe('actor', () => {
  it('handles messages one at a time, FIFO per sender, across async handlers', async () => {
    await fc.assert(
      fc.asyncProperty(msgs, async (list) => {
        const seen: Msg[] = [];
        let active = 0;
        let overlap = false;
        const { system } = await start([
          {
            kind: 'worker',
            name: 'a',
            behaviour: () => ({
              async receive(m: Msg) {
                if (++active > 1) overlap = true;
                if (m.async) await new Promise((r) => setImmediate(r));
                seen.push(m);
                active--;
              },
            }),
          },
        ]);
        const ref = system.lookup<Msg>('a')!;
        for (const m of list) ref.tell({ ...m, panic: false });
        await waitFor(() => seen.length === list.length);
        await system.shutdown('test');
        expect(overlap).toBe(false);
        for (let s = 0; s < 4; s++) {
          const got = seen.filter((m) => m.sender === s).map((m) => m.seq);
          expect(got).toEqual(got.slice().sort((a, b) => a - b));
          expect(got.length).toBe(list.filter((m) => m.sender === s).length);
        }
      }),
      { numRuns: 40 },
    );
  });

  it('loses no message across restarts except the one that panicked, which is dead-lettered', async () => {
    await fc.assert(
      fc.asyncProperty(msgs, async (list) => {
        const handled: string[] = [];
        const { system } = await start(
          [
            {
              kind: 'worker',
              name: 'a',
              maxConsecutivePanics: 1,
              mailbox: { capacity: 1024 },
              behaviour: () => ({
                async receive(m: Msg) {
                  if (m.async) await Promise.resolve();
                  if (m.panic) throw new Error(`panic ${m.sender}/${m.seq}`);
                  handled.push(`${m.sender}/${m.seq}`);
                },
              }),
            },
          ],
          { intensity: { maxRestarts: 1000, withinMs: 1000 } },
        );
        const ref = system.lookup<Msg>('a')!;
        for (const m of list) ref.tell(m);
        const expected = list.filter((m) => !m.panic).map((m) => `${m.sender}/${m.seq}`);
        const panics = list.filter((m) => m.panic).length;
        const cell = system.findOrThrow('a');
        await waitFor(() => handled.length === expected.length && cell.stats.deadLetters.poison === panics && cell.state === 'running');
        await system.shutdown('test');
        expect(handled).toEqual(expected);
        expect(cell.stats.panicked).toBe(panics);
        expect(cell.stats.restarts.panic).toBe(panics);
      }),
      { numRuns: 40 },
    );
  });

  it('retries a message that panicked once, with the next incarnation, in its place', async () => {
    const handled: { m: number; inc: number }[] = [];
    let failedOnce = false;
    const { system } = await start([
      {
        kind: 'worker',
        name: 'a',
        behaviour: () => ({
          receive(m: number, ctx: ActorContext) {
            if (m === 2 && !failedOnce) {
              failedOnce = true;
              throw new Error('first try fails');
            }
            handled.push({ m, inc: ctx.incarnation });
          },
        }),
      },
    ]);
    const ref = system.lookup<number>('a')!;
    for (const m of [1, 2, 3]) ref.tell(m);
    await waitFor(() => handled.length === 3);
    await system.shutdown('test');
    expect(handled).toEqual([
      { m: 1, inc: 1 },
      { m: 2, inc: 2 },
      { m: 3, inc: 2 },
    ]);
  });
});
