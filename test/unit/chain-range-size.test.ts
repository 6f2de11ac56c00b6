// Range reads sized by logs: RangeSize (the pure rule) and the ChainFollower using it against a chain
// with a dense stretch. A range shrinks at once when a read returns many logs, never below one block
// (a block with more logs than the target is still read whole), and grows back, at most twofold per
// read, as logs thin out, up to backfillRange; a refused range lowers the ceiling until reads go through.
import { describe, expect, it } from 'vitest';
import type { BlockHeader } from '../../src/actors/chain-listener/eth-schemas.ts';
import type { ChainSource } from '../../src/actors/chain-listener/follower.ts';
import type { ChainBlockMessage, ChainLog } from '../../src/actors/chain-listener/messages.ts';
import { RangeSize } from '../../src/actors/chain-listener/range-size.ts';
import { memoryFollower } from '../support/follower.ts';

describe('RangeSize', () => {
  it('starts at one block and doubles while reads come back empty, up to maxBlocks', () => {
    const size = new RangeSize(100, 2_000);
    const seen = [size.blocks];
    for (let i = 0; i < 8; i++) {
      size.read(size.blocks, 0);
      seen.push(size.blocks);
    }
    expect(seen).toEqual([1, 2, 4, 8, 16, 32, 64, 100, 100]);
  });

  it('shrinks at once to the blocks expected to hold the target, never below one block', () => {
    const size = new RangeSize(2_000, 2_000);
    for (let i = 0; i < 12; i++) size.read(size.blocks, 0);
    expect(size.blocks).toBe(2_000);
    size.read(2_000, 100_000); // 50 logs a block
    expect(size.blocks).toBe(40);
    size.read(40, 40_000); // 1,000 logs a block
    expect(size.blocks).toBe(2);
    size.read(2, 50_000); // one block holds more than the target: read it alone
    expect(size.blocks).toBe(1);
    size.read(1, 30_000);
    expect(size.blocks).toBe(1);
  });

  it('grows back at most twofold per read as logs thin out', () => {
    const size = new RangeSize(2_000, 2_000);
    size.read(1, 30_000);
    const seen: number[] = [];
    for (let i = 0; i < 12; i++) {
      size.read(size.blocks, size.blocks * 10); // 10 logs a block: 200 blocks hold the target
      seen.push(size.blocks);
    }
    expect(seen).toEqual([2, 4, 8, 16, 32, 64, 128, 200, 200, 200, 200, 200]);
  });

  it('a refused range lowers the ceiling to half of it; the ceiling doubles back after 8 reads in a row', () => {
    const size = new RangeSize(64, 1_000_000);
    for (let i = 0; i < 7; i++) size.read(size.blocks, 0);
    expect(size.blocks).toBe(64);
    size.refused(64);
    expect(size.blocks).toBe(32);
    size.refused(32);
    expect(size.blocks).toBe(16);
    const seen: number[] = [];
    for (let i = 0; i < 16; i++) {
      size.read(size.blocks, 0);
      seen.push(size.blocks);
    }
    expect(seen).toEqual([16, 16, 16, 16, 16, 16, 16, 32, 32, 32, 32, 32, 32, 32, 32, 64]);
    size.refused(3);
    expect(size.blocks).toBe(1);
  });
});

const hex32 = (n: number) => `0x${n.toString(16).padStart(64, '0')}`;
const header = (n: number): BlockHeader => ({ number: n, hash: hex32(n + 1), parentHash: hex32(n), timestamp: n });

interface Read {
  from: number;
  blocks: number;
  logs: number;
}

/** A chain of `height + 1` blocks whose block n has `logsAt(n)` logs; records each read. */
function chain(height: number, logsAt: (n: number) => number, reads: Read[]): ChainSource {
  const logs = (n: number): ChainLog[] =>
    Array.from({ length: logsAt(n) }, (_, logIndex) => ({
      address: `0x${'ab'.repeat(20)}`,
      topics: [hex32(7)],
      data: '0x',
      blockNumber: n,
      blockHash: header(n).hash,
      transactionHash: hex32(1e6 + n),
      transactionIndex: 0,
      logIndex,
      removed: false,
    }));
  const byNumber = (n: number) => (n <= height ? header(n) : null);
  return {
    headerByNumber: async (n) => byNumber(n),
    headersByRange: async (from, to) => Array.from({ length: to - from + 1 }, (_, i) => byNumber(from + i)),
    logsByRange: async (from, to) => {
      const out = Array.from({ length: to - from + 1 }, (_, i) => logs(from + i)).flat();
      reads.push({ from, blocks: to - from + 1, logs: out.length });
      return out;
    },
    logsByBlockHash: async (h) => {
      const n = Number.parseInt(h, 16) - 1;
      reads.push({ from: n, blocks: 1, logs: logs(n).length });
      return logs(n);
    },
  };
}

