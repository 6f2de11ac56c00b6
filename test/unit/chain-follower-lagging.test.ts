// ChainFollower and a node that lags behind what was emitted (a failover to a lagging backend, a
// provider restarted behind): a block the node does not have is never evidence of a reorg. Nothing is
// retracted, no ReorgTooDeep, however far behind; emission resumes once the node has caught up; a real
// reorg (another hash at a height the node has) is still retracted while the node lags above it.
import { describe, expect, it } from 'vitest';
import type { BlockHeader } from '../../src/actors/chain-listener/eth-schemas.ts';
import { ChainFollower, type ChainSource } from '../../src/actors/chain-listener/follower.ts';
import type { ChainBlockMessage } from '../../src/actors/chain-listener/messages.ts';
import { memoryFollower } from '../support/follower.ts';

const hash = (n: number, fork = 0) => `0x${(fork * 100_000 + n + 1).toString(16).padStart(64, '0')}`;

/** One chain whose blocks from `forkFrom` on belong to fork 1; the node has blocks up to `height`. */
interface Node {
  height: number;
  forkFrom?: number;
  /** Answer null for every block, whatever the height (a backend that has not synced anything yet). */
  blank?: boolean;
}
const forkOf = (node: Node, n: number) => (node.forkFrom !== undefined && n >= node.forkFrom ? 1 : 0);
const header = (node: Node, n: number): BlockHeader => ({
  number: n,
  hash: hash(n, forkOf(node, n)),
  parentHash: n === 0 ? hash(0, 9) : hash(n - 1, forkOf(node, n - 1)),
  timestamp: n,
});

function source(node: Node): ChainSource {
  const byNumber = (n: number) => (n <= node.height && !node.blank ? header(node, n) : null);
  return {
    headerByNumber: async (n) => byNumber(n),
    headersByRange: async (from, to) => Array.from({ length: to - from + 1 }, (_, i) => byNumber(from + i)),
    logsByRange: async () => [],
    logsByBlockHash: async () => [],
  };
}

const follower = (out: ChainBlockMessage[]): ChainFollower => memoryFollower(out);

const signal = new AbortController().signal;

async function follow(f: ChainFollower, node: Node): Promise<void> {
  f.noteHead(header(node, node.height), 0);
  await f.sync(source(node), signal);
}

describe('ChainFollower and a lagging node', () => {
  it('retracts nothing when the node restarts 40 and then 100 blocks behind the emitted tip, and resumes once it caught up', async () => {
    const out: ChainBlockMessage[] = [];
    const f = follower(out);
    const node: Node = { height: 150 };
    await follow(f, node);
    expect(f.processed).toBe(150);

    for (const behind of [40, 100]) {
      node.height = 150 - behind; // same hashes, fewer blocks
      await follow(f, node);
      node.height++;
      await follow(f, node); // the lagging node's next head extends its last
    }
    expect(out.filter((m) => m.removed)).toEqual([]);
    expect(f.processed).toBe(150);

    for (const height of [60, 120, 149, 150, 155, 160]) await follow(f, { height });
    expect(out.filter((m) => m.removed)).toEqual([]);
    expect(out.map((m) => m.blockNumber)).toEqual(Array.from({ length: 161 }, (_, i) => i));
  });

  it('does not count a block the node answers null for as orphaned, even at a height under its head', async () => {
    const out: ChainBlockMessage[] = [];
    const f = follower(out);
    const node: Node = { height: 20 };
    await follow(f, node);
    node.blank = true; // a backend behind a load balancer that says head 21 and has nothing
    f.noteHead({ ...header(node, 21), parentHash: hash(99, 5) }, 0);
    await f.sync(source(node), signal);
    expect(out.filter((m) => m.removed)).toEqual([]);
    expect(f.processed).toBe(20);
  });

  // Two backends behind one URL: the one asked for single headers lags (null for the emitted tip), the one
  // that answers ranges leads on a fork. The follower cannot tell; it waits for the next head instead of
  // reading and checking again in a loop.
  it('waits for the next head when a leading range disagrees with a tip the lagging node does not have', async () => {
    const out: ChainBlockMessage[] = [];
    const f = follower(out);
    const node: Node = { height: 20 };
    await follow(f, node);
    const ahead: Node = { height: 25, forkFrom: 21 };
    let singles = 0;
    const split: ChainSource = {
      ...source(ahead),
      headerByNumber: async (n) => {
        singles++;
        return n <= 19 ? header(node, n) : null;
      },
      headersByRange: async (from, to) => Array.from({ length: to - from + 1 }, (_, i) => header({ height: 25, forkFrom: 20 }, from + i)),
    };
    f.noteHead(header({ height: 25, forkFrom: 20 }, 25), 0);
    await f.sync(split, signal);
    expect(singles).toBeLessThan(30);
    expect(out.filter((m) => m.removed)).toEqual([]);
    expect(f.processed).toBe(20);
  });

  it('still retracts a real reorg below a lagging head: another hash at a height the node has', async () => {
    const out: ChainBlockMessage[] = [];
    const f = follower(out);
    const node: Node = { height: 30 };
    await follow(f, node);
    node.forkFrom = 25; // blocks 25.. replaced, and the node is only at 27 of the new branch
    node.height = 27;
    await follow(f, node);
    expect(out.filter((m) => m.removed).map((m) => m.blockNumber)).toEqual([30, 29, 28, 27, 26, 25]);
    expect(out.slice(-3).map((m) => [m.blockNumber, m.blockHash])).toEqual([
      [25, hash(25, 1)],
      [26, hash(26, 1)],
      [27, hash(27, 1)],
    ]);
    expect(f.processed).toBe(27);
  });
});
