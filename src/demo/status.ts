/**
 * The demo's status line: every `intervalMs` one pino info line `msg: "status"` saying what the node
 * did so far, read from the metrics registry and the actor tree (the same numbers /metrics and
 * /actors/health give), plus the demo receiver's counts:
 *
 *   { "msg": "status", "head": { "dev": 812 }, "events": 1203, "matched": 1203, "delivered": 1201,
 *     "deliveryFailures": 0, "queue": 2, "verified": 1201, "verifyFailures": 0, "governanceHeight": 5,
 *     "mailboxes": { "/pipeline/deliverer": 0, "/pipeline/matcher": 0, ... } }
 *
 * - head: `chain_height` per chain; events: `events_received_total` (logs the listeners emitted);
 *   matched: `matcher_jobs_enqueued_total{type="log.created"}` (log × subscription pairs);
 *   delivered: `webhook_deliveries_total{status="success"}`, deliveryFailures: every other status;
 *   queue: `webhook_queue_depth`; governanceHeight: `governance_height`;
 *   mailboxes: queued messages of every actor (supervisors have none).
 * - A metric a node does not have (no governance stream) is left out of the line.
 */
import type { Registry } from 'prom-client';
import type { Logger } from '../runtime/log.ts';
import type { ActorSnapshot } from '../runtime/types.ts';
import type { DemoReceiverStats } from './receiver.ts';

export interface StatusLineOptions {
  registry: Registry;
  snapshot(): ActorSnapshot;
  /** The demo receiver's counts, when it runs. */
  receiver?: () => DemoReceiverStats;
  logger: Logger;
  intervalMs: number;
}

export interface NodeStatus {
  head: Record<string, number>;
  events?: number;
  matched?: number;
  delivered?: number;
  deliveryFailures?: number;
  queue?: number;
  verified?: number;
  verifyFailures?: number;
  governanceHeight?: number;
  mailboxes: Record<string, number>;
}

type Sample = { labels: Record<string, string | number | undefined>; value: number };

async function samples(registry: Registry, name: string): Promise<Sample[] | undefined> {
  const metric = registry.getSingleMetric(name);
  return metric ? (await metric.get()).values : undefined;
}

async function sum(
  registry: Registry,
  name: string,
  keep: (labels: Sample['labels']) => boolean = () => true,
): Promise<number | undefined> {
  const values = await samples(registry, name);
  return values?.filter((v) => keep(v.labels)).reduce((total, v) => total + v.value, 0);
}

export async function readStatus(options: Omit<StatusLineOptions, 'logger' | 'intervalMs'>): Promise<NodeStatus> {
  const { registry } = options;
  const head: Record<string, number> = {};
  for (const s of (await samples(registry, 'chain_height')) ?? []) head[String(s.labels.chain)] = s.value;
  const mailboxes: Record<string, number> = {};
  const walk = (node: ActorSnapshot) => {
    if (node.mailbox) mailboxes[node.path] = node.mailbox.size;
    node.children?.forEach(walk);
  };
  walk(options.snapshot());
  const receiver = options.receiver?.();
  const status: NodeStatus = {
    head,
    events: await sum(registry, 'events_received_total'),
    matched: await sum(registry, 'matcher_jobs_enqueued_total', (l) => l.type === 'log.created'),
    delivered: await sum(registry, 'webhook_deliveries_total', (l) => l.status === 'success'),
    deliveryFailures: await sum(registry, 'webhook_deliveries_total', (l) => l.status !== 'success'),
    queue: await sum(registry, 'webhook_queue_depth'),
    ...(receiver ? { verified: receiver.verified, verifyFailures: receiver.failed } : {}),
    governanceHeight: await sum(registry, 'governance_height'),
    mailboxes,
  };
  for (const key of Object.keys(status) as (keyof NodeStatus)[]) if (status[key] === undefined) delete status[key];
  return status;
}

/** Starts the periodic line; the returned function stops it. */
export function startStatusLine(options: StatusLineOptions): () => void {
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    readStatus(options)
      .then((status) => options.logger.info(status, 'status'))
      .catch((err: Error) => options.logger.warn({ err: err.message }, 'status line failed'))
      .finally(() => (busy = false));
  }, options.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
