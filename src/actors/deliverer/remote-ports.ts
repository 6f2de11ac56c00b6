/**
 * The Deliverer's OutboxPort and EndpointPort over the `deliverer-store` actor (store-port.ts): what a
 * Deliverer placed in a child process or worker thread uses, since only the node's process can open
 * the LevelDB store.
 *
 * - Every call is an ask to the store actor (timeout `timeoutMs`, default 30 s) whose `Reply` envelope is
 *   unwrapped: a failing store call rejects with the parent's error (code, context and stack kept), so
 *   the delivery loop reacts as it does in-process (a failed scan stops it and fails the actor; a failed
 *   write holds the job back and tries it again later).
 * - Writes (`complete`, `reschedule`, `postpone`, `deadLetter`) are grouped: the calls made while one
 *   `store.write` is in flight go together in the next (up to MAX_WRITE_OPS each), so they still share
 *   the outbox's group commit across the boundary. A `store.write` that fails or times out rejects
 *   every call in it; the loop holds those jobs and sends them again later, with the same webhook-id
 *   (at least once: a write that did land before the timeout makes that a redelivery).
 * - `onEnqueue`: jobs are enqueued in the parent, whose store actor tells the Deliverer
 *   `deliverer.wake`; its receive pokes the loop, as this listener would. So listeners here are kept by
 *   no one and the unsubscribe does nothing.
 * - `get(id)` brings the endpoint's signing secrets along (plaintext, as the parent's
 *   `activeSecrets` gave them when it answered); `activeSecrets(endpoint)` returns those kept with that
 *   endpoint object. The loop calls it right after `get`, so its `now` is within a round trip of the
 *   parent's. The secrets live in this process's memory only, and are never logged.
 * - `claimMs`: the parent's outbox's claim length when it is shared by a cluster (placed.ts's args), so
 *   the loop sends a claimed job only while its claim has the margin left, as in-process.
 * - `RemoteDeliveryLimits`: the store's shared delivery limits (src/store/delivery-limits.ts) as
 *   `store.limits-take`, `store.breaker-open`, `store.breaker-close`, `store.breakers` and
 *   `store.limits-forget` asks; a failing one rejects, and the Deliverer treats it as it treats the
 *   store's own failure (rate-slices.ts, shared-breakers.ts).
 */
import { EthhookError } from '../../runtime/errors.ts';
import { deserializeError, isReply, type Reply } from '../../runtime/placement/protocol.ts';
import type { ActorRef } from '../../runtime/types.ts';
import type { AttemptRecord } from '../../store/attempts.ts';
import type { BucketSettings, DeliveryLimits, SharedBreaker, TokenGrant } from '../../store/delivery-limits.ts';
import type { Endpoint } from '../../store/endpoints.ts';
import type { DueOptions, Job } from '../../store/outbox/job.ts';
import type { EndpointPort, OutboxPort } from './ports.ts';
import type { FailureStreak } from './disable.ts';
import { MAX_WRITE_OPS, type EndpointWithSecrets, type StoreMessage, type WriteOp } from './store-port.ts';
import { ACTOR_PATHS } from '../../tree.ts';

export const DEFAULT_STORE_TIMEOUT_MS = 30_000;

/** Asks the store actor and unwraps its reply. */
export class StoreClient {
  constructor(
    private readonly ref: ActorRef,
    private readonly timeoutMs = DEFAULT_STORE_TIMEOUT_MS,
  ) {}

  async call<T>(msg: StoreMessage): Promise<T> {
    const reply: unknown = await this.ref.ask(msg, { timeoutMs: this.timeoutMs });
    return unwrap<T>(reply, msg.type);
  }
}

function unwrap<T>(reply: unknown, messageType: string): T {
  if (!isReply(reply)) {
    throw new EthhookError('ETHHOOK_ERR_PLACEMENT', `malformed reply from ${ACTOR_PATHS.delivererStore}`, { messageType });
  }
  if (!reply.ok) throw deserializeError(reply.error, { via: ACTOR_PATHS.delivererStore, messageType });
  return reply.value as T;
}

type JobArg = string | Pick<Job, 'id'>;

interface QueuedWrite {
  op: WriteOp;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

export class RemoteOutbox implements OutboxPort {
  private queued: QueuedWrite[] = [];
  private writing = false;

  constructor(
    private readonly store: StoreClient,
    /** The parent's outbox's `claimMs` (see the module header); undefined: jobs are ours until they change. */
    readonly claimMs?: number,
  ) {}

  due(now: number, limit: number, options: DueOptions = {}): Promise<Job[]> {
    return this.store.call<Job[]>({
      type: 'store.due',
      now,
      limit,
      exclude: [...(options.exclude ?? [])],
      skipEndpoints: [...(options.skipEndpoints ?? [])],
    });
  }

  async nextDueAt(): Promise<number | undefined> {
    return (await this.store.call<number | null>({ type: 'store.next-due' })) ?? undefined;
  }

