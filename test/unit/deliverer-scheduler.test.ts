// The Scheduler alone: turns, per-endpoint limits, standings, the two lanes, aging, and what stays in
// the outbox. Jobs are bare objects; aging uses real timers with a short slowAfterMs, waited for.
import { describe, expect, it, vi } from 'vitest';
import { requestSlots, Scheduler, type Flight, type SchedulerOptions } from '../../src/actors/deliverer/scheduler.ts';
import type { Job } from '../../src/store/outbox/job.ts';

let seq = 0;
const job = (endpointId: string): Job => ({ id: `msg_${seq++}`, endpointId }) as Job;

function scheduler(options: SchedulerOptions = {}) {
  const hooks = { room: vi.fn(), rescan: vi.fn() };
  return {
    s: new Scheduler({ concurrency: 4, perEndpointConcurrency: 2, slowConcurrency: 4, slowAfterMs: 60_000, ...options }, hooks),
    hooks,
  };
}

/** Starts everything that can start now. */
function drain(s: Scheduler): Flight[] {
  const out: Flight[] = [];
  for (let f = s.next(); f !== null; f = s.next()) out.push(f);
  return out;
}

/** Sends one job of each endpoint and has it answered in `ms`: the endpoint's standing follows. */
function settle(s: Scheduler, endpoints: string[], ms: number, answered = true): void {
  for (const e of endpoints) s.requeue(job(e));
  for (const f of drain(s)) {
    s.sending(f);
    s.answered(f, ms, answered);
  }
}

describe('turns', () => {
  it('an endpoint with a backlog and one with a single job alternate', () => {
    const { s } = scheduler({ perEndpointConcurrency: 4 });
    settle(s, ['a', 'b'], 5);
    for (let i = 0; i < 3; i++) s.offer(job('a'));
    s.offer(job('b'));
    expect(drain(s).map((f) => f.job.endpointId)).toEqual(['a', 'b', 'a', 'a']);
  });

  it('an endpoint never has more than perEndpointConcurrency requests in flight', () => {
    const { s } = scheduler({ concurrency: 10 });
    settle(s, ['a'], 5);
    for (let i = 0; i < 2; i++) s.offer(job('a'));
    s.requeue(job('a'));
    expect(drain(s)).toHaveLength(2);
    expect(s.next()).toBeNull();
  });

  it('a new endpoint sends one request at a time until one has ended', () => {
    const { s } = scheduler({ concurrency: 10 });
    s.requeue(job('n'));
    s.requeue(job('n'));
    const [first, ...rest] = drain(s);
    expect(rest).toEqual([]);
    s.sending(first!);
    s.answered(first!, 5, true);
    expect(drain(s)).toHaveLength(1);
  });
});

describe('new endpoints', () => {
  it('hold at most their share of the fast lane, then take the slow lane half for the silent', () => {
    // 8 fast slots, 2 kept for fast endpoints; slow lane 4, of which 2 for silent and new endpoints.
    const { s } = scheduler({ concurrency: 8, slowConcurrency: 4 });
    settle(s, ['f'], 5);
    for (let i = 0; i < 12; i++) s.offer(job(`n${i}`));
    expect(drain(s)).toHaveLength(6 + 2);
    expect(s.slowLane).toBe(2);
    // An endpoint known to be fast still finds a fast slot.
    s.requeue(job('f'));
    expect(drain(s).map((f) => f.job.endpointId)).toEqual(['f']);
  });
});

