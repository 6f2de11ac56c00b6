// splitPage: a backfill read's blocks become messages to the Matcher of at most maxLogs logs each, which
// together carry every log once in chain order, and whose progress never claims a block not yet sent whole.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chunkLogsOf, splitPage } from '../../src/actors/backfill/backfill.ts';

const blocksArb = fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 12 }).map((counts) =>
  counts.map((count, i) => ({
    number: 100 + i * 2,
    hash: `0x${(100 + i * 2).toString(16).padStart(64, '0')}`,
    timestamp: 1_700_000_000 + i,
    logs: Array.from({ length: count }, (_, j) => ({ logIndex: j, blockNumber: 100 + i * 2 }) as never),
  })),
);

describe('splitPage', () => {
  it('carries every log once, in order, in messages of at most maxLogs, with progress only past whole blocks', () => {
    fc.assert(
      fc.property(blocksArb, fc.integer({ min: 1, max: 50 }), fc.boolean(), (blocks, maxLogs, done) => {
        const before = { at: 99, end: 500 };
        const after = { at: 130, end: 500, ...(done ? { done: true as const } : {}) };
        const chunks = splitPage(blocks, maxLogs, before, after, 31);
        expect(chunks.length).toBeGreaterThan(0);
        const sent = chunks.flatMap((c) =>
          c.blocks.flatMap((b) => b.logs.map((l) => `${b.number}:${(l as { logIndex: number }).logIndex}`)),
        );
        expect(sent).toEqual(blocks.flatMap((b) => b.logs.map((_, j) => `${b.number}:${j}`)));
        let at = before.at;
        const sentOf = new Map<number, number>();
        for (const [i, c] of chunks.entries()) {
          expect(c.logs).toBe(c.blocks.reduce((n, b) => n + b.logs.length, 0));
          expect(c.logs).toBeLessThanOrEqual(maxLogs);
          for (const b of c.blocks) sentOf.set(b.number, (sentOf.get(b.number) ?? 0) + b.logs.length);
          if (i === chunks.length - 1) {
            expect(c.progress).toEqual(after);
            expect(c.blocksRead).toBe(31);
            break;
          }
          expect(c.progress.done).toBeUndefined();
          expect(c.blocksRead).toBe(0);
          expect(c.progress.at).toBeGreaterThanOrEqual(at);
          at = c.progress.at;
          // Every block at or below the progress is sent whole by now.
          for (const b of blocks) if (b.number <= at) expect(sentOf.get(b.number)).toBe(b.logs.length);
        }
      }),
    );
  });

  it('an empty read is one message that writes the read progress', () => {
    expect(splitPage([], 10, { at: 5, end: 9 }, { at: 9, end: 9, done: true }, 4)).toEqual([
      { blocks: [], logs: 0, progress: { at: 9, end: 9, done: true }, blocksRead: 4 },
    ]);
  });

  it('a message holds a tenth of a second at logsPerSec, at most pageLogs and at least one log', () => {
    expect(chunkLogsOf({ pageLogs: 500, logsPerSec: 1_000 })).toBe(100);
    expect(chunkLogsOf({ pageLogs: 50, logsPerSec: 1_000 })).toBe(50);
    expect(chunkLogsOf({ pageLogs: 500, logsPerSec: 3 })).toBe(1);
  });
});
