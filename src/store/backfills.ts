/**
 * Backfill requests and their progress: which blocks of its chain a subscription asked to have read
 * again (`fromBlock`/`toBlock` at creation, `POST /v1/subscriptions/{id}/replay`), and how far the
 * Backfill actor got (src/actors/backfill/). Spaces (src/store/kv.ts):
 *
 * - `backfills`: `<subscriptionId>` -> the subscription's latest request `{ id, subscriptionId, chainId,
 *   from, to?, createdAt, cancelledAt? }` (`to` absent: up to where the live path took over). Written
 *   by the admin API only.
 * - `backfill-progress`: `<request id>` -> `{ at, end?, done? }`: `at` the highest block read and
 *   enqueued (`from - 1` before any), `end` the last block to read once known, `done` once `at` reached
 *   it. Written by the Backfill actor only (fenced by the chain's lease, with the page's jobs), so the
 *   two writers never overwrite each other's records.
 * - `backfills-running`: `<chainId 16d>!<subscriptionId>!<request id>` -> request id, for every request
 *   neither done nor cancelled: what the Backfill actors scan, a few entries, never the whole
 *   `backfills`. The key names the request, so a write about one request (its last page landing after
 *   an operator cancelled it and started another) never removes another's entry. Entries written
 *   before the key named the request (`<chainId 16d>!<subscriptionId>`) are read alike and removed
 *   with their request.
 *
 * State: `cancelled` once `cancelledAt` is set, `done` once its progress says so, else `running`. One
 * running request per subscription: `start` refuses another (ETHHOOK_ERR_BACKFILL_RUNNING); `cancel`
 * refuses when none runs (ETHHOOK_ERR_BACKFILL_NOT_RUNNING). Both run one at a time per process (a
 * Serial queue); two instances of a cluster starting a request for one subscription at the same
 * moment can both succeed, the later one replacing the earlier.
 */
import { EthhookError } from '../runtime/errors.ts';
import { Serial } from '../runtime/serial.ts';
import { newId } from './ids.ts';
import { padNumber, PREFIX_END } from './keys.ts';
import type { Kv, KvOp, KvSpace } from './kv.ts';

export interface BackfillRequest {
  id: string;
  subscriptionId: string;
  chainId: number;
  from: number;
  /** The last block asked for; absent: up to the live path's position when the backfill starts. */
  to?: number;
  createdAt: number;
  cancelledAt?: number;
}

export interface BackfillProgress {
  /** The highest block read and enqueued; `from - 1` before any. */
  at: number;
  /** The last block to read, once known (the request's `to`, or where the live path took over). */
  end?: number;
  done?: true;
}

export type BackfillState = 'running' | 'done' | 'cancelled';

/** What `GET /v1/subscriptions/{id}` shows. `to` is null until the end is known. */
export interface BackfillView {
  id: string;
  from: number;
  to: number | null;
  at: number;
  state: BackfillState;
}

export interface RunningBackfill {
  chainId: number;
  subscriptionId: string;
  requestId: string;
}

export class BackfillStore {
  private readonly requests: KvSpace<BackfillRequest>;
  private readonly progresses: KvSpace<BackfillProgress>;
  private readonly runningIndex: KvSpace<string>;
  private readonly writes = new Serial();

  constructor(private readonly kv: Kv) {
    this.requests = kv.space('backfills');
    this.progresses = kv.space('backfill-progress');
    this.runningIndex = kv.space('backfills-running');
  }

  /** Records a new request for the subscription; throws ETHHOOK_ERR_BACKFILL_RUNNING while one runs. */
  start(input: { subscriptionId: string; chainId: number; from: number; to?: number }, now = Date.now()): Promise<BackfillView> {
    return this.writes.run(async () => {
      const current = await this.view(input.subscriptionId);
      if (current?.state === 'running') {
        throw new EthhookError(
          'ETHHOOK_ERR_BACKFILL_RUNNING',
          `subscription ${input.subscriptionId} has a backfill running (${current.id}, at block ${current.at}); cancel it first`,
          { subscriptionId: input.subscriptionId, backfillId: current.id },
        );
      }
      const request: BackfillRequest = {
        id: newId('bf_', now),
        subscriptionId: input.subscriptionId,
        chainId: input.chainId,
        from: input.from,
        ...(input.to !== undefined ? { to: input.to } : {}),
        createdAt: now,
      };
      const progress: BackfillProgress = { at: input.from - 1, ...(input.to !== undefined ? { end: input.to } : {}) };
      const ops: KvOp[] = [
        this.requests.putOp(request.subscriptionId, request),
        this.progresses.putOp(request.id, progress),
        this.runningIndex.putOp(runningIndexKey(request), request.id),
      ];
      if (current) ops.push(this.progresses.delOp(current.id));
      await this.kv.batch(ops);
      return viewOf(request, progress);
    });
  }

