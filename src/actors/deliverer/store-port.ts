/**
 * The `deliverer-store` actor: the Deliverer's outbox and endpoint store, served as messages to a
 * Deliverer placed in a child process or worker thread (placed.ts). LevelDB locks its directory to
 * one process, so the store stays in the node's process and the child reaches it through this actor
 * (remote-ports.ts). It runs in the parent, before the deliverer in the pipeline: under rest-for-one,
 * a restart of this actor restarts the deliverer too.
 *
 * Messages (zod-checked; every ask is answered with a `Reply` envelope, `{ ok: true, value }` or
 * `{ ok: false, error }`, so a failing store call reaches the child as its error and never panics
 * this actor; values are JSON-safe, `null` where the outbox says `undefined`):
 * - `store.due { now, limit, exclude: string[], skipEndpoints: string[] }` → `Job[]` (OutboxStore.due)
 * - `store.next-due {}`                             → `number | null`    (OutboxStore.nextDueAt)
 * - `store.write { ops }` → one `Reply` per op, in order. An op is `complete { job, attempt? }`,
 *   `reschedule { job, at, attempt? }`, `postpone { job, at }` or `dead-letter { job, reason, attempt? }`
 *   (`job`: the whole job as `due` returned it, or its id). The ops are issued together, so they share
 *   the outbox's group commit: the mailbox handles one message at a time, and one message per write
 *   would serialize every write behind the previous one. The child groups its writes (remote-ports.ts).
 * - `store.endpoint { id }` → `{ endpoint, secrets } | null`: the stored record (its secrets stay sealed
 *   under the master key, which never leaves this process) and the plaintext secrets that sign now
 *   (none for a disabled endpoint). They cross only the IPC channel to our own child; never logged.
 * - `store.disable { id, reason, now }` → the endpoint record (EndpointStore.disable).
 * - `store.failing { id, failing: { since, failures } | null }` → the endpoint record (EndpointStore.setFailing).
 * - `store.metrics { deliveries, breakerOpens, breakers }` (a tell; see Metrics).
 * - The store's shared delivery limits (src/store/delivery-limits.ts), when the store is shared by a
 *   cluster (`limits` given; placed.ts's `sharedLimits`), so a placed Deliverer's rate limits and
 *   breakers hold across the instances as an in-process one's do:
 *   `store.limits-take { endpointId, ratePerSec, burst, want }` → `{ granted, waitMs }`,
 *   `store.breaker-open { endpointId, cooldownMs }` → null, `store.breaker-close { endpointId }` → null,
 *   `store.breakers {}` → the open breakers, `store.limits-forget { endpointId }` → null. Without
 *   `limits` (LevelDB: one process) they are answered `{ ok: false }` (ETHHOOK_ERR_INVALID_INPUT).
 * A malformed message is answered `{ ok: false, error }` (ETHHOOK_ERR_INVALID_INPUT) and logged, not thrown.
 *
 * Wake-ups: every enqueue into the outbox (`outbox.onEnqueue`) asks `delivererPath` for a
 * `deliverer.wake`, at most one ask in flight: enqueues during it make one more ask after it.
 *
 * Metrics (the child's registry is not scraped, so the parent's /metrics shows what matters here):
 * - `webhook_queue_depth`, `webhook_dead_letters`: read from the outbox at scrape time, as in-process.
 * - `webhook_delivery_duration_seconds`: observed from each written op's attempt record (one per HTTP
 *   attempt); `webhook_event_to_delivery_seconds` from each `complete` with a record (`at − eventSeenAt`).
 *   Both as the in-process loop observes them, from the same numbers. `pipeline_stage_seconds` `sent` and
 *   `answered` from each first attempt that completed (the in-process loop also counts failed ones).
 * - `webhook_deliveries_total{status}` and `circuit_breaker_opens_total`: the child sends the counts of
 *   its own registry since its last report every second (`store.metrics`, placed.ts); they are added
 *   here. Counts of the last second before a `kill -9` of the child are lost (those attempts were not
 *   written either, so they are made again and counted then).
 * - `circuit_breaker_state{endpoint}`: replaced by the child's snapshot in each report (a restarted
 *   child starts with every breaker closed, and so does its first report).
 * - `deliverer_secret_decrypt_failures_total`: counted here, where the secrets are opened (decrypt-failures.ts).
 */
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { EthhookError } from '../../runtime/errors.ts';
import { serializeError, toReply, type Reply } from '../../runtime/placement/protocol.ts';
import type { ActorContext, Behaviour } from '../../runtime/types.ts';
import { attemptRecordSchema, type AttemptRecord } from '../../store/attempts.ts';
import { endpointIdSchema, type Endpoint } from '../../store/endpoints.ts';
import type { DeliveryLimits } from '../../store/delivery-limits.ts';
import { jobSchema, type Job } from '../../store/outbox/job.ts';
import { countDecryptFailures } from './decrypt-failures.ts';
import type { EndpointPort, OutboxPort } from './ports.ts';
import { DELIVERY_STATUSES, delivererMetrics, type DelivererMetrics, type QueueSource } from './metrics.ts';
import { ACTOR_PATHS } from '../../tree.ts';

