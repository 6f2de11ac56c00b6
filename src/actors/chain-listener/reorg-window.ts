/**
 * The reorg window: the last emitted blocks of one chain, oldest first, each linked to the previous by
 * its parent hash. Capacity is `maxReorgDepth + 1` so that, after a reorg `maxReorgDepth` deep, the
 * common ancestor is still inside. `floor` is the first block ever emitted: below it nothing needs
 * undoing, so a reorg that orphans every block of a window that reaches down to `floor` is not "too deep".
 */
import { EthhookError } from '../../runtime/errors.ts';

export interface LinkedBlock {
  number: number;
  hash: string;
  parentHash: string;
}

export class ReorgWindow<B extends LinkedBlock> {
  private readonly blocks: B[];

  constructor(
    readonly capacity: number,
    initial: readonly B[] = [],
  ) {
    this.blocks = initial.slice(-capacity);
  }

  get size(): number {
    return this.blocks.length;
  }

  get tip(): B | undefined {
    return this.blocks[this.blocks.length - 1];
  }

  /** The block at height `n`, if it is in the window. */
  at(n: number): B | undefined {
    const first = this.blocks[0];
    return first === undefined ? undefined : this.blocks[n - first.number];
  }

  /** Appends the next block; it must extend the tip (same parent hash, next number). */
  push(block: B): void {
    const tip = this.tip;
    if (tip && (block.number !== tip.number + 1 || block.parentHash !== tip.hash)) {
      throw new EthhookError('ETHHOOK_ERR_CHAIN_INCONSISTENT', 'block does not extend the reorg window tip', {
        tip: tip.number,
        block: block.number,
      });
    }
    this.blocks.push(block);
    if (this.blocks.length > this.capacity) this.blocks.shift();
  }

  pop(): B | undefined {
    return this.blocks.pop();
  }

  /** Newest first: the blocks of the window, for the walk back to a common ancestor. */
  newestFirst(): B[] {
    return this.blocks.slice().reverse();
  }
}
