// The shared delivery limits contract (src/store/delivery-limits.ts), run on each engine: the
// PostgreSQL one and the in-memory model (delivery-limits.contract.test.ts). Times are the engine's
// clock, so the checks allow for the time the calls take.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeliveryLimits } from '../../src/store/delivery-limits.ts';
import { waitFor } from '../support/kernel.ts';

export interface LimitsContractStore {
  /** The store as instance `owner` sees it. */
  instance(owner: string): DeliveryLimits;
  close(): Promise<void>;
}

export function describeDeliveryLimitsContract(engine: string, open: () => Promise<LimitsContractStore>): void {
  describe(`delivery limits contract: ${engine}`, () => {
    let store: LimitsContractStore;
    let a: DeliveryLimits;
    let b: DeliveryLimits;
    beforeEach(async () => {
      store = await open();
      a = store.instance('node-a');
      b = store.instance('node-b');
    });
    afterEach(() => store.close());

    describe('token bucket', () => {
      it('a new bucket starts full; a take grants whole tokens, never more than asked or than there are', async () => {
        const slow = { ratePerSec: 0.001, burst: 5 };
        expect(await a.take('ep', slow, 3)).toEqual({ granted: 3, waitMs: 0 });
        expect(await a.take('ep', slow, 3)).toEqual({ granted: 2, waitMs: 0 });
        const empty = await a.take('ep', slow, 1);
        expect(empty.granted).toBe(0);
        // One token at 0.001/s takes 1000 s.
        expect(empty.waitMs).toBeGreaterThan(990_000);
        expect(empty.waitMs).toBeLessThanOrEqual(1_000_000);
      });

      it('instances share ONE bucket per endpoint: what one takes the other does not get', async () => {
        const slow = { ratePerSec: 0.001, burst: 4 };
        expect((await a.take('shared', slow, 3)).granted).toBe(3);
        expect((await b.take('shared', slow, 3)).granted).toBe(1);
        expect((await b.take('shared', slow, 1)).granted).toBe(0);
        // Another endpoint has a bucket of its own.
        expect((await b.take('other', slow, 3)).granted).toBe(3);
      });

      it('refills at the rate: the wait named is the time a token takes, and after it a token is there', async () => {
        const cfg = { ratePerSec: 2, burst: 1 };
        expect((await a.take('refill', cfg, 1)).granted).toBe(1);
        const refused = await b.take('refill', cfg, 1);
        expect(refused.granted).toBe(0);
        expect(refused.waitMs).toBeGreaterThan(0);
        expect(refused.waitMs).toBeLessThanOrEqual(500);
        await waitFor(async () => (await a.take('refill', cfg, 1)).granted === 1, 2_000);
      });

      it('takes racing from three instances never hand out more than rate·t + burst', async () => {
        const cfg = { ratePerSec: 40, burst: 5 };
        const instances = [a, b, store.instance('node-c')];
        const started = performance.now();
        let granted = 0;
        // For a second at least, and until the bucket has refilled (a loaded machine may starve the loop).
        const racing = () => performance.now() - started < 1_000 || (granted <= cfg.burst && performance.now() - started < 10_000);
        await Promise.all(
          instances.map(async (limits) => {
            while (racing()) {
              granted += (await limits.take('race', cfg, 2)).granted;
              await new Promise((r) => setImmediate(r));
            }
          }),
        );
        const elapsedS = (performance.now() - started) / 1000;
        expect(granted).toBeLessThanOrEqual(Math.ceil(cfg.ratePerSec * elapsedS + cfg.burst));
        expect(granted).toBeGreaterThan(cfg.burst);
      });

      it('a changed rate applies from the next take on', async () => {
        expect((await a.take('change', { ratePerSec: 0.001, burst: 1 }, 1)).granted).toBe(1);
        const slow = await a.take('change', { ratePerSec: 0.001, burst: 1 }, 1);
        expect(slow.waitMs).toBeGreaterThan(900_000);
        const fast = await a.take('change', { ratePerSec: 1_000, burst: 1 }, 1);
        // At 1,000/s a token takes a millisecond: granted, or named a wait that short.
        expect(fast.granted === 1 || fast.waitMs <= 2).toBe(true);
      });

      it('bad arguments are refused before the store is touched', async () => {
        await expect(a.take('ep', { ratePerSec: 0, burst: 1 }, 1)).rejects.toThrow(RangeError);
        await expect(a.take('ep', { ratePerSec: 1, burst: 0.5 }, 1)).rejects.toThrow(RangeError);
        await expect(a.take('ep', { ratePerSec: 1, burst: 1 }, 0)).rejects.toThrow(RangeError);
      });
    });

    describe('breakers', () => {
      it('a breaker one instance opens is listed for every instance, with its cool-down left and its opener', async () => {
        expect(await b.openBreakers()).toEqual([]);
        await a.openBreaker('down', 60_000);
        const [seen, ...rest] = await b.openBreakers();
        expect(rest).toEqual([]);
        expect(seen).toMatchObject({ endpointId: 'down', cooldownMs: 60_000, openedBy: 'node-a' });
        expect(seen!.remainingMs).toBeGreaterThan(55_000);
        expect(seen!.remainingMs).toBeLessThanOrEqual(60_000);
      });

      it('opening it again keeps the later end; a longer cool-down from another instance takes over', async () => {
        await a.openBreaker('down', 60_000);
        await b.openBreaker('down', 1_000);
        const [kept] = await b.openBreakers();
        expect(kept).toMatchObject({ openedBy: 'node-a', cooldownMs: 60_000 });
        expect(kept!.remainingMs).toBeGreaterThan(55_000);
        await b.openBreaker('down', 120_000);
        const [longer] = await a.openBreakers();
        expect(longer).toMatchObject({ openedBy: 'node-b', cooldownMs: 120_000 });
        expect(longer!.remainingMs).toBeGreaterThan(115_000);
      });

      it('once its cool-down is over it stays listed, with 0 left (probing), until an instance closes it', async () => {
        await a.openBreaker('probing', 30);
        await waitFor(async () => (await b.openBreakers())[0]?.remainingMs === 0, 2_000);
        await b.closeBreaker('probing');
        expect(await a.openBreakers()).toEqual([]);
      });

      it("forget drops the endpoint's bucket and breaker", async () => {
        const slow = { ratePerSec: 0.001, burst: 2 };
        expect((await a.take('gone', slow, 2)).granted).toBe(2);
        await a.openBreaker('gone', 60_000);
        await b.forget('gone');
        expect(await a.openBreakers()).toEqual([]);
        expect((await a.take('gone', slow, 2)).granted).toBe(2);
      });
    });
  });
}
