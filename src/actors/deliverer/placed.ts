/**
 * The Deliverer placed in a child process or worker thread (`runtime.actors.deliverer.placement:
 * forked | threaded`), so its signing and HTTP work use another core.
 *
 * `placedDeliverer(args)` is the factory the child calls (the kernel's placement imports this module):
 * it builds `createDeliverer` over remote ports (remote-ports.ts) to the parent's `deliverer-store`
 * actor (store-port.ts), which holds the outbox and the endpoints (LevelDB is locked to the node's
 * process). `args` is JSON, checked by `placedDelivererArgsSchema`: the HTTP client and loop settings
 * (the same the in-process Deliverer gets), the store actor's path and ask timeout, the report interval,
 * and for a store shared by a cluster: `claimMs` (the outbox's claim length: a claimed job is sent only
 * while its claim outlasts the request timeout + 5 s) and `sharedLimits` (rate limits and breakers
 * reached through the store actor's limits messages, so they hold across the instances). Given both,
 * the child behaves as the in-process Deliverer on that store.
 * main.ts registers it with `placedDelivererSpec(args)`. It is for placement only: in-process, main.ts
 * runs `createDeliverer` on the store directly. (Its first outbox scan, started from preStart, reaches
 * the parent once the placement has confirmed the start: see runtime/placement/child-runtime.ts.)
 *
 * Metrics: the Deliverer counts into a registry of its own process, which nobody scrapes. Every
 * `metricsIntervalMs` (default 1 s) and once more at stop, it tells the store actor what changed
 * (`store.metrics`): the `webhook_deliveries_total{status}` and `circuit_breaker_opens_total` counts
 * since its last report, and the `circuit_breaker_state` of every endpoint it knows. The parent adds
 * them to its registry; see store-port.ts for the other deliverer metrics.
 */
import { Registry } from 'prom-client';
import { z } from 'zod';
import { EthhookError } from '../../runtime/errors.ts';
import { sourcePath } from '../../runtime/source-dir.ts';
import type { ActorContext, ActorRef, Behaviour } from '../../runtime/types.ts';
import { createDeliverer, type Deliverer } from './deliverer.ts';
import { DELIVERY_STATUSES, delivererMetrics, type DelivererMetrics, type DeliveryStatus } from './metrics.ts';
import { RemoteDeliveryLimits, RemoteEndpoints, RemoteOutbox, StoreClient, DEFAULT_STORE_TIMEOUT_MS } from './remote-ports.ts';
import { retryPolicySchema } from './retry.ts';
import type { StoreMessage } from './store-port.ts';
import { ACTOR_PATHS } from '../../tree.ts';

const ms = z.number().int().nonnegative();
const positive = z.number().int().positive();

export const placedDelivererArgsSchema = z.strictObject({
  http: z.strictObject({
    policy: z.strictObject({ allowPrivate: z.boolean() }),
    connectTimeoutMs: positive.optional(),
    headersTimeoutMs: positive.optional(),
    bodyTimeoutMs: positive.optional(),
    requestTimeoutMs: positive.optional(),
    keepAliveTimeoutMs: positive.optional(),
    maxResponseBytes: positive.optional(),
    userAgent: z.string().optional(),
  }),
  loop: z
    .strictObject({
      retry: retryPolicySchema.optional(),
      guards: z
        .strictObject({
          circuitBreaker: z
            .strictObject({
              failureThreshold: positive,
              failureRateThreshold: z.number().gt(0).max(100),
              slidingWindowType: z.enum(['count', 'time']),
              slidingWindowSize: positive,
              minimumNumberOfCalls: positive,
              cooldownMs: ms,
              cooldownFactor: z.number().min(1),
              maxCooldownMs: ms,
              probeTimeoutMs: positive,
            })
            .partial()
            .optional(),
          disable: z.strictObject({ afterMs: ms, minFailures: positive }).partial().optional(),
        })
        .optional(),
      batchSize: positive.optional(),
      concurrency: positive.optional(),
      perEndpointConcurrency: positive.optional(),
      slowConcurrency: positive.optional(),
      slowAfterMs: positive.optional(),
      maxReady: positive.optional(),
      maxHeld: positive.optional(),
      endpointCacheMs: ms.optional(),
      pausedRecheckMs: positive.optional(),
      errorHoldMs: positive.optional(),
      idlePollMs: positive.optional(),
      sendMarginMs: ms.optional(),
      breakerPollMs: positive.optional(),
    })
    .default({}),
  stopGraceMs: ms.optional(),
  storePath: z.string().min(1).default(ACTOR_PATHS.delivererStore),
  storeTimeoutMs: positive.default(DEFAULT_STORE_TIMEOUT_MS),
  metricsIntervalMs: positive.default(1_000),
  claimMs: positive.optional(),
  sharedLimits: z.boolean().default(false),
});
export type PlacedDelivererArgs = z.input<typeof placedDelivererArgsSchema>;

