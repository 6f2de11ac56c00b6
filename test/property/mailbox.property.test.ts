// Mailbox invariants: bounded, FIFO, and every message accounted for (taken, still queued, or dropped).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Mailbox } from '../../src/runtime/mailbox.ts';
import type { OverflowPolicy } from '../../src/runtime/types.ts';

const policy = fc.constantFrom<OverflowPolicy>('backpressure', 'drop-oldest', 'drop-newest');
const op = fc.oneof(
  fc.constant({ kind: 'take' as const }),
  fc.integer({ min: 1, max: 5 }).map((n) => ({ kind: 'offer' as const, n })),
);

describe('mailbox', () => {
  it('never exceeds capacity and accounts for every message in FIFO order', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 16 }), policy, fc.array(op, { maxLength: 300 }), (capacity, overflow, ops) => {
        const mb = new Mailbox<number>(capacity, overflow);
        let next = 0;
        const taken: number[] = [];
        const dropped = new Set<number>();
        for (const o of ops) {
          if (o.kind === 'take') {
            if (mb.size > 0) taken.push(mb.take());
          } else {
            for (let i = 0; i < o.n; i++) {
              const msg = next++;
              const r = mb.offer(msg);
              if (!r.accepted) dropped.add(msg);
              else if (r.evicted) dropped.add(r.evicted.msg as number);
            }
          }
          expect(mb.size).toBeLessThanOrEqual(capacity);
        }
        const rest = mb.drainAll().map((e) => e.msg);
        // Accounting: every offered message is exactly one of taken, remaining, dropped.
        expect(taken.length + rest.length + dropped.size).toBe(next);
        const delivered = [...taken, ...rest];
        // FIFO: what comes out is increasing (drops remove, never reorder).
        for (let i = 1; i < delivered.length; i++) expect(delivered[i]!).toBeGreaterThan(delivered[i - 1]!);
        for (const m of delivered) expect(dropped.has(m)).toBe(false);
      }),
    );
  });

  it('wakes a waiting sender when room frees up', async () => {
    const mb = new Mailbox<number>(1, 'backpressure');
    mb.offer(1);
    let woke = false;
    const waiting = mb.waitForRoom().then(() => (woke = true));
    await Promise.resolve();
    expect(woke).toBe(false);
    mb.take();
    await waiting;
    expect(woke).toBe(true);
  });

  it('drop-oldest evicts the head and hands it back with its reply', () => {
    const mb = new Mailbox<string>(2, 'drop-oldest');
    const reply = { resolve() {}, reject() {} };
    mb.offer('a', reply);
    mb.offer('b');
    const r = mb.offer('c');
    expect(r).toEqual({ accepted: true, evicted: { msg: 'a', reply } });
    expect(mb.drainAll().map((e) => e.msg)).toEqual(['b', 'c']);
  });
});
