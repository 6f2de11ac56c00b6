/**
 * Persisted chain cursors: for each chain, the position (`next`: the next block to emit; `floor`: the
 * first block ever emitted), the last emitted blocks (the reorg window: header fields only) and, apart
 * from them, the logs emitted for each of those blocks, so that a reorg that happens across a restart
 * can still be retracted with exactly what was emitted. Space `cursors` (src/store/kv.ts), keys:
 *
 * - `<chainId>!n`: the position `{ next, floor }`;
 * - `<chainId>!b!<number, 16 digits>`: an emitted block as the window keeps it (a few hundred bytes);
 * - `<chainId>!l!<number, 16 digits>`: the logs emitted for that block (an array, possibly empty);
 * - `<chainId>!g`: the hash of block 0 of the chain the cursor was built on;
 * - `<chainId>!s`: `"latest"` after a reset to the head, until the listener pins it (no position then).
 *
 * A block and its logs are written and deleted together, in one batch, so one is stored exactly when
 * the other is.
 *
 * - `load(chainId, keep)` returns `{ next, floor, blocks }` (blocks ascending, the newest `keep`, without
 *   their logs), or null for a chain never seen; blocks older than the newest `keep` and their logs are
 *   deleted on the way. Memory: `keep` block records, never a log.
 * - `append(chainId, block, logs, floor, keep)` records an emitted block and its logs, moves `next` past
 *   it and drops the block (and logs) that fell out of the window, in one batch; `appendOps` are those
 *   ops, for a batch of the caller's (and `retractOps` `retract`'s); `write(ops)` writes such ops.
 * - `position(chainId)`: the position alone, read without writing anything.
 * - `logs(chainId, number)`: the logs emitted for a block still in the window (undefined otherwise); read
 *   when the block is retracted. `hashes(chainId, numbers)`: those blocks' hashes (a backfilled page is
 *   checked against them).
 * - `retract(chainId, number, floor)` forgets an orphaned block and its logs and moves `next` back to it,
 *   in one batch.
 * - `genesis(chainId)` / `setGenesis(chainId, hash)`: block 0's hash, so a listener can tell that its
 *   node now serves another chain.
 * - `setPosition(chainId, position)`: the position of a chain with nothing emitted yet (the listener
 *   pins its start block before it reports ready); drops a pending `latest`.
 * - `pendingStart(chainId)`: `"latest"` when a reset asked for the head and no position is pinned yet.
 * - `clear(chainId)` forgets everything about a chain (a dev chain that is new at every start).
 * - `reset(chainId, from)`: clear, then start at block `from` (a position) or at the head (`"latest"`,
 *   pinned by the listener at its next session). The operators' way out of ETHHOOK_ERR_CHAIN_MISMATCH
 *   and ETHHOOK_ERR_REORG_TOO_DEEP (runbooks/chains.md).
 */
import type { Kv, KvOp, KvSpace } from './kv.ts';

export interface CursorBlock {
  number: number;
  hash: string;
}

export interface CursorPosition {
  next: number;
  floor: number;
}

export interface CursorState<B extends CursorBlock> extends CursorPosition {
  blocks: B[];
}

function isPosition(v: unknown): v is CursorPosition {
  const p = v as CursorPosition | undefined;
  return typeof p === 'object' && p !== null && Number.isSafeInteger(p.next) && Number.isSafeInteger(p.floor);
}

const pad = (n: number): string => n.toString().padStart(16, '0');

export class CursorStore<B extends CursorBlock, L = unknown> {
  private readonly records: KvSpace<unknown>;

  constructor(private readonly kv: Kv) {
    this.records = kv.space('cursors');
  }

  async load(chainId: number, keep: number): Promise<CursorState<B> | null> {
    const position = await this.records.get(`${chainId}!n`);
    if (!isPosition(position)) return null;
    const blocks = (await this.records.values({ gte: `${chainId}!b!`, lt: `${chainId}!b!\xff`, reverse: true, limit: keep })) as B[];
    blocks.reverse();
    const oldest = blocks[0];
    if (oldest) {
      for (const kind of ['b', 'l'])
        await this.records.clear({ gte: `${chainId}!${kind}!`, lt: `${chainId}!${kind}!${pad(oldest.number)}` });
    }
    return { next: position.next, floor: position.floor, blocks };
  }

