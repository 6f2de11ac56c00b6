/**
 * ChainFollower: the ingestion algorithm of one chain, free of sockets and actors, so that property
 * tests can drive it against a simulated chain.
 *
 * - `noteHead(header, seenAt)` records a head (from `newHeads`, a poll or a heartbeat). A head that does
 *   not extend the previous one (a reorg, heads missed while disconnected, or the head back on an older
 *   block), or one below the emitted tip, or at it with another hash, marks a suspected reorg: the tip is
 *   checked against the node.
 * - `sync(source, signal)` emits every block up to `head - confirmations` that was not emitted yet, in
 *   order, one `emit` per block (which resolves only once the next actor acknowledged it), then persists
 *   the block. It never skips a number: the next block is always `next`, which only moves after a
 *   persisted emit (or back, after a persisted retraction). With `persist.appendOps` (and `retractOps`)
 *   the message carries the cursor's ops for the block (`cursor`), and a receiver that writes them in
 *   the same transaction as its own writes for the block says so (emit resolves true): then they are
 *   not written again. So the block's jobs and the cursor move together: a block whose jobs committed
 *   is in the cursor's reorg window, and its reorg retracts them, whatever stopped the listener.
 * - Blocks are read in ranges (`eth_getLogs` over the range + the headers in a batch + the range's last
 *   header again to be sure the chain did not move meanwhile) sized by RangeSize (range-size.ts): about
 *   `targetLogsPerRead` logs per read, 1 to `backfillRange` blocks, halved when the node (or
 *   maxFrameBytes) refuses a range, and cut after the headers are read so that it holds no more blocks
 *   with logs (by their blooms) than the target allows. A single block is read by hash (`eth_getLogs { blockHash }`), with the
 *   header from `newHeads` when it is known.
 * - While a range's blocks are emitted, the next range is read ahead (one read at most). It is used only
 *   if it starts at `next` and extends the tip; otherwise (a reorg suspected, a block that did not
 *   extend the tip) it is dropped once settled. Every read is settled before another one starts and
 *   before `sync` returns (unless the listener stopped), so no read outlives its successor.
 * - Reorgs: a block whose parent hash is not the tip's hash, or a suspicious head, starts a walk back
 *   through the reorg window comparing hashes with the node's canonical ones. Only a different hash at a
 *   height the node has is evidence of a reorg: a block the node does not have (above its head, or
 *   answered `null`) is unknown, never orphaned, so a node that lags behind the emitted tip (a
 *   failover to a lagging backend, a head back on an older block) retracts nothing: the follower waits
 *   until the node has the tip's height again. With evidence, every window block above the common
 *   ancestor is orphaned (they descend from the block that differs) and retracted newest first
 *   (`removed: true`, with the logs emitted for them, read back from the cursor store), each persisted;
 *   emission resumes at the common ancestor + 1. Evidence and no ancestor in a full window:
 *   ETHHOOK_ERR_REORG_TOO_DEEP, fatal. Logs missing from the store for an orphaned block:
 *   ETHHOOK_ERR_CURSOR_CORRUPT, fatal (the block cannot be retracted as it was emitted).
 * - A range read while the chain moved throws ETHHOOK_ERR_CHAIN_INCONSISTENT; the caller syncs again. A
 *   block without logs whose header's `logsBloom` has bits set throws ETHHOOK_ERR_RPC_INCOMPLETE (the
 *   node answered less than it has): it is read again, never emitted empty.
 * - With several providers (the source's optional members, pool-source.ts): nothing above the source's
 *   `ceiling()` is emitted, a read is emitted only once `confirm` passes (else the follower waits for
 *   the next head), and the first hash difference of a reorg walk counts as evidence only once
 *   `corroborate` agrees. A source may cap the range size (`maxBlockRange`).
 *
 * Memory, by design:
 * - the reorg window: `maxReorgDepth + 1` EmittedBlocks (number, hash, parent hash, timestamp, seenAt; a
 *   few hundred bytes each), never a log; the logs emitted for them stay in the store;
 * - the head cache: `confirmations + 16` headers;
 * - logs: two ranges at most, the one being emitted and the one read ahead. Each is expected to hold
 *   about `targetLogsPerRead` logs, and its `eth_getLogs` answer is at most maxFrameBytes (a larger one is
 *   refused and the range halved); a single block with more logs than the target is still one read.
 */
