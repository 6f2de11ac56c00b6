// Per-endpoint guards (breaker + bucket + streak with metrics) and the in-memory holds.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { EndpointGuards } from '../../src/actors/deliverer/endpoint-guard.ts';
import { Holds } from '../../src/actors/deliverer/holds.ts';
import { delivererMetrics } from '../../src/actors/deliverer/metrics.ts';

describe('EndpointGuards', () => {
  it('rate limit first: a rate-limited request never takes the half-open probe', () => {
    const g = new EndpointGuards({ circuitBreaker: { failureThreshold: 1, cooldownMs: 100 } });
    expect(g.admit('ep', 1, 0)).toEqual({ go: true });
    expect(g.record('ep', 'retryable', 'HTTP 503', 0)).toEqual({ transition: 'opened', persist: { since: 0, failures: 1 } });
    expect(g.admit('ep', 1, 50)).toEqual({ go: false, why: 'breaker', waitMs: 50 });
    // Cool-down over, but no token yet (1/s): refused for the rate, and the breaker is still open.
    expect(g.admit('ep', 1, 500)).toEqual({ go: false, why: 'rate', waitMs: 500 });
    expect(g.state('ep')).toBe('open');
    expect(g.admit('ep', 1, 1_000)).toEqual({ go: true });
    expect(g.state('ep')).toBe('half-open');
    expect(g.record('ep', 'success', 'HTTP 200', 1_010)).toEqual({ transition: 'closed', persist: null });
  });

  it('any answer but a retryable one proves the endpoint up; only a 2xx resets the disable streak', () => {
    const g = new EndpointGuards({ circuitBreaker: { failureThreshold: 2 }, disable: { afterMs: 1_000, minFailures: 3 } });
    g.record('ep', 'retryable', 'HTTP 503', 0);
    g.record('ep', 'permanent', 'HTTP 400', 10);
    // The streak is to be stored when it starts and when it reaches minFailures, not on every failure.
    expect(g.record('ep', 'retryable', 'HTTP 503', 20)).toEqual({ persist: { since: 0, failures: 3 } });
    expect(g.state('ep')).toBe('closed');
    expect(g.record('ep', 'permanent', 'HTTP 400', 1_000)).toEqual({ disableReason: expect.stringContaining('4 failed attempts') });
  });

  // After a restart the stored streak resumes: the endpoint is disabled once it has failed for afterMs
  // since the streak's first failure, counting the stored failures.
  it('a stored streak resumes after a restart; one running in memory is kept', () => {
    const g = new EndpointGuards({ disable: { afterMs: 1_000, minFailures: 3 } });
    g.seedStreak('ep', { since: 0, failures: 3 });
    g.seedStreak('ep', { since: 500, failures: 1 });
    expect(g.record('ep', 'retryable', 'HTTP 503', 999)).toEqual({});
    expect(g.record('ep', 'retryable', 'HTTP 503', 1_000).disableReason).toMatch(
      /^failing since 1970-01-01T00:00:00.000Z \(5 failed attempts/,
    );
    expect(g.record('ep', 'success', 'HTTP 200', 1_001)).toEqual({ persist: null });
    expect(g.record('ep', 'success', 'HTTP 200', 1_002)).toEqual({});
  });

  it('an operator closes an open breaker at once, or lets the next request be its probe', () => {
    const g = new EndpointGuards({ circuitBreaker: { failureThreshold: 1, cooldownMs: 480_000 } });
    g.record('ep', 'retryable', 'HTTP 503', 0);
    expect(g.view('ep')).toEqual({
      state: 'open',
      openUntil: 480_000,
      cooldownMs: 480_000,
      consecutiveFailures: 0,
      window: { calls: 0, failures: 0 },
    });
    expect(g.operate('ep', 'probe', 1_000)).toBeUndefined();
    expect(g.admit('ep', undefined, 1_000)).toEqual({ go: true });
    expect(g.state('ep')).toBe('half-open');
    expect(g.admit('ep', undefined, 1_001)).toMatchObject({ go: false, why: 'breaker' });
    expect(g.operate('ep', 'close', 1_002)).toBe('closed');
    expect(g.view('ep')).toEqual({
      state: 'closed',
      openUntil: null,
      cooldownMs: null,
      consecutiveFailures: 0,
      window: { calls: 0, failures: 0 },
    });
    expect(g.admit('ep', undefined, 1_003)).toEqual({ go: true });
    expect(g.operate('ep', 'close', 1_004)).toBeUndefined();
  });

  it('a changed rate limit rebuilds the bucket; removing it lets everything through', () => {
    const g = new EndpointGuards();
    expect(g.admit('ep', 1, 0)).toEqual({ go: true });
    expect(g.admit('ep', 1, 0).go).toBe(false);
    expect(g.admit('ep', 5, 0)).toEqual({ go: true });
    for (let i = 0; i < 10; i++) expect(g.admit('ep', undefined, 0)).toEqual({ go: true });
  });

  it('keeps circuit_breaker_state and circuit_breaker_opens_total, labelled by endpoint id', async () => {
    const registry = new Registry();
    const g = new EndpointGuards({ circuitBreaker: { failureThreshold: 1, cooldownMs: 10 } }, delivererMetrics(registry));
    g.admit('ep_a', undefined, 0);
    expect(await registry.metrics()).toContain('circuit_breaker_state{endpoint="ep_a"} 0');
    g.record('ep_a', 'retryable', 'timeout', 0);
    expect(await registry.metrics()).toContain('circuit_breaker_state{endpoint="ep_a"} 2');
    g.admit('ep_a', undefined, 10);
    expect(await registry.metrics()).toContain('circuit_breaker_state{endpoint="ep_a"} 1');
    expect(await registry.metrics()).toContain('circuit_breaker_opens_total 1');
    g.forget('ep_a');
    expect(await registry.metrics()).not.toContain('endpoint="ep_a"');
  });
});

describe('Holds', () => {
  const job = (id: string) => ({ id });

  it('rate holds release one job per interval; breaker holds release all', () => {
    const h = new Holds<{ id: string }>(100);
    for (const id of ['a', 'b', 'c']) h.add('ep1', job(id), 'rate', 100, 50);
    for (const id of ['x', 'y']) h.add('ep2', job(id), 'breaker', 100);
    expect(h.size).toBe(5);
    expect(h.nextRelease()).toBe(100);
    expect(h.releaseDue(99)).toEqual([]);
    expect(
      h
        .releaseDue(100)
        .map((j) => j.id)
        .sort(),
    ).toEqual(['a', 'x', 'y']);
    expect(h.nextRelease()).toBe(150);
    expect(h.releaseDue(150).map((j) => j.id)).toEqual(['b']);
    expect(h.releaseDue(200).map((j) => j.id)).toEqual(['c']);
    expect(h.size).toBe(0);
    expect(h.nextRelease()).toBeUndefined();
  });

  it('releaseEndpoint frees an endpoint at once; error holds are per job', () => {
    const h = new Holds<{ id: string }>(100);
    h.add('ep1', job('a'), 'breaker', 1_000);
    h.add('ep1', job('e'), 'error', 10);
    expect(h.releaseEndpoint('ep1').map((j) => j.id)).toEqual(['a']);
    expect(h.releaseDue(10).map((j) => j.id)).toEqual(['e']);
  });

  it('refuses beyond its capacity', () => {
    const h = new Holds<{ id: string }>(2);
    expect(h.add('ep', job('a'), 'paused', 1)).toBe(true);
    expect(h.add('ep', job('b'), 'paused', 1)).toBe(true);
    expect(h.add('ep', job('c'), 'paused', 1)).toBe(false);
    h.clear();
    expect(h.size).toBe(0);
  });
});
