// BackfillPace: a chain's backfills take at most blocksPerSec blocks and requestsPerSec calls per second,
// and hand at most logsPerSec logs to the Matcher.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BackfillPace } from '../../src/actors/backfill/pace.ts';

describe('BackfillPace', () => {
  it('lets the first read go at once and the next after its cost at the slower of the two rates', () => {
    const pace = new BackfillPace(100, 10, 1_000);
    expect(pace.readWaitMs(0)).toBe(0);
    pace.chargeRead(50, 1, 0);
    // 50 blocks at 100/s: 500 ms; 1 call at 10/s: 100 ms.
    expect(pace.readWaitMs(0)).toBe(500);
    expect(pace.readWaitMs(400)).toBe(100);
    expect(pace.readWaitMs(500)).toBe(0);
  });

  it('time spent idle is not saved up: a read after a pause costs from that moment', () => {
    const pace = new BackfillPace(100, 10, 1_000);
    pace.chargeRead(10, 1, 0);
    pace.chargeRead(10, 5, 10_000);
    expect(pace.readWaitMs(10_000)).toBe(500);
  });

  it('over any run of reads, made as soon as allowed, blocks and calls stay within their rates plus one read', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5_000 }),
        fc.integer({ min: 1, max: 100 }),
        fc.array(fc.record({ blocks: fc.integer({ min: 1, max: 2_000 }), requests: fc.integer({ min: 1, max: 200 }) }), {
          minLength: 1,
          maxLength: 50,
        }),
        (blocksPerSec, requestsPerSec, reads) => {
          const pace = new BackfillPace(blocksPerSec, requestsPerSec, 1e9);
          let now = 0;
          let blocks = 0;
          let requests = 0;
          for (const r of reads) {
            now += pace.readWaitMs(now);
            pace.chargeRead(r.blocks, r.requests, now);
            blocks += r.blocks;
            requests += r.requests;
          }
          const last = reads.at(-1)!;
          expect(blocks - last.blocks).toBeLessThanOrEqual((now * blocksPerSec) / 1000 + 1e-6);
          expect(requests - last.requests).toBeLessThanOrEqual((now * requestsPerSec) / 1000 + 1e-6);
        },
      ),
    );
  });

  it('a read waits on the blocks and calls, a message to the Matcher on the logs alone', () => {
    const pace = new BackfillPace(1_000, 100, 500);
    pace.chargeRead(1_000, 1, 0);
    pace.chargeLogs(100, 0);
    // 1,000 blocks: 1 s; 1 call: 10 ms; 100 logs at 500/s: 200 ms.
    expect(pace.readWaitMs(0)).toBe(1_000);
    expect(pace.logsWaitMs(0)).toBe(200);
    pace.chargeLogs(50, 200);
    expect(pace.logsWaitMs(200)).toBe(100);
    expect(pace.readWaitMs(200)).toBe(800);
  });

  it('over any run of messages, sent as soon as allowed, the logs stay within their rate plus one message', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.array(fc.integer({ min: 0, max: 1_000 }), { minLength: 1, maxLength: 50 }),
        (logsPerSec, sends) => {
          const pace = new BackfillPace(1e9, 1e9, logsPerSec);
          let now = 0;
          let logs = 0;
          for (const n of sends) {
            now += pace.logsWaitMs(now);
            pace.chargeLogs(n, now);
            logs += n;
          }
          expect(logs - sends.at(-1)!).toBeLessThanOrEqual((now * logsPerSec) / 1000 + 1e-6);
        },
      ),
    );
  });
});