  complete(job: JobArg, attempt?: AttemptRecord): Promise<boolean> {
    return this.write<boolean>({ op: 'complete', job: wireJob(job), ...(attempt ? { attempt } : {}) });
  }

  /** `complete` without its answer (the remote writes are grouped already, see the module header). */
  completeWithGroup(job: JobArg, attempt?: AttemptRecord): Promise<void> {
    return this.complete(job, attempt).then(() => undefined);
  }

  async reschedule(job: JobArg, nextAttemptAt: number, attempt?: AttemptRecord): Promise<Job | undefined> {
    return (
      (await this.write<Job | null>({ op: 'reschedule', job: wireJob(job), at: nextAttemptAt, ...(attempt ? { attempt } : {}) })) ??
      undefined
    );
  }

  async postpone(job: JobArg, at: number): Promise<Job | undefined> {
    return (await this.write<Job | null>({ op: 'postpone', job: wireJob(job), at })) ?? undefined;
  }

  deadLetter(job: JobArg, reason: string, attempt?: AttemptRecord): Promise<boolean> {
    return this.write<boolean>({ op: 'dead-letter', job: wireJob(job), reason, ...(attempt ? { attempt } : {}) });
  }

  onEnqueue(): () => void {
    return () => {};
  }

  /** The webhook body as bytes: jobs arrive here as parsed JSON, so the payload is serialized again. */
  bodyOf(job: Job): Buffer {
    return Buffer.from(JSON.stringify(job.payload));
  }

  private write<T>(op: WriteOp): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queued.push({ op, resolve: resolve as (value: unknown) => void, reject });
      if (!this.writing) {
        this.writing = true;
        // A microtask later, so the writes of one synchronous burst share the first message.
        queueMicrotask(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    while (this.queued.length > 0) {
      const group = this.queued.splice(0, MAX_WRITE_OPS);
      try {
        const results = await this.store.call<Reply[]>({ type: 'store.write', ops: group.map((q) => q.op) });
        group.forEach((q, i) => {
          const r = results[i];
          if (r === undefined)
            q.reject(
              new EthhookError('ETHHOOK_ERR_PLACEMENT', `no result for a write from ${ACTOR_PATHS.delivererStore}`, { op: q.op.op }),
            );
          else if (r.ok) q.resolve(r.value);
          else q.reject(deserializeError(r.error, { via: ACTOR_PATHS.delivererStore, op: q.op.op }));
        });
      } catch (err) {
        for (const q of group) q.reject(err);
      }
    }
    this.writing = false;
  }
}

/** The whole job as `due` returned it (the outbox trusts it and skips a read), or else its id. */
function wireJob(job: JobArg): string | Job {
  if (typeof job === 'string') return job;
  return 'nextAttemptAt' in job && 'attempt' in job && 'payload' in job ? (job as Job) : job.id;
}

export class RemoteEndpoints implements EndpointPort {
  private readonly secrets = new WeakMap<Endpoint, string[]>();

  constructor(private readonly store: StoreClient) {}

  async get(id: string): Promise<Endpoint | undefined> {
    const found = await this.store.call<EndpointWithSecrets | null>({ type: 'store.endpoint', id });
    if (!found) return undefined;
    this.secrets.set(found.endpoint, found.secrets);
    return found.endpoint;
  }

  /** The secrets that came with this endpoint object (none for one not read through `get`: signing then refuses). */
  activeSecrets(endpoint: Endpoint): string[] {
    return this.secrets.get(endpoint) ?? [];
  }

  disable(id: string, reason: string, now = Date.now()): Promise<Endpoint> {
    return this.store.call<Endpoint>({ type: 'store.disable', id, reason, now });
  }

  setFailing(id: string, failing: FailureStreak): Promise<Endpoint> {
    return this.store.call<Endpoint>({ type: 'store.failing', id, failing });
  }
}

export class RemoteDeliveryLimits implements DeliveryLimits {
  constructor(private readonly store: StoreClient) {}

  take(endpointId: string, bucket: BucketSettings, want: number): Promise<TokenGrant> {
    return this.store.call<TokenGrant>({ type: 'store.limits-take', endpointId, ratePerSec: bucket.ratePerSec, burst: bucket.burst, want });
  }

  async openBreaker(endpointId: string, cooldownMs: number): Promise<void> {
    await this.store.call<null>({ type: 'store.breaker-open', endpointId, cooldownMs: Math.max(0, Math.round(cooldownMs)) });
  }

  async closeBreaker(endpointId: string): Promise<void> {
    await this.store.call<null>({ type: 'store.breaker-close', endpointId });
  }

  openBreakers(): Promise<SharedBreaker[]> {
    return this.store.call<SharedBreaker[]>({ type: 'store.breakers' });
  }

  async forget(endpointId: string): Promise<void> {
    await this.store.call<null>({ type: 'store.limits-forget', endpointId });
  }
}