/** Ops in one `store.write` at most (the child sends more as several messages). */
export const MAX_WRITE_OPS = 1_000;
const MAX_DUE_LIMIT = 10_000;
const MAX_REASON = 2_000;
/** Tokens one `store.limits-take` may ask for (a slice is what a rate allows in 100 ms). */
const MAX_TOKENS_WANTED = 100_000;
/** A breaker's cool-down at most (a day: far above any configured `maxCooldownMs`). */
const MAX_COOLDOWN_MS = 86_400_000;

const time = z.number().finite();
const jobRef = z.union([z.string().min(1), jobSchema]);
const attempt = attemptRecordSchema.optional();

export const writeOpSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('complete'), job: jobRef, attempt }),
  z.strictObject({ op: z.literal('reschedule'), job: jobRef, at: time, attempt }),
  z.strictObject({ op: z.literal('postpone'), job: jobRef, at: time }),
  z.strictObject({ op: z.literal('dead-letter'), job: jobRef, reason: z.string().max(MAX_REASON), attempt }),
]);
export type WriteOp = z.input<typeof writeOpSchema>;

export const storeMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('store.due'),
    now: time,
    limit: z.number().int().positive().max(MAX_DUE_LIMIT),
    exclude: z.array(z.string()),
    skipEndpoints: z.array(z.string()).default([]),
  }),
  z.strictObject({ type: z.literal('store.next-due') }),
  z.strictObject({ type: z.literal('store.write'), ops: z.array(writeOpSchema).min(1).max(MAX_WRITE_OPS) }),
  z.strictObject({ type: z.literal('store.endpoint'), id: endpointIdSchema }),
  z.strictObject({ type: z.literal('store.disable'), id: endpointIdSchema, reason: z.string().max(MAX_REASON), now: time }),
  z.strictObject({
    type: z.literal('store.failing'),
    id: endpointIdSchema,
    failing: z.strictObject({ since: time, failures: z.number().int().min(1) }).nullable(),
  }),
  z.strictObject({
    type: z.literal('store.metrics'),
    deliveries: z.partialRecord(z.enum(DELIVERY_STATUSES), z.number().int().nonnegative()),
    breakerOpens: z.number().int().nonnegative(),
    breakers: z.array(z.strictObject({ endpoint: endpointIdSchema, state: z.union([z.literal(0), z.literal(1), z.literal(2)]) })),
  }),
  z.strictObject({
    type: z.literal('store.limits-take'),
    endpointId: endpointIdSchema,
    ratePerSec: z.number().finite().positive(),
    burst: z.number().finite().min(1),
    want: z.number().int().min(1).max(MAX_TOKENS_WANTED),
  }),
  z.strictObject({
    type: z.literal('store.breaker-open'),
    endpointId: endpointIdSchema,
    cooldownMs: z.number().int().nonnegative().max(MAX_COOLDOWN_MS),
  }),
  z.strictObject({ type: z.literal('store.breaker-close'), endpointId: endpointIdSchema }),
  z.strictObject({ type: z.literal('store.breakers') }),
  z.strictObject({ type: z.literal('store.limits-forget'), endpointId: endpointIdSchema }),
]);
export type StoreMessage = z.input<typeof storeMessageSchema>;