import type { KvOp } from '../../store/kv.ts';
import { EthhookError, isEthhookError } from '../../runtime/errors.ts';
import type { CursorState } from '../../store/cursors.ts';
import type { BlockHeader } from './eth-schemas.ts';
import type { ChainBlockMessage, ChainLog } from './messages.ts';
import type { RpcErrorKind } from './metrics.ts';
import { RangeSize } from './range-size.ts';
import { ReorgWindow } from './reorg-window.ts';

/** An emitted block as the reorg window remembers it (and the cursor store persists it): no logs. */
export interface EmittedBlock extends BlockHeader {
  seenAt: number;
}

/** A block as read from the node, with its logs, until it is emitted. */
export interface ReadBlock extends EmittedBlock {
  logs: ChainLog[];
}

/**
 * Block-level reads the follower needs from a node. The optional members are what a chain with several
 * providers adds (pool-source.ts); a single node has none of them.
 */
export interface ChainSource {
  headerByNumber(n: number): Promise<BlockHeader | null>;
  /** Headers from..to in few round trips; null for a block the node does not have. May throw RANGE_TOO_LARGE. */
  headersByRange(from: number, to: number): Promise<Array<BlockHeader | null>>;
  /** Throws ETHHOOK_ERR_RPC_RANGE_TOO_LARGE when the node refuses the range. */
  logsByRange(from: number, to: number): Promise<ChainLog[]>;
  logsByBlockHash(hash: string): Promise<ChainLog[]>;
  /** The largest block range this source reads at once. */
  readonly maxBlockRange?: number | undefined;
  /** The highest block that may be emitted now (a quorum of providers has it). */
  ceiling?(): number | undefined;
  /** Whether a block read may be emitted (enough providers show its hash); false = wait. May throw. */
  confirm?(header: BlockHeader): Promise<boolean>;
  /**
   * Whether a reorg seen at height n (`canonical` where `emitted` was emitted) is to be acted on; false =
   * wait. Throws ETHHOOK_ERR_PROVIDER_DISAGREES when the other providers still show `emitted`.
   */
  corroborate?(n: number, emitted: string, canonical: string): Promise<boolean>;
}

export interface FollowerOptions {
  chainId: number;
  confirmations: number;
  maxReorgDepth: number;
  backfillRange: number;
  /** The logs one range read is sized to return (RangeSize). */
  targetLogsPerRead: number;
  startBlock: number | 'latest';
  /**
   * Resolves once the next actor acknowledged the message (retrying is the caller's business): true
   * when it wrote the message's `cursor` ops with its own writes for the block, so they are not written
   * again here.
   */
  emit(msg: ChainBlockMessage, signal: AbortSignal): Promise<boolean | void>;
  persist: {
    append(block: EmittedBlock, logs: readonly ChainLog[], floor: number, keep: number): Promise<void>;
    retract(number: number, floor: number): Promise<void>;
    /** The ops of `append` and `retract`, sent with the block (its `cursor`) when given; `write` writes them when the receiver did not. */
    appendOps?(block: EmittedBlock, logs: readonly ChainLog[], floor: number, keep: number): KvOp[];
    retractOps?(number: number, floor: number): KvOp[];
    write?(ops: KvOp[]): Promise<void>;
    /** The logs emitted for a block of the window; undefined when the store has none for it. */
    logs(number: number): Promise<ChainLog[] | undefined>;
  };
  onHead?(head: number): void;
  onProcessed?(processed: number): void;
  onReorg?(depth: number): void;
  onProblem?(kind: RpcErrorKind, error: EthhookError): void;
  now(): number;
}

interface CachedHead {
  header: BlockHeader;
  seenAt: number;
}

/** A range being read while the previous one is emitted. */
interface ReadAhead {
  from: number;
  /** The hash the range's first block must have as parent: the last block of the range before it. */
  parentHash: string;
  blocks: Promise<ReadBlock[]>;
  /** Resolves (never rejects) once the read is over. */
  settled: Promise<unknown>;
}

/** How many recent `newHeads` headers are kept for the single-block fast path, beyond `confirmations`. */
const HEAD_CACHE_SLACK = 16;

export class ChainFollower {
  private readonly window: ReorgWindow<EmittedBlock>;
  private readonly heads = new Map<number, CachedHead>();
  private readonly rangeSize: RangeSize;
  private next: number | null;
  private floor: number | null;
  private headNumber: number | null = null;
  private suspect = false;