describe('standing and lanes', () => {
  it('an answer that came late makes an endpoint slow: its next requests start in the slow lane, and one in time makes it fast again', () => {
    const { s } = scheduler({ concurrency: 1, slowConcurrency: 1, slowAfterMs: 100 });
    settle(s, ['e'], 150);
    s.requeue(job('e'));
    s.requeue(job('x'));
    const started = drain(s);
    // The new endpoint x takes the fast slot; e the slow lane.
    expect(started.map((f) => f.job.endpointId).sort()).toEqual(['e', 'x']);
    expect(s.slowLane).toBe(1);
    const e = started.find((f) => f.job.endpointId === 'e')!;
    s.sending(e);
    s.answered(e, 20, true);
    expect(s.slowLane).toBe(0);
    s.requeue(job('e'));
    expect(s.next()).toBeNull(); // fast again: it waits for the fast slot x holds
  });

  it('endpoints that never answered share half the slow lane; late-answering ones go first', () => {
    const { s } = scheduler({ concurrency: 1, slowConcurrency: 4, perEndpointConcurrency: 4, slowAfterMs: 100 });
    settle(s, ['quiet1', 'quiet2', 'quiet3'], 200, false);
    settle(s, ['late'], 200, true);
    for (const e of ['quiet1', 'quiet2', 'quiet3']) s.requeue(job(e));
    for (let i = 0; i < 3; i++) s.requeue(job('late'));
    const started = drain(s).map((f) => f.job.endpointId);
    expect(started.filter((e) => e.startsWith('quiet'))).toHaveLength(1);
    expect(started.filter((e) => e === 'late')).toHaveLength(3);
  });

  it('a request unanswered after slowAfterMs leaves the fast lane, frees its slot, and its endpoint starts no more there', async () => {
    const { s, hooks } = scheduler({ concurrency: 1, slowAfterMs: 30 });
    settle(s, ['h'], 1);
    s.requeue(job('h'));
    s.requeue(job('h'));
    const [hanging] = drain(s);
    s.sending(hanging!);
    await vi.waitFor(() => expect(hooks.room).toHaveBeenCalled());
    expect(s.slowLane).toBe(1);
    s.requeue(job('other'));
    // The freed fast slot goes to another endpoint; h's next job waits for the slow lane's silent half.
    const next = drain(s).map((f) => f.job.endpointId);
    expect(next).toContain('other');
    expect(next.filter((e) => e === 'h').length).toBeLessThanOrEqual(1);
  });

  it('requestSlots is the fast lane twice (its requests and those aged out of it) plus the slow lane', () => {
    expect(requestSlots({})).toBe(64 * 2 + 64);
    expect(requestSlots({ concurrency: 10, slowConcurrency: 3 })).toBe(23);
  });
});

describe('memory: the backlog stays in the outbox', () => {
  it('an endpoint not known to be fast keeps one ready job; scans pass over it and a rescan comes when it can take more', () => {
    const { s, hooks } = scheduler();
    expect(s.offer(job('n'))).toBe(true);
    expect(s.offer(job('n'))).toBe(false);
    expect(s.skipping()).toEqual(new Set(['n']));
    const [f] = drain(s);
    expect(hooks.rescan).toHaveBeenCalledTimes(1);
    s.sending(f!);
    s.answered(f!, 5, true);
  });

  it('a scan that passed over an endpoint and came back short asks for another at once when the endpoint took its jobs meanwhile', () => {
    const { s, hooks } = scheduler();
    settle(s, ['f'], 5);
    for (let i = 0; i < 2; i++) expect(s.offer(job('f'))).toBe(true);
    const skipped = s.skipping();
    expect(skipped.has('f')).toBe(true);
    // While the scan runs, f's ready jobs go out: f could take more, but nothing marked it left behind yet.
    expect(drain(s)).toHaveLength(2);
    hooks.rescan.mockClear();
    s.shortScan(skipped);
    expect(hooks.rescan).toHaveBeenCalledTimes(1);
  });

  it('a scan that came back short while a skipped endpoint still holds its ready jobs waits for it to take them', () => {
    const { s, hooks } = scheduler();
    settle(s, ['f'], 5);
    for (let i = 0; i < 2; i++) expect(s.offer(job('f'))).toBe(true);
    hooks.rescan.mockClear();
    s.shortScan(s.skipping());
    expect(hooks.rescan).not.toHaveBeenCalled();
    drain(s);
    expect(hooks.rescan).toHaveBeenCalledTimes(1);
  });

  it('a fast endpoint keeps what a scan brings, and is passed over once it holds perEndpointConcurrency', () => {
    const { s } = scheduler({ concurrency: 1 });
    settle(s, ['f'], 5);
    for (let i = 0; i < 5; i++) expect(s.offer(job('f'))).toBe(true);
    expect(s.queued).toBe(5);
    expect(s.skipping().has('f')).toBe(true);
  });

  it('jobs of endpoints whose part of the slow lane is full are handed back, and scans pass over them', () => {
    const { s } = scheduler({ concurrency: 1, slowConcurrency: 2, perEndpointConcurrency: 1, slowAfterMs: 100 });
    for (const e of ['q1', 'q2', 'q3']) settle(s, [e], 500, false);
    for (const e of ['q1', 'q2', 'q3']) s.requeue(job(e));
    expect(drain(s)).toHaveLength(1); // half of 2
    const back = s.evictBlocked();
    expect(back.map((j) => j.endpointId).sort()).toEqual(['q2', 'q3']);
    expect(s.queued).toBe(0);
    expect([...s.skipping()].sort()).toEqual(['q1', 'q2', 'q3']);
  });
});