describe('ChainFollower range reads', () => {
  it('read the first block with logs after an empty stretch alone (blooms), never a dense stretch in one answer', async () => {
    // Blocks 0..299 empty (their blooms say so), 1,000 logs in each block from 300; target 2,000.
    const logsAt = (n: number) => (n >= 300 ? 1_000 : 0);
    const reads: Read[] = [];
    const out: ChainBlockMessage[] = [];
    const f = memoryFollower(out, { maxReorgDepth: 4, backfillRange: 512, targetLogsPerRead: 2_000 });
    f.noteHead(header(399), 0);
    const plain = chain(399, logsAt, reads);
    const withBlooms: ChainSource = {
      ...plain,
      headerByNumber: async (n) => {
        const h = await plain.headerByNumber(n);
        return h && { ...h, hasLogs: logsAt(n) > 0 };
      },
      headersByRange: async (from, to) => (await plain.headersByRange(from, to)).map((h) => h && { ...h, hasLogs: logsAt(h.number) > 0 }),
    };
    await f.sync(withBlooms, new AbortController().signal);

    expect(out.map((m) => m.blockNumber)).toEqual(Array.from({ length: 400 }, (_, i) => i));
    expect(out.reduce((n, m) => n + m.logs.length, 0)).toBe(100_000);
    // Never more than the target's worth of logs in one answer (the old sizing read 256 dense blocks at once).
    expect(Math.max(...reads.map((r) => r.logs))).toBeLessThanOrEqual(2_000);
    const first = reads.find((r) => r.logs > 0)!;
    expect(first.from + first.blocks - 1).toBe(300);
  });

  it('shrink in a dense stretch, read a block heavier than the target alone, and grow back after it', async () => {
    // One log a block, but 500 in each of blocks 100..139 and 3,000 in each of 140..144; target 1,000.
    const logsAt = (n: number) => (n >= 100 && n < 140 ? 500 : n >= 140 && n < 145 ? 3_000 : 1);
    const reads: Read[] = [];
    const out: ChainBlockMessage[] = [];
    const f = memoryFollower(out, { maxReorgDepth: 4, backfillRange: 128, targetLogsPerRead: 1_000 });
    f.noteHead(header(799), 0);
    await f.sync(chain(799, logsAt, reads), new AbortController().signal);

    expect(out.map((m) => m.blockNumber)).toEqual(Array.from({ length: 800 }, (_, i) => i));
    expect(reads.map((r) => r.from)).toEqual(reads.map((_, i) => (i === 0 ? 0 : reads[i - 1]!.from + reads[i - 1]!.blocks)));
    // Growing while sparse; the read that runs into the dense stretch is the one large read (a stretch
    // is only known dense once read: such a read is bounded by maxFrameBytes, not by the target).
    expect(reads.slice(0, 7).map((r) => r.blocks)).toEqual([1, 2, 4, 8, 16, 32, 64]);
    expect(reads[6]!.logs).toBeGreaterThan(10_000);
    // Inside the stretch: two blocks, 1,000 logs, a read.
    const inside = reads.filter((r) => r.from > 63 + 64 && r.from + r.blocks <= 140);
    expect(inside.length).toBeGreaterThan(3);
    for (const r of inside) expect(r).toMatchObject({ blocks: 2, logs: 1_000 });
    // Blocks heavier than the target are read alone, then the range grows back, doubling, to backfillRange.
    for (const n of [142, 143, 144]) expect(reads.find((r) => r.from === n)).toEqual({ from: n, blocks: 1, logs: 3_000 });
    const heavy = reads.findIndex((r) => r.from === 144);
    const after = reads.slice(heavy + 1, heavy + 9).map((r) => r.blocks);
    expect(after).toEqual([1, 2, 4, 8, 16, 32, 64, 128]);
    expect(Math.max(...reads.map((r) => r.blocks))).toBe(128);
  });

  it('cuts a range before the block with logs that would pass the target (blooms), the first one read alone', () => {
    const r = new RangeSize(2_000, 2_000);
    // A sparse stretch grows the range; nothing with logs yet: the first block with logs is read alone.
    for (let i = 0; i < 12; i++) r.read(r.blocks, 0, 0);
    expect(r.blocks).toBe(2_000);
    const range = Array.from({ length: 2_000 }, (_, i) => (i < 500 ? false : true));
    expect(r.keep(range)).toBe(501);
    // 1,000 logs in that block: two blocks with logs make the target.
    r.read(501, 1_000, 1);
    expect(r.keep(range)).toBe(502);
    expect(r.keep(Array.from({ length: 10 }, () => true))).toBe(2);
    // Blocks without logs never count; a header without a bloom does.
    expect(r.keep([false, false, true, undefined, true])).toBe(4);
    // A block with more logs than the target is still read.
    r.read(1, 50_000, 1);
    expect(r.keep([true, true])).toBe(1);
    // Sparse logs per block: many blocks with logs fit.
    r.read(10, 10, 10);
    expect(r.keep(Array.from({ length: 3_000 }, () => true))).toBe(2_000);
  });
});