export const PLACED_DELIVERER_EXPORT = 'placedDeliverer';

/** What `NodeBehaviours.placeable.deliverer` holds: this module, its factory, the args. */
export function placedDelivererSpec(args: PlacedDelivererArgs): { module: string; exportName: string; args: PlacedDelivererArgs } {
  return { module: sourcePath('actors/deliverer/placed.ts'), exportName: PLACED_DELIVERER_EXPORT, args };
}

export function placedDeliverer(input: unknown): Behaviour<unknown> {
  const parsed = placedDelivererArgsSchema.safeParse(input);
  if (!parsed.success) {
    throw new EthhookError('ETHHOOK_ERR_INVALID_SPEC', 'invalid arguments for the placed deliverer', {
      issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
    });
  }
  const args = parsed.data;
  const registry = new Registry();
  let deliverer: Deliverer | null = null;
  let reporter: MetricsReporter | null = null;

  return {
    preStart(ctx) {
      const store = ctx.lookup(args.storePath);
      if (!store)
        throw new EthhookError('ETHHOOK_ERR_ACTOR_NOT_FOUND', `no actor ${args.storePath} to serve the deliverer's store`, {
          actor: ctx.path,
          target: args.storePath,
        });
      const client = new StoreClient(store, args.storeTimeoutMs);
      deliverer = createDeliverer({
        outbox: new RemoteOutbox(client, args.claimMs),
        endpoints: new RemoteEndpoints(client),
        ...(args.sharedLimits ? { limits: new RemoteDeliveryLimits(client) } : {}),
        registry,
        http: args.http,
        loop: args.loop,
        ...(args.stopGraceMs !== undefined ? { stopGraceMs: args.stopGraceMs } : {}),
      });
      deliverer.preStart(ctx);
      reporter = new MetricsReporter(delivererMetrics(registry), store, ctx);
      reporter.start(args.metricsIntervalMs);
    },
    receive(msg, ctx) {
      if (!deliverer) throw new EthhookError('ETHHOOK_ERR_ACTOR_STOPPED', 'the placed deliverer is not running', { actor: ctx.path });
      return deliverer.receive(msg, ctx);
    },
    async postStop(ctx) {
      try {
        await deliverer?.postStop?.(ctx);
      } finally {
        await reporter?.stop();
        deliverer = null;
        reporter = null;
      }
    },
    health() {
      return deliverer?.health?.() ?? { ok: false, detail: 'placed deliverer not started' };
    },
  };
}

/** Sends the changes of this process's deliverer metrics to the store actor (see the header). */
class MetricsReporter {
  private timer: NodeJS.Timeout | null = null;
  private sending: Promise<void> = Promise.resolve();
  private readonly sent = new Map<DeliveryStatus, number>();
  private sentOpens = 0;
  private sentBreakers = '[]';

  constructor(
    private readonly metrics: DelivererMetrics,
    private readonly store: ActorRef,
    private readonly ctx: ActorContext<unknown>,
  ) {}

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.report(), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.report();
  }

  private report(): Promise<void> {
    this.sending = this.sending
      .then(() => this.send())
      .catch((err: unknown) => this.ctx.log.warn({ err }, 'deliverer metrics report failed'));
    return this.sending;
  }

  private async send(): Promise<void> {
    const deliveries: Partial<Record<DeliveryStatus, number>> = {};
    let changed = false;
    for (const { labels, value } of (await this.metrics.deliveries.get()).values) {
      const status = labels.status as DeliveryStatus;
      if (!DELIVERY_STATUSES.includes(status)) continue;
      const delta = value - (this.sent.get(status) ?? 0);
      if (delta > 0) {
        deliveries[status] = delta;
        this.sent.set(status, value);
        changed = true;
      }
    }
    const opens = (await this.metrics.breakerOpens.get()).values[0]?.value ?? 0;
    const breakerOpens = opens - this.sentOpens;
    this.sentOpens = opens;
    const breakers = (await this.metrics.breakerState.get()).values
      .map(({ labels, value }) => ({ endpoint: String(labels.endpoint), state: value as 0 | 1 | 2 }))
      .sort((a, b) => a.endpoint.localeCompare(b.endpoint));
    const breakersText = JSON.stringify(breakers);
    if (!changed && breakerOpens === 0 && breakersText === this.sentBreakers) return;
    this.sentBreakers = breakersText;
    const msg: StoreMessage = { type: 'store.metrics', deliveries, breakerOpens, breakers };
    this.store.tell(msg);
  }
}
