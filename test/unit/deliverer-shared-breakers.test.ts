// Shared breakers (circuit breakers held cluster-wide): this instance's opens and closes written to the
// store, the store's open breakers read and handed over (open with the time left, cleared when gone), a
// read that began before our own change ignored for that endpoint, failures logged and changing
// nothing, the poll timer, and the bounds of what is kept. The store is the in-memory model of the
// shared limits (test/support/memory-delivery-limits.ts) with the clock as an argument.
import { describe, expect, it } from 'vitest';
import { CLOSED, type BreakerState } from '../../src/actors/deliverer/circuit-breaker.ts';
import { SharedBreakers } from '../../src/actors/deliverer/shared-breakers.ts';
import { deferred } from '../../src/runtime/deferred.ts';
import type { DeliveryLimits, SharedBreaker } from '../../src/store/delivery-limits.ts';
import { waitFor, memoryLogger } from '../support/kernel.ts';
import { MemoryDeliveryLimits } from '../support/memory-delivery-limits.ts';

const open = (cooldownMs: number, until = 0): BreakerState => ({ state: 'open', until, cooldownMs });

function breakers(limits: DeliveryLimits, pollMs?: number) {
  const opened: Array<{ id: string; remainingMs: number; cooldownMs: number }> = [];
  const cleared: string[] = [];
  const { logger, lines } = memoryLogger();
  const b = new SharedBreakers(
    limits,
    { open: (id, remainingMs, cooldownMs) => opened.push({ id, remainingMs, cooldownMs }), cleared: (id) => cleared.push(id) },
    logger,
    pollMs,
  );
  const kept = b as unknown as { listed: Set<string>; changedAt: Map<string, number>; opened: Set<string> };
  return { b, opened, cleared, lines, kept };
}

function store() {
  let now = 1_000_000;
  const limits = new MemoryDeliveryLimits('node-a', () => now);
  return {
    limits,
    other: limits.as('node-b'),
    advance: (ms: number) => (now += ms),
  };
}

describe('shared breakers: this instance writes its transitions', () => {
  // An open goes to the store for its cool-down, a close clears it; other transitions write nothing.
  it('writes an open with its cool-down and clears on a close', async () => {
    const { limits } = store();
    const { b } = breakers(limits);
    b.transitioned('ep_a', 'opened', open(30_000));
    b.transitioned('ep_a', 'half-opened', { state: 'half-open', cooldownMs: 30_000, probeSince: 0 });
    await b.stop();
    expect(await limits.openBreakers()).toEqual([{ endpointId: 'ep_a', remainingMs: 30_000, cooldownMs: 30_000, openedBy: 'node-a' }]);
    b.transitioned('ep_a', 'closed', CLOSED);
    await b.stop();
    expect(await limits.openBreakers()).toEqual([]);
    expect(limits.calls).toMatchObject({ openBreaker: 1, closeBreaker: 1 });
  });

  // A deleted endpoint's bucket and breaker leave the store.
  it('forgets a deleted endpoint in the store', async () => {
    const { limits } = store();
    await limits.openBreaker('ep_a', 10_000);
    await limits.take('ep_a', { ratePerSec: 1, burst: 1 }, 1);
    const { b } = breakers(limits);
    b.forget('ep_a');
    await b.stop();
    expect(await limits.openBreakers()).toEqual([]);
    expect((await limits.take('ep_a', { ratePerSec: 1, burst: 1 }, 1)).granted).toBe(1);
  });
});