  constructor(
    private readonly options: FollowerOptions,
    persisted: CursorState<EmittedBlock> | null,
  ) {
    this.window = new ReorgWindow(options.maxReorgDepth + 1, persisted?.blocks ?? []);
    this.next = persisted?.next ?? (options.startBlock === 'latest' ? null : options.startBlock);
    this.floor = persisted?.floor ?? null;
    this.rangeSize = new RangeSize(options.backfillRange, options.targetLogsPerRead);
  }

  /** The last block acknowledged downstream, or null before the first one. */
  get processed(): number | null {
    return this.next === null ? null : this.next - 1;
  }

  get head(): number | null {
    return this.headNumber;
  }

  /**
   * Fixes where emission starts, once a head was noted: the persisted or configured block, else
   * (`latest`) the confirmed `head` (the last head noted unless told). Returns the next block to emit.
   */
  pin(head: number | null = this.headNumber): number {
    this.next ??= Math.max(0, (head ?? 0) - this.options.confirmations);
    return this.next;
  }

  noteHead(header: BlockHeader, seenAt: number): void {
    // Only the last head seen again is "no change". An older cached head seen again means the chain got
    // shorter (a late block orphaned, the head back on its parent) or the node lags: the tip is checked.
    const unchanged = this.headNumber === header.number && this.heads.get(header.number)?.header.hash === header.hash;
    this.headNumber = header.number;
    this.options.onHead?.(header.number);
    if (unchanged) return; // a poll that saw no change
    for (const n of this.heads.keys()) if (n >= header.number) this.heads.delete(n);
    // A head that does not extend the last one seen means a reorg or missed heads: the emitted tip
    // may be orphaned even when the head is far above it, so it is checked before going on.
    const extendsLast = this.heads.get(header.number - 1)?.header.hash === header.parentHash;
    if (!extendsLast) this.heads.clear();
    this.heads.set(header.number, { header, seenAt });
    this.heads.delete(header.number - this.options.confirmations - HEAD_CACHE_SLACK);
    const tip = this.window.tip;
    if (!tip) return;
    if (!extendsLast || header.number < tip.number || (header.number === tip.number && header.hash !== tip.hash)) {
      this.suspect = true;
    }
  }

  /**
   * Emits everything confirmed and not yet emitted. Resolves when caught up with the last noted head
   * (`caught-up`), when the node does not have the next block yet (`missing`), or when the source says
   * to wait (`waiting`: a read not confirmed, a reorg walk that cannot tell yet).
   */
  async sync(source: ChainSource, signal: AbortSignal): Promise<SyncOutcome> {
    let ahead: ReadAhead | null = null;
    try {
      for (;;) {
        throwIfStopped(signal);
        if (this.suspect) {
          await ahead?.settled;
          ahead = null;
          // Blocks the node does not have yet and nothing that differs: check again at the next head
          // rather than read on (a node that lags here and leads there would keep this loop busy).
          if (!(await this.resolveReorg(source, signal))) return 'waiting';
          this.suspect = false;
        }
        if (this.headNumber === null) return 'caught-up';
        const confirmed = this.headNumber - this.options.confirmations;
        const target = Math.min(confirmed, source.ceiling?.() ?? Number.POSITIVE_INFINITY);
        if (target < 0) return 'caught-up';
        this.next ??= target;
        if (this.next > target) return target < confirmed ? 'waiting' : 'caught-up';
        const parentHash = this.window.tip?.hash ?? null;
        let blocks: ReadBlock[];
        if (ahead && ahead.from === this.next && ahead.parentHash === parentHash) {
          blocks = await ahead.blocks;
        } else {
          await ahead?.settled;
          blocks = await this.read(source, this.next, target, parentHash);
        }
        ahead = null;
        if (blocks === UNCONFIRMED) return 'waiting';
        if (blocks.length === 0) return 'missing'; // the node does not have the block yet: wait for the next head
        const last = blocks[blocks.length - 1]!;
        if (last.number < target) ahead = this.readAhead(source, last.number + 1, target, last.hash);
        for (const block of blocks) {
          const tip = this.window.tip;
          if (tip && block.parentHash !== tip.hash) {
            this.suspect = true;
            break;
          }
          await this.emitBlock(block, signal);
        }
      }
    } finally {
      // Aborted (the listener stops, or moves to another provider): the read ahead is not waited for; it
      // ends within the request timeout and its blocks are dropped.
      if (ahead && !signal.aborted) await ahead.settled;
    }
  }

  private readAhead(source: ChainSource, from: number, target: number, parentHash: string): ReadAhead {
    const blocks = this.read(source, from, target, parentHash);
    return { from, parentHash, blocks, settled: blocks.then(noop, noop) };
  }

