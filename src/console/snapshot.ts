/**
 * The console's snapshot: everything the page shows at once, in one answer of
 * `GET /admin/console/snapshot`, built from the same sources as the routes that show each part:
 *
 *   at          ms since the epoch
 *   node        { id, version }
 *   tree        /actors/health's tree (a worker that panicked with its `lastPanic`), each actor with `restartsByReason` and `deadLetters` (by reason,
 *               from actor_restarts_total and actor_dead_letters_total), `lastRestartReason`,
 *               `lastRestartAt` and `storming` (actor-watch.ts)
 *   chains      [{ chainId, name, status, unavailable, safe, finalized, lag, reorgs: { count, deepest } }]
 *               status: GET /admin/chains/:chainId's chain, null with `unavailable` saying why (the
 *               listener is stopped or did not answer); safe/finalized/lag: chain_safe_height,
 *               chain_finalized_height, chain_lag_blocks; reorgs: chain_reorg_depth's count and the upper
 *               bound of its deepest bucket
 *   governance  GET /admin/governance/status's governance, null without a governance stream, or
 *               { unavailable } when it is stopped or did not answer
 *   streams     GET /v1/health/streaming's websocket and sse { connections, max }
 *   cluster     GET /v1/cluster's cluster
 *   webhooks    { deliveries: { <status>: n }, queueDepth, deadLetters } (webhook_deliveries_total,
 *               webhook_queue_depth, webhook_dead_letters)
 *   endpoints   { data, truncated }: the first `ENDPOINT_LIMIT` endpoints as GET /v1/endpoints shows them
 *               to the token's role, each with `breaker` (circuit_breaker_state: closed, half-open, open)
 *
 * An actor is asked with a short timeout (`ASK_TIMEOUT_MS`), and only while it runs: a stopped actor
 * queues messages unanswered, and one slow part must not hold the whole page back.
 */
import type { Registry } from 'prom-client';
import type { ChainStatus } from '../actors/chain-listener/index.ts';
import type { GovernanceStatus } from '../actors/governance/messages.ts';
import type { AdminRole } from '../config/schema.ts';
import type { ActorRef, ActorSnapshot, ActorState } from '../runtime/types.ts';
import type { Endpoint } from '../store/endpoints.ts';
import { ACTOR_PATHS, chainListenerPath } from '../tree.ts';
import type { ActorWatch } from './actor-watch.ts';
import { bucketsOf, readMetric, sumOf, type MetricSample } from './metric-read.ts';

export const ENDPOINT_LIMIT = 200;
const ASK_TIMEOUT_MS = 1_500;
const BREAKER_STATES = ['closed', 'half-open', 'open'] as const;
const SNAPSHOT_METRICS = [
  'actor_restarts_total',
  'actor_dead_letters_total',
  'chain_safe_height',
  'chain_finalized_height',
  'chain_lag_blocks',
  'chain_reorg_depth',
  'webhook_deliveries_total',
  'webhook_queue_depth',
  'webhook_dead_letters',
  'circuit_breaker_state',
] as const;

export interface ConsoleSystem {
  snapshot(): ActorSnapshot;
  lookup(path: string): ActorRef | undefined;
  find(path: string): { readonly state: ActorState } | undefined;
}

interface Connections {
  connections: number;
  max: number;
}

export interface ConsoleSnapshotDeps {
  node: { id: string; version: string };
  registry: Registry;
  watch: ActorWatch;
  /** Undefined while the node is still starting. */
  system: () => ConsoleSystem | undefined;
  chains: ReadonlyArray<{ chainId: number; name: string }>;
  streams: () => { websocket: Connections; sse: Connections };
  cluster: () => Promise<unknown>;
  endpoints: { list(options: { limit?: number }): Promise<Endpoint[]> };
  /** An endpoint as GET /v1/endpoints shows it to `role`. */
  endpointView: (role: AdminRole, endpoint: Endpoint) => object;
}

export type ConsoleActor = Omit<ActorSnapshot, 'children'> & {
  restartsByReason: Record<string, number>;
  deadLetters: Record<string, number>;
  lastRestartReason: string | null;
  lastRestartAt: number | null;
  storming: boolean;
  children?: ConsoleActor[];
};

