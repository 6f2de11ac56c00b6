/**
 * Persisted chain cursors: for each chain, the position (`next`: the next block to emit; `floor`: the
 * first block ever emitted) and the last emitted blocks (the reorg window, with what was emitted for
 * them, so a reorg that happens across a restart can still be retracted). Sublevel `cursors`, keys
 * `<chainId>!n` (position) and `<chainId>!b!<number, 16 digits>` (blocks).
 *
 * - `load(chainId, keep)` returns `{ next, floor, blocks }` (blocks ascending, the newest `keep`), or
 *   null for a chain never seen; blocks older than the newest `keep` are deleted on the way.
 * - `append(chainId, block, floor, keep)` records an emitted block, moves `next` past it and drops the
 *   block that fell out of the window, in one batch.
 * - `retract(chainId, number, floor)` forgets an orphaned block and moves `next` back to it, in one batch.
 * - `genesis(chainId)` / `setGenesis(chainId, hash)`: the hash of block 0 of the chain the cursor was
 *   built on (key `<chainId>!g`), so a listener can tell that its node now serves another chain.
 * - `clear(chainId)` forgets everything about a chain (a dev chain that is new at every start).
 */
import { sublevel, type Db } from './db.ts';

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

export class CursorStore<B extends CursorBlock> {
  private readonly level;

  constructor(db: Db) {
    this.level = sublevel<unknown>(db, 'cursors');
  }

  async load(chainId: number, keep: number): Promise<CursorState<B> | null> {
    const position = await this.level.get(`${chainId}!n`);
    if (!isPosition(position)) return null;
    const range = { gte: `${chainId}!b!`, lt: `${chainId}!b!\xff` };
    const blocks = (await this.level.values({ ...range, reverse: true, limit: keep }).all()) as B[];
    blocks.reverse();
    const oldest = blocks[0];
    if (oldest) await this.level.clear({ gte: range.gte, lt: `${chainId}!b!${pad(oldest.number)}` });
    return { next: position.next, floor: position.floor, blocks };
  }

  async append(chainId: number, block: B, floor: number, keep: number): Promise<void> {
    const ops: Array<{ type: 'put'; key: string; value: unknown } | { type: 'del'; key: string }> = [
      { type: 'put', key: `${chainId}!b!${pad(block.number)}`, value: block },
      { type: 'put', key: `${chainId}!n`, value: { next: block.number + 1, floor } },
    ];
    if (block.number - keep >= 0) ops.push({ type: 'del', key: `${chainId}!b!${pad(block.number - keep)}` });
    await this.level.batch(ops);
  }

  async retract(chainId: number, number: number, floor: number): Promise<void> {
    await this.level.batch([
      { type: 'del', key: `${chainId}!b!${pad(number)}` },
      { type: 'put', key: `${chainId}!n`, value: { next: number, floor } },
    ]);
  }

  async genesis(chainId: number): Promise<string | undefined> {
    const hash = await this.level.get(`${chainId}!g`);
    return typeof hash === 'string' ? hash : undefined;
  }

  async setGenesis(chainId: number, hash: string): Promise<void> {
    await this.level.put(`${chainId}!g`, hash);
  }

  async clear(chainId: number): Promise<void> {
    await this.level.clear({ gte: `${chainId}!`, lt: `${chainId}!\xff` });
  }
}