  private async emitBlock(block: ReadBlock, signal: AbortSignal): Promise<void> {
    const { number, hash, parentHash, timestamp, seenAt, logs } = block;
    const floor = this.floor ?? number;
    const remembered: EmittedBlock = { number, hash, parentHash, timestamp, seenAt };
    const { persist } = this.options;
    const cursor = persist.appendOps?.(remembered, logs, floor, this.window.capacity);
    const msg = toMessage(this.options.chainId, block, logs, false);
    const persisted = await this.options.emit(cursor ? { ...msg, cursor } : msg, signal);
    this.floor = floor;
    this.window.push(remembered);
    if (persisted !== true)
      await (cursor && persist.write ? persist.write(cursor) : persist.append(remembered, logs, floor, this.window.capacity));
    this.next = number + 1;
    this.options.onProcessed?.(number);
  }

  /**
   * Walks the window back to the node's canonical chain and retracts what it orphaned. False when it
   * cannot tell: some emitted blocks are unknown to the node and none differs (it lags; wait for it).
   */
  private async resolveReorg(source: ChainSource, signal: AbortSignal): Promise<boolean> {
    const orphans: EmittedBlock[] = [];
    let ancestor: EmittedBlock | undefined;
    let evidence = false;
    for (const block of this.window.newestFirst()) {
      throwIfStopped(signal);
      // Above the node's head it cannot have the block: unknown, not asked.
      const canonical = this.headNumber !== null && block.number > this.headNumber ? null : await source.headerByNumber(block.number);
      if (canonical?.hash === block.hash) {
        ancestor = block;
        break;
      }
      // The first difference is checked with the other providers, if any, before it counts.
      if (canonical && !evidence && source.corroborate && !(await source.corroborate(block.number, block.hash, canonical.hash)))
        return false;
      if (canonical) evidence = true;
      orphans.push(block);
    }
    if (orphans.length === 0) return true;
    if (!evidence) return false; // nothing the node has differs from what was emitted: it lags; wait for it
    const oldest = orphans[orphans.length - 1]!;
    if (!ancestor && oldest.number !== this.floor) {
      throw new EthhookError('ETHHOOK_ERR_REORG_TOO_DEEP', `reorg deeper than maxReorgDepth (${this.options.maxReorgDepth})`, {
        chainId: this.options.chainId,
        maxReorgDepth: this.options.maxReorgDepth,
        oldestKnown: oldest.number,
        tip: orphans[0]!.number,
      });
    }
    this.heads.clear();
    for (const block of orphans) {
      const logs = await this.emittedLogs(block);
      const { persist } = this.options;
      const cursor = persist.retractOps?.(block.number, this.floor!);
      const msg = toMessage(this.options.chainId, block, logs, true);
      const persisted = await this.options.emit(cursor ? { ...msg, cursor } : msg, signal);
      this.window.pop();
      if (persisted !== true) await (cursor && persist.write ? persist.write(cursor) : persist.retract(block.number, this.floor!));
      this.next = block.number;
      this.options.onProcessed?.(block.number - 1);
    }
    this.options.onReorg?.(orphans.length);
    return true;
  }

  /** The logs emitted for a block of the window, from the store, marked removed. */
  private async emittedLogs(block: EmittedBlock): Promise<ChainLog[]> {
    const logs = await this.options.persist.logs(block.number);
    if (!logs || logs.some((l) => l.blockHash !== block.hash)) {
      throw new EthhookError('ETHHOOK_ERR_CURSOR_CORRUPT', `the logs emitted for block ${block.number} are missing from the cursor store`, {
        chainId: this.options.chainId,
        block: block.number,
        hash: block.hash,
      });
    }
    return logs.map((l) => ({ ...l, removed: true }));
  }

