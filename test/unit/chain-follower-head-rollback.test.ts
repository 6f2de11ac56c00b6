// ChainFollower when the head goes back to a block it already saw (a late block orphaned, the head back on
// its parent, seen by a poll): emitted blocks above that head are unknown to the node, not orphaned, so
// nothing is retracted until another block appears at their height; the same head polled again is no
// change and costs no read.
import { describe, expect, it } from 'vitest';
import type { BlockHeader } from '../../src/actors/chain-listener/eth-schemas.ts';
import { ChainFollower, type ChainSource } from '../../src/actors/chain-listener/follower.ts';
import type { ChainBlockMessage } from '../../src/actors/chain-listener/messages.ts';
import { memoryFollower } from '../support/follower.ts';

const hash = (n: number, fork = 0) => `0x${(fork * 1000 + n + 1).toString(16).padStart(64, '0')}`;
const header = (n: number, fork = 0): BlockHeader => ({
  number: n,
  hash: hash(n, fork),
  parentHash: n === 0 ? hash(0, 9) : hash(n - 1),
  timestamp: n,
});

/** A chain of `height + 1` blocks without logs (block `forkAt`, when set, of fork 1); counts the reads. */
function source(chain: { height: number; forkAt?: number }, reads: string[]): ChainSource {
  const byNumber = (n: number) => (n <= chain.height ? header(n, n === chain.forkAt ? 1 : 0) : null);
  return {
    async headerByNumber(n) {
      reads.push(`header ${n}`);
      return byNumber(n);
    },
    async headersByRange(from, to) {
      reads.push(`headers ${from}..${to}`);
      return Array.from({ length: to - from + 1 }, (_, i) => byNumber(from + i));
    },
    async logsByRange(from, to) {
      reads.push(`logs ${from}..${to}`);
      return [];
    },
    async logsByBlockHash(h) {
      reads.push(`logs ${h}`);
      return [];
    },
  };
}

const follower = (confirmations: number, out: ChainBlockMessage[]): ChainFollower =>
  memoryFollower(out, { confirmations, maxReorgDepth: 2, backfillRange: 1 });

const signal = new AbortController().signal;

describe('ChainFollower head rollback', () => {
  it('waits when the head goes back to its already-seen parent, and retracts once another block takes the height', async () => {
    const chain: { height: number; forkAt?: number } = { height: 4 };
    const reads: string[] = [];
    const out: ChainBlockMessage[] = [];
    const f = follower(0, out);
    for (let n = 0; n <= 4; n++) {
      f.noteHead(header(n), 0);
      await f.sync(source(chain, reads), signal);
    }
    expect(f.processed).toBe(4);

    chain.height = 3; // block 4 orphaned, no replacement yet: the node's head is block 3 again
    f.noteHead(header(3), 0);
    await f.sync(source(chain, reads), signal);
    expect(out.every((m) => !m.removed)).toBe(true);
    expect(f.processed).toBe(4);

    chain.height = 4; // another block 4: now the node has the height, with another hash
    chain.forkAt = 4;
    f.noteHead(header(4, 1), 0);
    await f.sync(source(chain, reads), signal);

    expect(out.map((m) => [m.blockNumber, m.removed, m.blockHash])).toEqual([
      [0, false, hash(0)],
      [1, false, hash(1)],
      [2, false, hash(2)],
      [3, false, hash(3)],
      [4, false, hash(4)],
      [4, true, hash(4)],
      [4, false, hash(4, 1)],
    ]);
    expect(f.processed).toBe(4);
  });

  it('does not suspect a rollback to an already-seen head above the emitted tip, nor the same head polled again', async () => {
    const chain = { height: 4 };
    const out: ChainBlockMessage[] = [];
    const f = follower(2, out);
    for (let n = 0; n <= 4; n++) {
      f.noteHead(header(n), 0);
      await f.sync(source(chain, []), signal);
    }
    expect(f.processed).toBe(2);

    chain.height = 3;
    const reads: string[] = [];
    f.noteHead(header(3), 0); // back on block 3, still above the emitted tip 2: nothing emitted is orphaned
    await f.sync(source(chain, reads), signal);
    f.noteHead(header(3), 0); // the same head polled again
    await f.sync(source(chain, reads), signal);

    expect(reads).toEqual([]);
    expect(out.every((m) => !m.removed)).toBe(true);
    expect(f.processed).toBe(2);
  });
});
