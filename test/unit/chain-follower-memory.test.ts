// ChainFollower memory: the reorg window keeps what it needs to detect and walk a reorg (number, hashes,
// timestamp, seenAt), never a log; a retraction reads the logs emitted for the orphaned block back from
// the cursor store (a real LevelDB), in the same process and after a restart; a store that lost them
// stops the follower with ETHHOOK_ERR_CURSOR_CORRUPT.
import { afterEach, describe, expect, it } from 'vitest';
import { isEthhookError } from '../../src/runtime/errors.ts';
import type { BlockHeader } from '../../src/actors/chain-listener/eth-schemas.ts';
import { ChainFollower, type ChainSource, type EmittedBlock } from '../../src/actors/chain-listener/follower.ts';
import type { ChainBlockMessage, ChainLog } from '../../src/actors/chain-listener/messages.ts';
import { CursorStore } from '../../src/store/cursors.ts';
import { tempDb } from '../support/chain-harness.ts';
import { LevelKv } from '../../src/store/level/kv.ts';

const CHAIN = 1;
const MAX_REORG_DEPTH = 4;
const hex32 = (n: number) => `0x${n.toString(16).padStart(64, '0')}`;

/** A chain whose block n on fork f has hash (f, n) and `logsPerBlock` logs. */
class Chain {
  fork = 0;
  forkFrom = Number.POSITIVE_INFINITY;
  constructor(
    public height: number,
    private readonly logsPerBlock: number,
  ) {}
  private forkOf(n: number): number {
    return n >= this.forkFrom ? this.fork : 0;
  }
  hash(n: number): string {
    return hex32(this.forkOf(n) * 1_000_000 + n + 1);
  }
  header(n: number): BlockHeader | null {
    if (n > this.height) return null;
    return { number: n, hash: this.hash(n), parentHash: n === 0 ? hex32(0) : this.hash(n - 1), timestamp: n };
  }
  logs(n: number): ChainLog[] {
    return Array.from({ length: this.logsPerBlock }, (_, logIndex) => ({
      address: `0x${'ab'.repeat(20)}`,
      topics: [hex32(7), hex32(n)],
      data: `0x${'cd'.repeat(64)}`,
      blockNumber: n,
      blockHash: this.hash(n),
      transactionHash: hex32(this.forkOf(n) * 1_000_000 + 500_000 + n),
      transactionIndex: 0,
      logIndex,
      removed: false,
    }));
  }
  /** Replaces the blocks from `from` on with a new fork of the same height. */
  reorg(from: number): void {
    this.fork++;
    this.forkFrom = from;
  }
  get source(): ChainSource {
    return {
      headerByNumber: async (n) => this.header(n),
      headersByRange: async (from, to) => Array.from({ length: to - from + 1 }, (_, i) => this.header(from + i)),
      logsByRange: async (from, to) => Array.from({ length: Math.min(to, this.height) - from + 1 }, (_, i) => this.logs(from + i)).flat(),
      logsByBlockHash: async (h) => {
        for (let n = 0; n <= this.height; n++) if (this.hash(n) === h) return this.logs(n);
        throw new Error(`unknown block ${h}`);
      },
    };
  }
}

const stores: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

async function cursorStore() {
  const store = await tempDb();
  stores.push(store);
  return new CursorStore<EmittedBlock, ChainLog>(new LevelKv(store.db));
}

function follower(
  cursors: CursorStore<EmittedBlock, ChainLog>,
  persisted: Awaited<ReturnType<typeof cursors.load>>,
  out: ChainBlockMessage[],
  logReads: number[] = [],
) {
  return new ChainFollower(
    {
      chainId: CHAIN,
      confirmations: 0,
      maxReorgDepth: MAX_REORG_DEPTH,
      backfillRange: 3,
      targetLogsPerRead: 12,
      startBlock: 0,
      emit: async (msg) => void out.push(structuredClone(msg)),
      persist: {
        append: (block, logs, floor, keep) => cursors.append(CHAIN, block, logs, floor, keep),
        retract: (n, floor) => cursors.retract(CHAIN, n, floor),
        logs: (n) => {
          logReads.push(n);
          return cursors.logs(CHAIN, n);
        },
      },
      now: () => 0,
    },
    persisted,
  );
}