/** What `store.endpoint` answers for an endpoint that exists. */
export interface EndpointWithSecrets {
  endpoint: Endpoint;
  secrets: string[];
}

export interface DelivererStoreDeps {
  /** The store's outbox (`OutboxStore`): the Deliverer's port, plus the counts the queue gauges read. */
  outbox: OutboxPort & QueueSource;
  endpoints: EndpointPort;
  /** Delivery limits shared with the other instances (a PostgreSQL store); none on LevelDB. */
  limits?: DeliveryLimits;
  registry?: Registry;
  /** Where `deliverer.wake` goes. Default `/pipeline/deliverer`. */
  delivererPath?: string;
  /** How long one wake waits for the Deliverer's answer (it may be starting a child). Default 10 s. */
  wakeTimeoutMs?: number;
}

export function createDelivererStore(deps: DelivererStoreDeps): Behaviour<unknown> {
  const metrics = deps.registry ? delivererMetrics(deps.registry) : undefined;
  const endpoints = metrics ? countDecryptFailures(deps.endpoints, metrics) : deps.endpoints;
  const delivererPath = deps.delivererPath ?? ACTOR_PATHS.deliverer;
  let unsubscribe: (() => void) | null = null;
  let waking = false;
  let wakeAgain = false;

  const wake = (ctx: ActorContext<unknown>): void => {
    if (waking) {
      wakeAgain = true;
      return;
    }
    const deliverer = ctx.lookup(delivererPath);
    if (!deliverer) return;
    waking = true;
    deliverer
      .ask({ type: 'deliverer.wake' }, { timeoutMs: deps.wakeTimeoutMs ?? 10_000 })
      .catch((err: unknown) => ctx.log.debug({ err: serializeError(err) }, 'deliverer.wake not acknowledged; its loop polls anyway'))
      .finally(() => {
        waking = false;
        if (wakeAgain && unsubscribe) {
          wakeAgain = false;
          wake(ctx);
        }
      });
  };

  return {
    preStart(ctx) {
      metrics?.observeQueue(deps.outbox);
      unsubscribe = deps.outbox.onEnqueue(() => wake(ctx));
    },
    postStop() {
      unsubscribe?.();
      unsubscribe = null;
    },
    receive(msg, ctx) {
      const parsed = storeMessageSchema.safeParse(msg);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const error = new EthhookError(
          'ETHHOOK_ERR_INVALID_INPUT',
          `invalid deliverer-store message: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim(),
          {
            what: 'deliverer-store message',
            messageType: typeof msg === 'object' && msg !== null ? String((msg as { type?: unknown }).type) : typeof msg,
          },
        );
        ctx.log.warn({ code: error.code, ...error.context }, error.message);
        return { ok: false, error: serializeError(error) } satisfies Reply;
      }
      const m = parsed.data;
      switch (m.type) {
        case 'store.due':
          return toReply(() => deps.outbox.due(m.now, m.limit, { exclude: new Set(m.exclude), skipEndpoints: new Set(m.skipEndpoints) }));
        case 'store.next-due':
          return toReply(async () => (await deps.outbox.nextDueAt()) ?? null);
        case 'store.write':
          // Promise.resolve returns a write's promise itself, and wraps the reply of one refused at once.
          return toReply(() => Promise.all(m.ops.map((op) => Promise.resolve(toReply(() => write(deps.outbox, op, metrics))))));
        case 'store.endpoint':
          return toReply(() => endpointWithSecrets(endpoints, m.id));
        case 'store.disable':
          return toReply(() => deps.endpoints.disable(m.id, m.reason, m.now));
        case 'store.failing':
          return toReply(() => deps.endpoints.setFailing(m.id, m.failing));
        case 'store.metrics':
          if (metrics) applyReport(metrics, m);
          return { ok: true, value: null } satisfies Reply;
        case 'store.limits-take':
          return toReply(() => sharedLimits(deps.limits, m.type).take(m.endpointId, { ratePerSec: m.ratePerSec, burst: m.burst }, m.want));
        case 'store.breaker-open':
          return toReply(() =>
            sharedLimits(deps.limits, m.type)
              .openBreaker(m.endpointId, m.cooldownMs)
              .then(() => null),
          );
        case 'store.breaker-close':
          return toReply(() =>
            sharedLimits(deps.limits, m.type)
              .closeBreaker(m.endpointId)
              .then(() => null),
          );
        case 'store.breakers':
          return toReply(() => sharedLimits(deps.limits, m.type).openBreakers());
        case 'store.limits-forget':
          return toReply(() =>
            sharedLimits(deps.limits, m.type)
              .forget(m.endpointId)
              .then(() => null),
          );
      }
    },
  };
}

type ParsedOp = z.output<typeof writeOpSchema>;

/** The shared limits, or the refusal of a limits message to a store that has none (see the header). */
function sharedLimits(limits: DeliveryLimits | undefined, messageType: string): DeliveryLimits {
  if (limits !== undefined) return limits;
  throw new EthhookError('ETHHOOK_ERR_INVALID_INPUT', 'this store shares no delivery limits (it serves one process)', {
    what: 'deliverer-store message',
    messageType,
  });
}

/** One op, issued at once (not awaited before the next): the ops of a message share a group commit. */
function write(outbox: OutboxPort, op: ParsedOp, metrics: DelivererMetrics | undefined): Promise<boolean | Job | null> {
  if (op.op !== 'postpone' && op.attempt) observeAttempt(metrics, op.op === 'complete' ? op.job : null, op.attempt);
  switch (op.op) {
    case 'complete':
      return outbox.complete(op.job, op.attempt);
    case 'reschedule':
      return outbox.reschedule(op.job, op.at, op.attempt).then((job) => job ?? null);
    case 'postpone':
      return outbox.postpone(op.job, op.at).then((job) => job ?? null);
    case 'dead-letter':
      return outbox.deadLetter(op.job, op.reason, op.attempt);
  }
}

/** The durations the in-process loop observes, from the same numbers (delivery-loop.ts `deliver`). */
function observeAttempt(metrics: DelivererMetrics | undefined, completed: Job | string | null, record: AttemptRecord): void {
  if (!metrics) return;
  metrics.deliveryDuration.observe(record.durationMs / 1000);
  if (completed === null || typeof completed !== 'object') return;
  metrics.eventToDelivery.observe(Math.max(0, record.at - completed.eventSeenAt) / 1000);
  // A placed loop's own stage observations stay in its process: its first attempts that completed are seen here.
  if (record.attempt === 1) metrics.stages.delivered(completed, record.at - record.durationMs, record.at);
}

async function endpointWithSecrets(endpoints: EndpointPort, id: string): Promise<EndpointWithSecrets | null> {
  const endpoint = await endpoints.get(id);
  if (!endpoint) return null;
  return { endpoint, secrets: endpoint.disabled ? [] : endpoints.activeSecrets(endpoint, Date.now()) };
}

type MetricsReport = Extract<z.output<typeof storeMessageSchema>, { type: 'store.metrics' }>;

function applyReport(metrics: DelivererMetrics, report: MetricsReport): void {
  for (const status of DELIVERY_STATUSES) {
    const n = report.deliveries[status];
    if (n) metrics.deliveries.inc({ status }, n);
  }
  if (report.breakerOpens > 0) metrics.breakerOpens.inc(report.breakerOpens);
  metrics.breakerState.reset();
  for (const b of report.breakers) metrics.breakerState.set({ endpoint: b.endpoint }, b.state);
}
