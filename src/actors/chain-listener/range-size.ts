/**
 * RangeSize: how many blocks the follower's next read asks for, so that one read is expected to return
 * about `targetLogs` logs and stays within what the node accepts. A pure state machine, fed with what
 * each read returned.
 *
 * - It starts at 1 block. After a read of `blocks` blocks that returned `logs` logs, the next size is
 *   the number of blocks that hold `targetLogs` at that density, `floor(targetLogs * blocks / logs)`:
 *   it shrinks at once, and grows at most twofold per read, so a sparse stretch does not leap into a
 *   dense one with a full range. Never below 1 block, never above `ceiling`.
 * - `ceiling` starts at `maxBlocks` (backfillRange). A range the node refused (or whose answer exceeded
 *   maxFrameBytes) lowers it to half that range, down to 1; it doubles again, up to `maxBlocks`, after
 *   GROW_AFTER reads in a row went through (a refusal may cost a reconnect).
 * - One block is the smallest read: a block with more logs than `targetLogs` is still read whole.
 * - Blocks with logs: the headers of a range are read before its logs, and a header's `logsBloom` says
 *   whether the block has any. `keep(hasLogs)` cuts the range before its logs are asked for, so that it
 *   holds no more blocks with logs than `targetLogs` at the logs per such block of the last read that
 *   had any (`perLogged`); before any such read, one. So a long sparse stretch that grew the range to
 *   `ceiling` blocks does not fetch a dense stretch's logs in one answer (up to maxFrameBytes of JSON,
 *   parsed at once): the first block with logs is read alone, and the next reads are sized from it.
 *   A header without a bloom counts as a block with logs.
 */

/** Reads without refusal before the ceiling doubles again. */
const GROW_AFTER = 8;

export class RangeSize {
  private size = 1;
  private ceiling: number;
  /** Reads in a row since the last refusal or ceiling change. */
  private fitted = 0;
  /** Logs per block with logs in the last read that had such blocks; null before. */
  private perLogged: number | null = null;

  constructor(
    readonly maxBlocks: number,
    readonly targetLogs: number,
  ) {
    this.ceiling = maxBlocks;
  }

  /** Blocks for the next read. */
  get blocks(): number {
    return this.size;
  }

  /**
   * How many of a range's leading blocks to read (at least 1), from whether each has logs (its bloom;
   * undefined when the node sent none).
   */
  keep(hasLogs: ReadonlyArray<boolean | undefined>): number {
    const allowed =
      this.perLogged === null
        ? 1
        : this.perLogged === 0
          ? Number.POSITIVE_INFINITY
          : Math.max(1, Math.floor(this.targetLogs / this.perLogged));
    let logged = 0;
    for (let i = 0; i < hasLogs.length; i++) {
      if (hasLogs[i] === false) continue;
      if (++logged > allowed) return Math.max(1, i);
    }
    return hasLogs.length;
  }

  /** A read of `blocks` blocks (`logged` of them with logs by their blooms) returned `logs` logs. */
  read(blocks: number, logs: number, logged = blocks): void {
    if (logged > 0) this.perLogged = logs / logged;
    if (++this.fitted >= GROW_AFTER) {
      this.ceiling = Math.min(this.maxBlocks, this.ceiling * 2);
      this.fitted = 0;
    }
    const fit = logs === 0 ? Number.POSITIVE_INFINITY : Math.floor((this.targetLogs * blocks) / logs);
    this.size = Math.max(1, Math.min(fit, this.size * 2, this.ceiling));
  }

  /** The node refused a range of `blocks` blocks as too large. */
  refused(blocks: number): void {
    this.ceiling = Math.max(1, Math.floor(blocks / 2));
    this.size = Math.min(this.size, this.ceiling);
    this.fitted = 0;
  }
}
