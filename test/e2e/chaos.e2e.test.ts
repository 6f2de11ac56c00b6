// Chaos end to end: a short `everything` run (chaos/), in process: one real node process following a
// real anvil through a TCP proxy, delivering to a real receiver, while it is killed -9 and restarted,
// its chain connections are cut, the chain reorgs, the receiver fails and hangs, its actors are
// restarted and stopped through the admin API and its Matcher's mailbox is flooded — all interleaved.
// It must lose nothing and deliver nothing wrong (every check of chaos/invariant.ts at zero), the node
// must never exit unless a fault killed it and must exit 0 on the final SIGTERM, and every kind of fault
// must really have happened. Then the same check, run on doctored copies of what the receiver saw, must
// fail: a log the receiver never got, a delivery dropped, a retry with another body, a bad signature, a
// retraction missing. (test/unit/chaos-invariant.test.ts proves every check fails on crafted runs.)
import { afterAll, describe, expect, it } from 'vitest';
import { checkInvariant, type Observation } from '../../chaos/invariant.ts';
import type { ChaosResult } from '../../chaos/run.ts';
import { killAllNodes } from '../support/node-process.ts';
import { shortChaosRun } from './chaos-run.ts';
import { body, succeeded, type WebhookBody } from './e2e-chain.ts';

let result: ChaosResult | undefined;

afterAll(async () => {
  // runChaos stops everything it started; this is the last resort if it threw half-way.
  await killAllNodes();
});

describe('chaos: every fault at once on one node', () => {
  it('loses nothing, delivers nothing wrong, never crashes, and every kind of fault was injected', async () => {
    result = await shortChaosRun('level');
    expect(result.kinds).not.toContain('store-outage');
  }, 120_000);
});

describe('the invariant check fails when the invariant is broken', () => {
  const observed = (): Observation => {
    if (!result) throw new Error('the chaos run did not complete');
    return result.observation;
  };

  it('holds on what the run observed', () => {
    expect(checkInvariant(observed()).ok).toBe(true);
  });

  it('a canonical log the receiver never got is lost once per subscription', () => {
    const obs = observed();
    const unseen = { ...obs.canonical[0]!, logIndex: '0x3e7' };
    const v = checkInvariant({ ...obs, canonical: [...obs.canonical, unseen] });
    expect(v.ok).toBe(false);
    expect(v.lost).toBe(obs.subscriptions.length);
    expect(v.expected).toBe(v.delivered + v.lost);
  });

  it('a delivery that never reached the receiver is lost', () => {
    const obs = observed();
    const victim = obs.requests.find((r) => succeeded(r) && body(r).type === 'log.created' && isCanonical(obs, body(r)))!;
    const v = checkInvariant({ ...obs, requests: obs.requests.filter((r) => r.webhookId !== victim.webhookId) });
    expect(v.ok).toBe(false);
    expect(v.lost).toBe(1);
  });

  it('a retry carrying another body is caught', () => {
    const obs = observed();
    const first = obs.requests.find(succeeded)!;
    const v = checkInvariant({ ...obs, requests: [...obs.requests, { ...first, body: first.body.replace('"log.', '"log.x') }] });
    expect(v.ok).toBe(false);
    expect(v.bodyMismatches).toBe(1);
  });

  it('a signature that did not verify is caught', () => {
    const obs = observed();
    const v = checkInvariant({ ...obs, requests: obs.requests.map((r, i) => (i === 0 ? { ...r, verified: false } : r)) });
    expect(v.ok).toBe(false);
    expect(v.badSignatures).toBe(1);
  });

  it('an orphaned log delivered without its log.removed is caught', () => {
    const obs = observed();
    // Without the run's log.removed deliveries, and with one more delivered log taken off the chain
    // (as a reorg would), every orphan misses its retraction.
    const victim = obs.requests.find((r) => succeeded(r) && body(r).type === 'log.created' && isCanonical(obs, body(r)))!;
    const isVictim = (l: Observation['canonical'][number]) =>
      l.blockHash === body(victim).data.blockHash && Number.parseInt(l.logIndex, 16) === body(victim).data.logIndex;
    const v = checkInvariant({
      ...obs,
      canonical: obs.canonical.filter((l) => !isVictim(l)),
      orphaned: [...obs.orphaned, ...obs.canonical.filter(isVictim)],
      requests: obs.requests.filter((r) => !(succeeded(r) && body(r).type === 'log.removed')),
    });
    expect(v.ok).toBe(false);
    expect(v.orphanedDelivered).toBeGreaterThanOrEqual(1);
    expect(v.missingRemovals).toBe(v.orphanedDelivered);
  });
});

function isCanonical(obs: Observation, b: WebhookBody): boolean {
  return obs.canonical.some((l) => l.blockHash === b.data.blockHash && Number.parseInt(l.logIndex, 16) === b.data.logIndex);
}
