// ChainFollower read-ahead: while a range's blocks are emitted, the next range is read (one read ahead,
// no more); a read ahead that no longer fits (a reorg seen meanwhile) is dropped, its failure included,
// and the reorg is retracted; a stop while a read ahead hangs ends the sync at once.
import { describe, expect, it } from 'vitest';
import type { BlockHeader } from '../../src/actors/chain-listener/eth-schemas.ts';
import { ChainFollower, type ChainSource } from '../../src/actors/chain-listener/follower.ts';
import type { ChainBlockMessage, ChainLog } from '../../src/actors/chain-listener/messages.ts';
import { deferred, type Deferred } from '../../src/runtime/deferred.ts';

const hex32 = (n: number) => `0x${n.toString(16).padStart(64, '0')}`;

/** A chain with one log a block; `fork` rewrites the blocks from `forkFrom` on. Reads are recorded and may be held. */
class Chain {
  fork = 0;
  forkFrom = Number.POSITIVE_INFINITY;
  readonly reads: string[] = [];
  /** When set, a range read starting at this block waits for the deferred (and fails if it rejects). */
  hold = new Map<number, Deferred<void>>();
  constructor(public height: number) {}
  hash(n: number): string {
    return hex32((n >= this.forkFrom ? this.fork : 0) * 1_000_000 + n + 1);
  }
  header(n: number): BlockHeader | null {
    return n > this.height ? null : { number: n, hash: this.hash(n), parentHash: n === 0 ? hex32(0) : this.hash(n - 1), timestamp: n };
  }
  logs(n: number): ChainLog[] {
    const log = { address: `0x${'ab'.repeat(20)}`, topics: [hex32(7)], data: '0x', blockNumber: n, blockHash: this.hash(n) };
    return [{ ...log, transactionHash: hex32(2e6 + n), transactionIndex: 0, logIndex: 0, removed: false }];
  }
  get source(): ChainSource {
    return {
      headerByNumber: async (n) => this.header(n),
      headersByRange: async (from, to) => {
        this.reads.push(`${from}..${to}`);
        await this.hold.get(from)?.promise;
        return Array.from({ length: to - from + 1 }, (_, i) => this.header(from + i));
      },
      logsByRange: async (from, to) => Array.from({ length: to - from + 1 }, (_, i) => this.logs(from + i)).flat(),
      logsByBlockHash: async (h) => {
        for (let n = 0; n <= this.height; n++)
          if (this.hash(n) === h) {
            this.reads.push(`${n}`);
            return this.logs(n);
          }
        throw new Error(`unknown block ${h}`);
      },
    };
  }
}

/** A downstream that holds every message until the test lets it through. */
class Downstream {
  readonly messages: ChainBlockMessage[] = [];
  private gate: Deferred<void> | null = deferred<void>();
  emit = async (msg: ChainBlockMessage, signal: AbortSignal): Promise<void> => {
    const stopped = new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new Error('stopped')), { once: true }));
    while (this.gate) await Promise.race([this.gate.promise, stopped]);
    this.messages.push(msg);
  };
  /** Lets every message through from now on. */
  open(): void {
    const gate = this.gate;
    this.gate = null;
    gate?.resolve();
  }
  /** Holds the next messages again. */
  close(): void {
    this.gate ??= deferred<void>();
  }
}

function follower(down: Downstream): ChainFollower {
  const stored = new Map<number, ChainLog[]>();
  return new ChainFollower(
    {
      chainId: 1,
      confirmations: 0,
      maxReorgDepth: 16,
      backfillRange: 4,
      targetLogsPerRead: 1_000,
      startBlock: 0,
      emit: down.emit,
      persist: {
        append: async (block, logs) => void stored.set(block.number, [...logs]),
        retract: async (n) => void stored.delete(n),
        logs: async (n) => stored.get(n),
      },
      now: () => 0,
    },
    null,
  );
}

/** Lets pending promise callbacks and I/O callbacks run (no timer, no fixed wait). */
const drain = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

describe('ChainFollower read-ahead', () => {
  it('reads the next range while a range is emitted, and no further', async () => {
    const chain = new Chain(40);
    const down = new Downstream();
    const f = follower(down);
    f.noteHead(chain.header(40)!, 0);
    const done = f.sync(chain.source, new AbortController().signal);
    await drain();
    // Block 0 read alone (the first read), then blocks 1..2 read ahead while block 0 waits downstream.
    expect(chain.reads).toEqual(['0', '1..2']);
    expect(down.messages).toEqual([]);
    down.open();
    await done;
    expect(down.messages.map((m) => m.blockNumber)).toEqual(Array.from({ length: 41 }, (_, i) => i));
    expect(chain.reads.slice(0, 5)).toEqual(['0', '1..2', '3..6', '7..10', '11..14']);
  });

  it('drops a read ahead that no longer fits after a reorg, even a failed one, and retracts the orphans', async () => {
    const chain = new Chain(20);
    const down = new Downstream();
    down.open();
    const f = follower(down);
    f.noteHead(chain.header(20)!, 0);
    await f.sync(chain.source, new AbortController().signal);

    // The chain grows to 40: blocks 21..24 are read and held downstream, 25..28 read ahead and held.
    chain.height = 40;
    down.close();
    const held = deferred<void>();
    chain.hold.set(25, held);
    f.noteHead(chain.header(40)!, 0);
    const done = f.sync(chain.source, new AbortController().signal);
    await drain();
    expect(chain.reads.slice(-2)).toEqual(['21..24', '25..28']);
    // Meanwhile blocks 19.. are rewritten, and the read ahead fails.
    chain.fork = 1;
    chain.forkFrom = 19;
    f.noteHead(chain.header(40)!, 0); // another block 40: a reorg is suspected
    held.reject(new Error('the node failed this read'));
    down.open();
    await done;

    const second = down.messages.slice(21);
    expect(second.slice(0, 4).map((m) => [m.blockNumber, m.removed])).toEqual([21, 22, 23, 24].map((n) => [n, false]));
    expect(second.filter((m) => m.removed).map((m) => m.blockNumber)).toEqual([24, 23, 22, 21, 20, 19]);
    for (const m of second.filter((x) => x.removed)) expect(m.logs.map((l) => [l.blockHash, l.removed])).toEqual([[m.blockHash, true]]);
    const net = new Map<number, string>();
    for (const m of down.messages) {
      if (m.removed) net.delete(m.blockNumber);
      else net.set(m.blockNumber, m.blockHash);
    }
    expect([...net.keys()]).toEqual(Array.from({ length: 41 }, (_, i) => i));
    for (const [n, h] of net) expect(h).toBe(chain.hash(n));
  });

  it('stops at once while a read ahead hangs', async () => {
    const chain = new Chain(40);
    const down = new Downstream();
    const f = follower(down);
    chain.hold.set(1, deferred<void>()); // never settles
    const abort = new AbortController();
    f.noteHead(chain.header(40)!, 0);
    const done = f.sync(chain.source, abort.signal).catch((e: unknown) => e);
    await drain();
    expect(chain.reads).toEqual(['0', '1..2']);
    abort.abort();
    // The downstream gives up on the stop, as the listener's ask does; the hung read is not waited for.
    expect(await done).toMatchObject({ message: 'stopped' });
    expect(down.messages).toEqual([]);
  });
});
