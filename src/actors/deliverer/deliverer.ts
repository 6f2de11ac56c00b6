/**
 * The Deliverer actor: a thin behaviour around the delivery loop (delivery-loop.ts), which does the work.
 *
 * - preStart builds the HTTP client (SSRF policy, timeouts, a limit of `requestSlots`: both of the
 *   scheduler's lanes, scheduler.ts) and starts the loop (`loop.concurrency` is its fast lane); postStop
 *   stops it, waits up to `stopGraceMs` (5 s) for the attempts in flight, aborts the rest (their jobs
 *   stay due, unrecorded) and closes the client. A restart starts from the outbox again: a job whose
 *   answer was lost is delivered again, with the same webhook-id.
 * - A failing outbox read stops the loop and is reported with `ctx.fail`: the supervisor restarts us.
 * - Messages: see messages.ts. A malformed one is answered `{ ok: false, error }` and logged, not thrown:
 *   it must not restart the loop. Metrics: see metrics.ts (the queue gauges read this outbox).
 * - health() fails when the loop is not running.
 * - In a cluster (`limits`, the store's shared delivery limits): rate limits and breakers hold across
 *   the instances (delivery-loop.ts), and a job claimed from a shared outbox is sent only while its
 *   claim outlasts the request's timeout by 5 s (`loop.sendMarginMs` unless set).
 */
import type { Registry } from 'prom-client';
import { EthhookError } from '../../runtime/errors.ts';
import type { ActorContext, Behaviour } from '../../runtime/types.ts';
import { countDecryptFailures } from './decrypt-failures.ts';
import { CLAIM_SAFETY_MS, DeliveryLoop, type DeliveryLoopOptions } from './delivery-loop.ts';
import { delivererMessageSchema } from './messages.ts';
import { delivererMetrics, type QueueSource } from './metrics.ts';
import type { DeliveryLimits } from '../../store/delivery-limits.ts';
import { DEFAULT_HTTP_CLIENT_OPTIONS, WebhookHttpClient, type HttpClientOptions } from './http-client.ts';
import type { EndpointPort, OutboxPort } from './ports.ts';
import { requestSlots } from './scheduler.ts';

export interface DelivererDeps {
  /**
   * The store's outbox (`OutboxStore`), whose depth and dead-letter count feed the queue gauges; or a port without
   * counts (a placed Deliverer's, remote-ports.ts), whose gauges the process holding the store reports.
   */
  outbox: OutboxPort & Partial<QueueSource>;
  endpoints: EndpointPort;
  /** Delivery limits shared with the other instances (a PostgreSQL store); none on LevelDB. */
  limits?: DeliveryLimits;
  registry?: Registry;
  /** HTTP client settings; `policy.allowPrivate` comes from the config (dev true, production false). */
  http: Omit<HttpClientOptions, 'concurrency'>;
  loop?: DeliveryLoopOptions;
  now?: () => number;
  random?: () => number;
  /** On stop, attempts still in flight after this long are aborted. Default 5 s. */
  stopGraceMs?: number;
}

const DEFAULT_STOP_GRACE_MS = 5_000;

export interface Deliverer extends Behaviour<unknown> {
  /** The running loop (tests and admin diagnostics); null before preStart and after postStop. */
  readonly loop: DeliveryLoop | null;
  /** Synchronous: the loop runs when it returns (placed.ts relies on it). */
  preStart(ctx: ActorContext<unknown>): void;
}

export function createDeliverer(deps: DelivererDeps): Deliverer {
  let loop: DeliveryLoop | null = null;
  let client: WebhookHttpClient | null = null;
  const metrics = deps.registry ? delivererMetrics(deps.registry) : undefined;

  return {
    get loop() {
      return loop;
    },
    preStart(ctx: ActorContext<unknown>) {
      // The client must take every request the scheduler may have out at once (both lanes), or a fast
      // request would queue behind slow ones inside it.
      const requestTimeoutMs = deps.http.requestTimeoutMs ?? DEFAULT_HTTP_CLIENT_OPTIONS.requestTimeoutMs;
      const loopOptions = { sendMarginMs: requestTimeoutMs + CLAIM_SAFETY_MS, ...deps.loop };
      client = new WebhookHttpClient({ ...deps.http, concurrency: requestSlots(loopOptions) });
      metrics?.observeQueue(countsJobs(deps.outbox) ? deps.outbox : null);
      loop = new DeliveryLoop(
        {
          outbox: deps.outbox,
          endpoints: metrics ? countDecryptFailures(deps.endpoints, metrics) : deps.endpoints,
          ...(deps.limits ? { limits: deps.limits } : {}),
          client,
          logger: ctx.log,
          ...(metrics ? { metrics } : {}),
          ...(deps.now ? { now: deps.now } : {}),
          ...(deps.random ? { random: deps.random } : {}),
          onFatal: (err) => ctx.fail(err),
        },
        loopOptions,
      );
      loop.start();
    },
    async postStop() {
      const http = client;
      // Attempts still running after the grace period are aborted; their jobs stay due, unrecorded.
      const abort = setTimeout(() => void http?.destroy(), deps.stopGraceMs ?? DEFAULT_STOP_GRACE_MS);
      try {
        await loop?.stop();
      } finally {
        clearTimeout(abort);
        await http?.destroy();
        loop = null;
        client = null;
      }
    },
    receive(msg: unknown, ctx: ActorContext<unknown>) {
      const parsed = delivererMessageSchema.safeParse(msg);
      if (!parsed.success) {
        // Answered, not thrown: a malformed control message must not restart the delivery loop.
        const issue = parsed.error.issues[0];
        const error = new EthhookError(
          'ETHHOOK_ERR_DELIVERER_BAD_MESSAGE',
          `invalid deliverer message: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim(),
          {
            messageType: typeof msg === 'object' && msg !== null ? String((msg as { type?: unknown }).type) : typeof msg,
          },
        );
        ctx.log.warn({ code: error.code, ...error.context }, error.message);
        return { ok: false, error: error.toJSON() };
      }
      const m = parsed.data;
      switch (m.type) {
        case 'deliverer.wake':
          loop?.poke();
          return { ok: true };
        case 'deliverer.endpoint-changed':
          loop?.invalidateEndpoint(m.endpointId, m.deleted ?? false);
          return { ok: true };
        case 'deliverer.status':
          return loop?.status() ?? { running: false, inFlight: 0, ready: 0, held: 0, slowLane: 0, openBreakers: [] };
        case 'deliverer.breaker':
          return loop?.breaker(m.endpointId, m.action) ?? null;
      }
    },
    health() {
      const status = loop?.status();
      return status?.running
        ? { ok: true, detail: `${status.inFlight} in flight, ${status.held} held` }
        : { ok: false, detail: 'delivery loop not running' };
    },
  };
}

function countsJobs(outbox: Partial<QueueSource>): outbox is QueueSource {
  return typeof outbox.depth === 'function' && typeof outbox.deadLetterCount === 'function';
}