  /** Cancels the subscription's running request; throws ETHHOOK_ERR_BACKFILL_NOT_RUNNING when none runs. */
  cancel(subscriptionId: string, now = Date.now()): Promise<BackfillView> {
    return this.writes.run(async () => {
      const request = await this.requests.get(subscriptionId);
      const progress = request ? await this.progresses.get(request.id) : undefined;
      if (!request || stateOf(request, progress) !== 'running') {
        throw new EthhookError('ETHHOOK_ERR_BACKFILL_NOT_RUNNING', `subscription ${subscriptionId} has no backfill running`, {
          subscriptionId,
        });
      }
      const cancelled: BackfillRequest = { ...request, cancelledAt: now };
      await this.kv.batch([this.requests.putOp(subscriptionId, cancelled), ...this.unindexOps(request)]);
      return viewOf(cancelled, progress);
    });
  }

  /** Forgets the subscription's request and progress (its subscription was deleted). */
  async forget(subscriptionId: string): Promise<void> {
    await this.writes.run(async () => {
      const request = await this.requests.get(subscriptionId);
      if (request) await this.kv.batch(this.forgetOps(request));
    });
  }

  /** `forget`'s ops, for a batch of the caller's. */
  forgetOps(request: BackfillRequest): KvOp[] {
    return [this.requests.delOp(request.subscriptionId), this.progresses.delOp(request.id), ...this.unindexOps(request)];
  }

  async view(subscriptionId: string): Promise<BackfillView | undefined> {
    const request = await this.requests.get(subscriptionId);
    if (!request) return undefined;
    return viewOf(request, await this.progresses.get(request.id));
  }

  request(subscriptionId: string): Promise<BackfillRequest | undefined> {
    return this.requests.get(subscriptionId);
  }

  progress(requestId: string): Promise<BackfillProgress | undefined> {
    return this.progresses.get(requestId);
  }

  /** The ops recording `progress` of `request`; once done, the request also leaves the running index. */
  progressOps(request: Pick<BackfillRequest, 'id' | 'chainId' | 'subscriptionId'>, progress: BackfillProgress): KvOp[] {
    const ops = [this.progresses.putOp(request.id, progress)];
    if (progress.done) ops.push(...this.unindexOps(request));
    return ops;
  }

  /** Takes `request`, ended, out of the running index, where a store written otherwise may have left it. */
  async unindex(request: Pick<BackfillRequest, 'id' | 'chainId' | 'subscriptionId'>): Promise<void> {
    await this.kv.batch(this.unindexOps(request));
  }

  /** The ops taking `request` out of the running index (and its entry of the older key form). */
  private unindexOps(request: Pick<BackfillRequest, 'id' | 'chainId' | 'subscriptionId'>): KvOp[] {
    return [
      this.runningIndex.delOp(runningIndexKey(request)),
      this.runningIndex.delOp(chainPrefix(request.chainId) + request.subscriptionId),
    ];
  }

  /** The running requests of `chainId`, or of every chain. */
  async running(chainId?: number): Promise<RunningBackfill[]> {
    const range = chainId === undefined ? {} : { gte: chainPrefix(chainId), lt: chainPrefix(chainId) + PREFIX_END };
    return (await this.runningIndex.entries(range)).map(([key, requestId]) => {
      const [chain, subscriptionId] = key.split('!');
      return { chainId: Number(chain), subscriptionId: subscriptionId!, requestId };
    });
  }
}

/** Where a chain's entries start in `backfills-running`. */
const chainPrefix = (chainId: number): string => `${padNumber(chainId, 16)}!`;

/** A running request's key in `backfills-running`. */
export const runningIndexKey = (request: Pick<BackfillRequest, 'id' | 'chainId' | 'subscriptionId'>): string =>
  `${chainPrefix(request.chainId)}${request.subscriptionId}!${request.id}`;

function stateOf(request: BackfillRequest, progress: BackfillProgress | undefined): BackfillState {
  if (request.cancelledAt !== undefined) return 'cancelled';
  return progress?.done ? 'done' : 'running';
}

function viewOf(request: BackfillRequest, progress: BackfillProgress | undefined): BackfillView {
  const end = progress?.end ?? request.to;
  return {
    id: request.id,
    from: request.from,
    to: end ?? null,
    at: progress?.at ?? request.from - 1,
    state: stateOf(request, progress),
  };
}