describe('shared breakers: reading the open set', () => {
  // Listed: handed over with the time left (0 once the cool-down is over); gone: cleared, once.
  it("hands over another instance's open breakers, and their clearing", async () => {
    const { limits, other, advance } = store();
    const { b, opened, cleared } = breakers(limits);
    await other.openBreaker('ep_a', 60_000);
    await b.poll();
    expect(opened).toEqual([{ id: 'ep_a', remainingMs: 60_000, cooldownMs: 60_000 }]);
    advance(70_000);
    await b.poll();
    expect(opened[1]).toEqual({ id: 'ep_a', remainingMs: 0, cooldownMs: 60_000 });
    await other.closeBreaker('ep_a');
    await b.poll();
    await b.poll();
    expect(cleared).toEqual(['ep_a']);
    expect(opened).toHaveLength(2);
  });

  // The read was answered before our close landed: it must not re-open what we just closed.
  it('ignores, for an endpoint, a read that began before its own change', async () => {
    const { limits, other } = store();
    await other.openBreaker('ep_a', 60_000);
    await other.openBreaker('ep_b', 60_000);
    const answered = deferred<void>();
    const gate = deferred<void>();
    const snapshot = deferred<SharedBreaker[]>();
    let reads = 0;
    // The first read is held between the store's answer and its handling; the others are not.
    const slow: DeliveryLimits = Object.assign(Object.create(limits) as DeliveryLimits, {
      openBreakers: () => {
        if (reads++ > 0) return limits.openBreakers();
        void limits.openBreakers().then((list) => {
          snapshot.resolve(list);
          answered.resolve();
        });
        return snapshot.promise.then(async (list) => {
          await gate.promise;
          return list;
        });
      },
    });
    const { b, opened } = breakers(slow);
    const reading = b.poll();
    await answered.promise;
    // Our close of ep_a happens after the store answered, before the answer is handled.
    b.transitioned('ep_a', 'closed', CLOSED);
    gate.resolve();
    await reading;
    expect(opened.map((o) => o.id)).toEqual(['ep_b']);
    // The next read, begun after the change, speaks for ep_a again (our close was written: not listed).
    await b.stop();
    await b.poll();
    expect(opened.map((o) => o.id)).toEqual(['ep_b', 'ep_b']);
  });

  // Opened here, cleared elsewhere (an operator's close on another instance) before any read here
  // listed it: the next read clears it here too, instead of leaving it open for its whole cool-down.
  it('clears a breaker it opened that another instance closed before any read here found it', async () => {
    const { limits, other } = store();
    const { b, cleared, opened } = breakers(limits);
    await b.poll();
    b.transitioned('ep_a', 'opened', open(120_000));
    await b.stop();
    expect(await limits.openBreakers()).toHaveLength(1);
    await other.closeBreaker('ep_a');
    await b.poll();
    expect(cleared).toEqual(['ep_a']);
    await b.poll();
    expect(cleared).toEqual(['ep_a']);
    // Opened here again and found by a read: it is listed as any other, and cleared once when it goes.
    b.transitioned('ep_a', 'opened', open(120_000));
    await b.stop();
    await b.poll();
    expect(opened.map((o) => o.id)).toEqual(['ep_a']);
    await other.closeBreaker('ep_a');
    await b.poll();
    await b.poll();
    expect(cleared).toEqual(['ep_a', 'ep_a']);
  });

  // Closed here while its opening write was under way: that open is not one to clear later.
  it('does not report as cleared elsewhere a breaker it closed itself while opening it', async () => {
    const { limits } = store();
    const gate = deferred<void>();
    const gated: DeliveryLimits = Object.assign(Object.create(limits) as DeliveryLimits, {
      openBreaker: async (id: string, ms: number) => {
        await gate.promise;
        return limits.openBreaker(id, ms);
      },
    });
    const { b, cleared, kept } = breakers(gated);
    b.transitioned('ep_a', 'opened', open(120_000));
    b.transitioned('ep_a', 'closed', CLOSED);
    gate.resolve();
    await b.stop();
    await b.poll();
    expect(cleared).toEqual([]);
    expect(kept.opened.size).toBe(0);
  });

  // An open whose write failed is not in the store: a read does not take that for a close elsewhere.
  it('keeps a breaker open here when its opening write failed', async () => {
    const { limits } = store();
    const failing: DeliveryLimits = Object.assign(Object.create(limits) as DeliveryLimits, {
      openBreaker: () => Promise.reject(new Error('store down')),
    });
    const { b, cleared, lines } = breakers(failing);
    b.transitioned('ep_a', 'opened', open(120_000));
    await b.stop();
    await b.poll();
    expect(cleared).toEqual([]);
    expect(lines.some((l) => String(l.msg).includes('opening the shared circuit breaker failed'))).toBe(true);
  });

  // A failed read is logged and changes nothing: what was listed stays listed.
  it('keeps the breakers as they were when a read fails, and logs it', async () => {
    const { limits, other } = store();
    await other.openBreaker('ep_a', 60_000);
    let fail = false;
    const flaky: DeliveryLimits = Object.assign(Object.create(limits) as DeliveryLimits, {
      openBreakers: () => (fail ? Promise.reject(new Error('connection lost')) : limits.openBreakers()),
      openBreaker: () => Promise.reject(new Error('connection lost')),
    });
    const { b, opened, cleared, lines } = breakers(flaky);
    await b.poll();
    await other.closeBreaker('ep_a');
    fail = true;
    await b.poll();
    expect(cleared).toEqual([]);
    expect(lines.some((l) => String(l.msg).includes('reading the shared circuit breakers failed'))).toBe(true);
    fail = false;
    await b.poll();
    expect(cleared).toEqual(['ep_a']);
    expect(opened).toHaveLength(1);
    // A failed write is logged too, and the next operations still run.
    b.transitioned('ep_b', 'opened', open(1_000));
    await b.stop();
    expect(lines.some((l) => l.endpointId === 'ep_b' && String(l.msg).includes('opening the shared circuit breaker failed'))).toBe(true);
    await b.poll();
    expect(opened).toHaveLength(1);
  });
});

describe('shared breakers: timer and bounds', () => {
  // start reads at once and every pollMs; stop waits for the read under way and reads no more.
  it('reads every pollMs between start and stop', async () => {
    const { limits } = store();
    const { b } = breakers(limits, 20);
    b.start();
    await waitFor(() => limits.calls.openBreakers >= 3, 5_000, 'three reads');
    await b.stop();
    const reads = limits.calls.openBreakers;
    await new Promise((r) => setTimeout(r, 60));
    expect(limits.calls.openBreakers).toBe(reads);
  });

  // Kept: the endpoints of the last read, and changes newer than the read under way.
  it('keeps only the last read and the changes since the read under way began', async () => {
    const { limits, other } = store();
    const { b, kept } = breakers(limits);
    for (let i = 0; i < 20; i++) await other.openBreaker(`ep_${i}`, 60_000);
    await b.poll();
    expect(kept.listed.size).toBe(20);
    for (let i = 0; i < 20; i++) await other.closeBreaker(`ep_${i}`);
    for (let i = 0; i < 30; i++) b.transitioned(`ep_x${i}`, i % 2 === 0 ? 'opened' : 'closed', i % 2 === 0 ? open(1_000) : CLOSED);
    expect(kept.changedAt.size).toBe(30);
    await b.poll();
    expect(kept.changedAt.size).toBe(0);
    // Our own opens are in the store now, and listed; nothing else.
    expect(kept.listed.size).toBe(15);
    for (let i = 0; i < 30; i += 2) b.forget(`ep_x${i}`);
    await b.stop();
    await b.poll();
    expect(kept.listed.size).toBe(0);
    expect(kept.changedAt.size).toBe(0);
    expect(kept.opened.size).toBe(0);
  });
});