export async function consoleSnapshot(deps: ConsoleSnapshotDeps, role: AdminRole) {
  const { registry } = deps;
  const at = Date.now();
  const sys = deps.system();
  const read = new Map(await Promise.all(SNAPSHOT_METRICS.map(async (name) => [name, await readMetric(registry, name)] as const)));
  const metric = (name: (typeof SNAPSHOT_METRICS)[number]): MetricSample[] => read.get(name) ?? [];
  const restarts = metric('actor_restarts_total');
  const deadLetters = metric('actor_dead_letters_total');
  const reorgDepth = metric('chain_reorg_depth');
  const breakers = metric('circuit_breaker_state');

  deps.watch.observe(restarts, at);
  const byChain = (samples: MetricSample[], name: string) => samples.find((s) => s.labels.chain === name)?.value ?? null;

  const [chains, governance, cluster, endpoints] = await Promise.all([
    Promise.all(
      deps.chains.map(async ({ chainId, name }) => {
        const asked = await ask<ChainStatus>(sys, chainListenerPath(chainId), { type: 'chain.status' });
        const depth = bucketsOf(reorgDepth, (l) => l.chain === name);
        return {
          chainId,
          name,
          status: asked.value,
          unavailable: asked.unavailable,
          safe: byChain(metric('chain_safe_height'), name),
          finalized: byChain(metric('chain_finalized_height'), name),
          lag: byChain(metric('chain_lag_blocks'), name),
          reorgs: { count: depth.get(Infinity) ?? 0, deepest: deepestBucket(depth) },
        };
      }),
    ),
    sys?.lookup(ACTOR_PATHS.governanceStream) === undefined
      ? null
      : ask<GovernanceStatus>(sys, ACTOR_PATHS.governanceStream, { type: 'governance.status' }).then(
          (a) => a.value ?? { unavailable: a.unavailable },
        ),
    deps.cluster(),
    deps.endpoints.list({ limit: ENDPOINT_LIMIT + 1 }),
  ]);

  const deliveriesByStatus: Record<string, number> = {};
  for (const s of metric('webhook_deliveries_total'))
    deliveriesByStatus[String(s.labels.status)] = (deliveriesByStatus[String(s.labels.status)] ?? 0) + s.value;
  const breakerOf = (id: string) => {
    const value = breakers.find((s) => s.labels.endpoint === id)?.value ?? 0;
    return BREAKER_STATES[value] ?? 'closed';
  };

  return {
    at,
    node: deps.node,
    tree: sys ? annotate(sys.snapshot(), restarts, deadLetters, deps.watch) : null,
    chains,
    governance,
    streams: deps.streams(),
    cluster,
    webhooks: {
      deliveries: deliveriesByStatus,
      queueDepth: sumOf(metric('webhook_queue_depth')),
      deadLetters: sumOf(metric('webhook_dead_letters')),
    },
    endpoints: {
      data: endpoints.slice(0, ENDPOINT_LIMIT).map((e) => ({ ...deps.endpointView(role, e), breaker: breakerOf(e.id) })),
      truncated: endpoints.length > ENDPOINT_LIMIT,
    },
  };
}

async function ask<R>(
  sys: ConsoleSystem | undefined,
  path: string,
  msg: object,
): Promise<{ value: R; unavailable: null } | { value: null; unavailable: string }> {
  const ref = sys?.lookup(path);
  const state = sys?.find(path)?.state ?? 'stopped';
  if (ref === undefined || state !== 'running')
    return { value: null, unavailable: `the actor is ${sys === undefined ? 'starting' : state}` };
  try {
    return { value: await ref.ask<R>(msg, { timeoutMs: ASK_TIMEOUT_MS }), unavailable: null };
  } catch (err) {
    return { value: null, unavailable: err instanceof Error ? err.message : String(err) };
  }
}

function annotate(node: ActorSnapshot, restarts: MetricSample[], deadLetters: MetricSample[], watch: ActorWatch): ConsoleActor {
  const byReason = (samples: MetricSample[]) => {
    const out: Record<string, number> = {};
    for (const s of samples) if (s.labels.actor === node.path && s.value > 0) out[String(s.labels.reason)] = s.value;
    return out;
  };
  const seen = watch.view(node.path);
  const { children, ...rest } = node;
  return {
    ...rest,
    restartsByReason: byReason(restarts),
    deadLetters: byReason(deadLetters),
    lastRestartReason: seen.lastReason,
    lastRestartAt: seen.lastAt,
    storming: seen.storming,
    ...(children ? { children: children.map((c) => annotate(c, restarts, deadLetters, watch)) } : {}),
  };
}

/** The smallest bucket bound holding every reorg: the deepest reorg is at most that deep. */
function deepestBucket(buckets: ReadonlyMap<number, number>): number | null {
  const total = buckets.get(Infinity) ?? 0;
  if (total === 0) return null;
  const bounds = [...buckets.keys()].filter((le) => le !== Infinity).sort((a, b) => a - b);
  return bounds.find((le) => (buckets.get(le) ?? 0) >= total) ?? null;
}