  /**
   * Reads blocks from `next` up to at most `target`, as many as RangeSize says (fewer when the node is
   * behind or refuses the range). `parentHash`: what the first block should extend (for the head cache).
   */
  private async read(source: ChainSource, from: number, target: number, parentHash: string | null): Promise<ReadBlock[]> {
    const to = Math.min(target, from + Math.min(this.rangeSize.blocks, source.maxBlockRange ?? Number.POSITIVE_INFINITY) - 1);
    if (from === to) return this.readOne(source, from, parentHash);
    let available: BlockHeader[];
    let logs: ChainLog[];
    try {
      const headers = await source.headersByRange(from, to);
      const known = headers.findIndex((h) => h === null);
      available = (known === -1 ? headers : headers.slice(0, known)) as BlockHeader[];
      if (available.length === 0) return [];
      available = available.slice(0, this.rangeSize.keep(available.map((h) => h.hasLogs)));
      logs = await source.logsByRange(from, available[available.length - 1]!.number);
    } catch (err) {
      if (!isEthhookError(err, 'ETHHOOK_ERR_RPC_RANGE_TOO_LARGE')) throw err;
      this.options.onProblem?.('range-too-large', err);
      this.rangeSize.refused(to - from + 1);
      return this.read(source, from, target, parentHash);
    }
    const last = available[available.length - 1]!;
    const recheck = await source.headerByNumber(last.number);
    if (recheck?.hash !== last.hash) throw inconsistent(this.options.chainId, last.number, 'range head changed during read');
    this.rangeSize.read(available.length, logs.length, available.filter((h) => h.hasLogs !== false).length);
    const blocks = assemble(this.options.chainId, available, logs, this.options.now());
    return source.confirm && !(await source.confirm(last)) ? UNCONFIRMED : blocks;
  }

  private async readOne(source: ChainSource, n: number, parentHash: string | null): Promise<ReadBlock[]> {
    const cached = this.heads.get(n);
    const usable = cached && (parentHash === null || cached.header.parentHash === parentHash) ? cached : undefined;
    const header = usable?.header ?? (await source.headerByNumber(n));
    if (!header) return [];
    const logs = await source.logsByBlockHash(header.hash);
    this.rangeSize.read(1, logs.length, header.hasLogs === false ? 0 : 1);
    const blocks = assemble(this.options.chainId, [header], logs, usable?.seenAt ?? this.options.now());
    return source.confirm && !(await source.confirm(header)) ? UNCONFIRMED : blocks;
  }
}

export type SyncOutcome = 'caught-up' | 'missing' | 'waiting';

/** What a read returns when its blocks are not confirmed yet (compared by identity). */
const UNCONFIRMED: ReadBlock[] = [];

const noop = (): void => {};

function toMessage(chainId: number, block: EmittedBlock, logs: ChainLog[], removed: boolean): ChainBlockMessage {
  return {
    type: 'chain.block',
    chainId,
    blockNumber: block.number,
    blockHash: block.hash,
    parentHash: block.parentHash,
    timestamp: block.timestamp,
    seenAt: block.seenAt,
    removed,
    logs,
  };
}

/** Groups logs under their headers, checking that the headers chain and every log's block hash. */
function assemble(chainId: number, headers: BlockHeader[], logs: ChainLog[], seenAt: number): ReadBlock[] {
  const first = headers[0]!.number;
  const blocks = headers.map((h, i): ReadBlock => {
    if (h.number !== first + i) throw inconsistent(chainId, h.number, 'header number out of sequence');
    if (i > 0 && h.parentHash !== headers[i - 1]!.hash) throw inconsistent(chainId, h.number, 'headers do not chain');
    return { number: h.number, hash: h.hash, parentHash: h.parentHash, timestamp: h.timestamp, seenAt, logs: [] };
  });
  for (const log of logs) {
    const block = blocks[log.blockNumber - first];
    if (!block || log.blockHash !== block.hash || log.removed) {
      throw inconsistent(chainId, log.blockNumber, 'log does not belong to the block read');
    }
    block.logs.push(log);
  }
  blocks.forEach((block, i) => {
    // A bloom with bits set means the block has logs: an answer without any is incomplete, never an empty block.
    if (block.logs.length === 0 && headers[i]!.hasLogs === true) {
      throw new EthhookError(
        'ETHHOOK_ERR_RPC_INCOMPLETE',
        `eth_getLogs answered no logs for block ${block.number}, whose logsBloom says it has some`,
        {
          chainId,
          block: block.number,
          hash: block.hash,
        },
      );
    }
    block.logs.sort((a, b) => a.logIndex - b.logIndex);
  });
  return blocks;
}

function inconsistent(chainId: number, block: number, why: string): EthhookError {
  return new EthhookError('ETHHOOK_ERR_CHAIN_INCONSISTENT', `chain moved while reading: ${why}`, { chainId, block, why });
}

export function throwIfStopped(signal: AbortSignal): void {
  if (signal.aborted) throw new EthhookError('ETHHOOK_ERR_LISTENER_STOPPED', 'the chain listener was stopped', {});
}