/** The follower's reorg window, newest first (a private field, read for this test only). */
const windowOf = (f: ChainFollower): EmittedBlock[] => (f as unknown as { window: { newestFirst(): EmittedBlock[] } }).window.newestFirst();

const signal = new AbortController().signal;

async function follow(f: ChainFollower, chain: Chain): Promise<void> {
  f.noteHead(chain.header(chain.height)!, 0);
  await f.sync(chain.source, signal);
}

/** Checks the retractions undo the emitted blocks above `from`, newest first, with their logs. */
function expectRetracted(out: ChainBlockMessage[], emitted: ChainBlockMessage[], from: number, height: number): void {
  const retractions = out.filter((m) => m.removed);
  const orphans = emitted.filter((m) => m.blockNumber >= from).reverse();
  expect(retractions.map((m) => [m.blockNumber, m.blockHash])).toEqual(orphans.map((m) => [m.blockNumber, m.blockHash]));
  for (const [i, r] of retractions.entries()) {
    expect(r.logs).toHaveLength(5);
    expect(r.logs).toEqual(orphans[i]!.logs.map((l) => ({ ...l, removed: true })));
  }
  expect(out.filter((m) => !m.removed && m.blockNumber >= from).map((m) => m.blockNumber)).toEqual(
    Array.from({ length: height - from + 1 }, (_, i) => from + i),
  );
}

describe('ChainFollower memory', () => {
  it('keeps no log in its reorg window after emitting blocks with logs', async () => {
    const chain = new Chain(12, 5);
    const out: ChainBlockMessage[] = [];
    const f = follower(await cursorStore(), null, out);
    await follow(f, chain);
    expect(out.map((m) => m.logs.length)).toEqual(Array(13).fill(5));
    const window = windowOf(f);
    expect(window.map((b) => b.number)).toEqual([12, 11, 10, 9, 8]);
    for (const b of window) expect(Object.keys(b).sort()).toEqual(['hash', 'number', 'parentHash', 'seenAt', 'timestamp']);
  });

  it('loads the persisted window without logs', async () => {
    const chain = new Chain(12, 5);
    const cursors = await cursorStore();
    await follow(follower(cursors, null, []), chain);
    const persisted = await cursors.load(CHAIN, MAX_REORG_DEPTH + 1);
    expect(persisted!.blocks.map((b) => b.number)).toEqual([8, 9, 10, 11, 12]);
    for (const b of persisted!.blocks) expect(b).not.toHaveProperty('logs');
    for (const b of windowOf(follower(cursors, persisted, []))) expect(b).not.toHaveProperty('logs');
  });

  it('retracts orphaned blocks with the logs emitted for them, read back from the cursor store', async () => {
    const chain = new Chain(12, 5);
    const out: ChainBlockMessage[] = [];
    const logReads: number[] = [];
    const f = follower(await cursorStore(), null, out, logReads);
    await follow(f, chain);
    const emitted = out.splice(0);
    chain.reorg(10);
    await follow(f, chain);
    expect(logReads).toEqual([12, 11, 10]);
    expectRetracted(out, emitted, 10, 12);
  });

  it('after a restart, retracts with the logs emitted before it', async () => {
    const chain = new Chain(12, 5);
    const cursors = await cursorStore();
    const before: ChainBlockMessage[] = [];
    await follow(follower(cursors, null, before), chain);
    chain.reorg(9); // while the node is down
    const out: ChainBlockMessage[] = [];
    const restarted = follower(cursors, await cursors.load(CHAIN, MAX_REORG_DEPTH + 1), out);
    await follow(restarted, chain);
    expectRetracted(out, before, 9, 12);
    expect(restarted.processed).toBe(12);
  });

  it('stops with ETHHOOK_ERR_CURSOR_CORRUPT when the store lost the logs of a block to retract', async () => {
    const chain = new Chain(6, 2);
    const cursors = await cursorStore();
    const out: ChainBlockMessage[] = [];
    const f = follower(cursors, null, out);
    await follow(f, chain);
    (cursors as unknown as { logs: () => Promise<undefined> }).logs = async () => undefined;
    chain.reorg(6);
    const err = await follow(f, chain).catch((e: unknown) => e);
    expect(isEthhookError(err, 'ETHHOOK_ERR_CURSOR_CORRUPT')).toBe(true);
    expect(out.filter((m) => m.removed)).toEqual([]);
  });
});