  /** The chain's position as stored, or undefined: a read only (a follower's view of the ingesting instance's progress). */
  async position(chainId: number): Promise<CursorPosition | undefined> {
    const position = await this.records.get(`${chainId}!n`);
    return isPosition(position) ? position : undefined;
  }

  async append(chainId: number, block: B, logs: readonly L[], floor: number, keep: number): Promise<void> {
    await this.kv.batch(this.appendOps(chainId, block, logs, floor, keep));
  }

  /** `append`'s ops, for a batch of the caller's (the Matcher writes them with the block's jobs). */
  appendOps(chainId: number, block: B, logs: readonly L[], floor: number, keep: number): KvOp[] {
    const ops: KvOp[] = [
      this.records.putOp(`${chainId}!b!${pad(block.number)}`, block),
      this.records.putOp(`${chainId}!l!${pad(block.number)}`, logs),
      this.records.putOp(`${chainId}!n`, { next: block.number + 1, floor }),
    ];
    const dropped = block.number - keep;
    if (dropped >= 0) ops.push(this.records.delOp(`${chainId}!b!${pad(dropped)}`), this.records.delOp(`${chainId}!l!${pad(dropped)}`));
    return ops;
  }

  /** The hashes of the emitted blocks numbered `numbers` still in the window (undefined for the others). */
  async hashes(chainId: number, numbers: readonly number[]): Promise<Array<string | undefined>> {
    const blocks = await this.records.getMany(numbers.map((n) => `${chainId}!b!${pad(n)}`));
    return blocks.map((b) => (b as CursorBlock | undefined)?.hash);
  }

  async logs(chainId: number, number: number): Promise<L[] | undefined> {
    const logs = await this.records.get(`${chainId}!l!${pad(number)}`);
    return Array.isArray(logs) ? (logs as L[]) : undefined;
  }

  async retract(chainId: number, number: number, floor: number): Promise<void> {
    await this.kv.batch(this.retractOps(chainId, number, floor));
  }

  /** Writes ops `appendOps` or `retractOps` built, in one batch. */
  async write(ops: readonly KvOp[]): Promise<void> {
    await this.kv.batch(ops);
  }

  /** `retract`'s ops, for a batch of the caller's. */
  retractOps(chainId: number, number: number, floor: number): KvOp[] {
    return [
      this.records.delOp(`${chainId}!b!${pad(number)}`),
      this.records.delOp(`${chainId}!l!${pad(number)}`),
      this.records.putOp(`${chainId}!n`, { next: number, floor }),
    ];
  }

  async genesis(chainId: number): Promise<string | undefined> {
    const hash = await this.records.get(`${chainId}!g`);
    return typeof hash === 'string' ? hash : undefined;
  }

  async setGenesis(chainId: number, hash: string): Promise<void> {
    await this.records.put(`${chainId}!g`, hash);
  }

  async setPosition(chainId: number, position: CursorPosition): Promise<void> {
    await this.kv.batch([this.records.putOp(`${chainId}!n`, position), this.records.delOp(`${chainId}!s`)]);
  }

  async pendingStart(chainId: number): Promise<'latest' | undefined> {
    return (await this.records.get(`${chainId}!s`)) === 'latest' ? 'latest' : undefined;
  }

  async clear(chainId: number): Promise<void> {
    await this.records.clear({ gte: `${chainId}!`, lt: `${chainId}!\xff` });
  }

  async reset(chainId: number, from: number | 'latest'): Promise<void> {
    await this.clear(chainId);
    if (from === 'latest') await this.records.put(`${chainId}!s`, 'latest');
    else await this.records.put(`${chainId}!n`, { next: from, floor: from });
  }
}
