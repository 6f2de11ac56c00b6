/**
 * The ChainListener's metrics, created once per prom-client registry (a restarted behaviour finds the
 * same instruments again; one already registered under the same name is reused). Label `chain` is the
 * configured chain name, `kind` a closed set.
 *
 * - `chain_height{chain}`: the head the listener last saw.
 * - `chain_processed_height{chain}`: the last block acknowledged by the next actor (the cursor).
 * - `chain_safe_height{chain}`, `chain_finalized_height{chain}`: the chain's `safe` and `finalized` blocks as
 *   the listener trusts them (finality.ts; 0 until known), which subscriptions with `finality` wait for.
 * - `chain_finality_known{chain,tag}`: 1 while the tag's height is known (0: its provider does not report
 *   it, and jobs waiting for it wait); `chain_finality_rejected_total{chain,tag,reason}`: answers to the
 *   tag's poll that were not trusted, by reason (FINALITY_REJECTIONS).
 * - `chain_lag_blocks{chain}`: head seen - processed height (never below 0), so confirmations count:
 *   with `confirmations: 12` a listener that keeps up reads 12.
 * - `chain_ws_connected{chain}`: 1 while the WebSocket session is up.
 * - `chain_up{chain}`: 1 while a session with the node works (WebSocket, or HTTP polling), the chain
 *   verified; 0 while the listener cannot reach it.
 *
 * `exportChainSeries` gives every configured chain all its series (0, or no error of any kind) when the
 * node starts, so a chain whose node is never reached is still visible: chain_up 0, chain_height 0
 * that never changes (EthhookChainDown, EthhookChainHeadStalled), its connection errors counting. Every
 * counter and histogram of a chain and of its providers starts at 0 for each value of its closed label
 * sets (RPC_ERROR_KINDS, FAILOVER_REASONS): a series born at its first event would hide that event from
 * increase() and rate().
 * - `chain_reorgs_total{chain}`: reorgs that orphaned at least one emitted block; their depth goes to
 *   the histogram `chain_reorg_depth{chain}`.
 * - `events_received_total{chain}`: logs emitted (retractions not counted).
 * - `chain_rpc_errors_total{chain,kind}`: every transport or node failure, by kind (RPC_ERROR_KINDS).
 *
 * Per provider (label `provider` = its configured name, never its URL):
 * - `chain_provider_up{chain,provider}`: 1 while its session works (chain verified, a head seen).
 * - `chain_provider_height{chain,provider}`: the head it last showed.
 * - `chain_provider_lag_blocks{chain,provider}`: the reference head (provider-pool.ts) minus its own.
 * - `chain_provider_active{chain,provider}`: 1 for the provider the listener reads from.
 * - `chain_provider_latency_seconds{chain,provider}`: the time its answers take (histogram).
 * - `chain_provider_errors_total{chain,provider,kind}`: its failures, by kind (PROVIDER_ERROR_KINDS).
 * - `chain_provider_disagreements_total{chain,provider}`: a block hash it showed that another provider
 *   contradicted at the same height.
 * - `chain_provider_failovers_total{chain,provider,reason}`: times the listener left it (FAILOVER_REASONS).
 * - `chain_provider_throttled_total{chain,provider}`: its rate-limited answers that the listener slowed
 *   down for and asked again (only when it kept limiting is `chain_provider_errors_total{kind="rate-limited"}` counted).
 * - `chain_providers_healthy{chain}`: providers fit to be read from (up, in step, not held).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { FINALITY_REJECTIONS, FINALITY_TAGS } from './finality.ts';

export const RPC_ERROR_KINDS = [
  'timeout', // a request got no answer in requestTimeoutMs
  'rpc', // the node answered with a JSON-RPC error
  'malformed', // a frame or result failed validation
  'unknown-id', // a response or notification for nothing we asked
  'connection', // connect failed or the connection dropped
  'range-too-large', // eth_getLogs range refused; the range is split
  'inconsistent', // the chain moved while a range was read
  'rate-limited', // the provider answered with a rate limit (after the listener slowed down and retried)
  'incomplete', // an answer with less than the provider has (logs missing for a block's bloom)
  'mismatch', // the provider serves another chain
] as const;
export type RpcErrorKind = (typeof RPC_ERROR_KINDS)[number];

export const FAILOVER_REASONS = [
  'down', // its session ended
  'syncing', // it reports eth_syncing
  'lagging', // more than maxLagBlocks below the reference head
  'ahead', // more than maxLagBlocks above the reference head (a head no other provider has)
  'stalled', // no new head for stallTimeoutMs while others moved on
  'error', // a read from it failed
  'disagreement', // it showed a hash the other providers contradict
  'operator', // POST /admin/chains/:chainId/failover
  'weight', // a provider of higher weight is healthy again
] as const;
export type FailoverReason = (typeof FAILOVER_REASONS)[number];

export interface ChainMetrics {
  height: Gauge<'chain'>;
  processedHeight: Gauge<'chain'>;
  safeHeight: Gauge<'chain'>;
  finalizedHeight: Gauge<'chain'>;
  finalityKnown: Gauge<'chain' | 'tag'>;
  finalityRejected: Counter<'chain' | 'tag' | 'reason'>;
  lag: Gauge<'chain'>;
  wsConnected: Gauge<'chain'>;
  up: Gauge<'chain'>;
  reorgs: Counter<'chain'>;
  reorgDepth: Histogram<'chain'>;
  eventsReceived: Counter<'chain'>;
  rpcErrors: Counter<'chain' | 'kind'>;
  providerUp: Gauge<'chain' | 'provider'>;
  providerHeight: Gauge<'chain' | 'provider'>;
  providerLag: Gauge<'chain' | 'provider'>;
  providerActive: Gauge<'chain' | 'provider'>;
  providerLatency: Histogram<'chain' | 'provider'>;
  providerErrors: Counter<'chain' | 'provider' | 'kind'>;
  providerDisagreements: Counter<'chain' | 'provider'>;
  providerFailovers: Counter<'chain' | 'provider' | 'reason'>;
  providerThrottled: Counter<'chain' | 'provider'>;
  providersHealthy: Gauge<'chain'>;
}

const byRegistry = new WeakMap<Registry, ChainMetrics>();

/** The metric already in the registry under that name (another module made it), or a new one. */
function metric<M>(registry: Registry, name: string, make: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? make();
}

export function getChainMetrics(registry: Registry): ChainMetrics {
  const known = byRegistry.get(registry);
  if (known) return known;
  const registers = [registry];
  const gauge = (name: string, help: string) => metric(registry, name, () => new Gauge({ name, help, labelNames: ['chain'], registers }));
  const providerGauge = (name: string, help: string) =>
    metric(registry, name, () => new Gauge({ name, help, labelNames: ['chain', 'provider'], registers }));
  const metrics: ChainMetrics = {
    height: gauge('chain_height', 'Head block number seen'),
    processedHeight: gauge('chain_processed_height', 'Last block acknowledged downstream (the persisted cursor)'),
    safeHeight: gauge('chain_safe_height', "The chain's safe block as the listener trusts it (0 until known)"),
    finalizedHeight: gauge('chain_finalized_height', "The chain's finalized block as the listener trusts it (0 until known)"),
    finalityKnown: metric(
      registry,
      'chain_finality_known',
      () =>
        new Gauge({
          name: 'chain_finality_known',
          help: "1 while the chain's safe or finalized block is known (0: jobs waiting for it wait)",
          labelNames: ['chain', 'tag'],
          registers,
        }),
    ),
    finalityRejected: metric(
      registry,
      'chain_finality_rejected_total',
      () =>
        new Counter({
          name: 'chain_finality_rejected_total',
          help: 'Answers to the safe or finalized poll that were not trusted, by reason',
          labelNames: ['chain', 'tag', 'reason'],
          registers,
        }),
    ),
    lag: gauge('chain_lag_blocks', 'Head seen minus processed height: blocks not yet acknowledged downstream (confirmations included)'),
    wsConnected: gauge('chain_ws_connected', '1 while the WebSocket session to the node is up'),
    up: gauge('chain_up', '1 while a session with the chain node works (WebSocket or HTTP polling)'),
    reorgs: metric(
      registry,
      'chain_reorgs_total',
      () => new Counter({ name: 'chain_reorgs_total', help: 'Reorgs that orphaned emitted blocks', labelNames: ['chain'], registers }),
    ),
    reorgDepth: metric(
      registry,
      'chain_reorg_depth',
      () =>
        new Histogram({
          name: 'chain_reorg_depth',
          help: 'Emitted blocks orphaned per reorg',
          labelNames: ['chain'],
          buckets: [1, 2, 3, 5, 8, 13, 21, 34, 64, 128],
          registers,
        }),
    ),
    eventsReceived: metric(
      registry,
      'events_received_total',
      () => new Counter({ name: 'events_received_total', help: 'Logs emitted by the chain listeners', labelNames: ['chain'], registers }),
    ),
    rpcErrors: metric(
      registry,
      'chain_rpc_errors_total',
      () =>
        new Counter({
          name: 'chain_rpc_errors_total',
          help: 'Chain node transport and protocol errors, by kind',
          labelNames: ['chain', 'kind'],
          registers,
        }),
    ),
    providerUp: providerGauge('chain_provider_up', '1 while the session with this provider works (chain verified, a head seen)'),
    providerHeight: providerGauge('chain_provider_height', 'Head block number this provider last showed'),
    providerLag: providerGauge(
      'chain_provider_lag_blocks',
      "The chain's reference head (the highest that two providers vouch for) minus this provider's head",
    ),
    providerActive: providerGauge('chain_provider_active', '1 for the provider the listener reads blocks and logs from'),
    providerLatency: metric(
      registry,
      'chain_provider_latency_seconds',
      () =>
        new Histogram({
          name: 'chain_provider_latency_seconds',
          help: 'Time the provider took to answer a JSON-RPC call (or batch)',
          labelNames: ['chain', 'provider'],
          buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
          registers,
        }),
    ),
    providerErrors: metric(
      registry,
      'chain_provider_errors_total',
      () =>
        new Counter({
          name: 'chain_provider_errors_total',
          help: 'Failures of one provider, by kind',
          labelNames: ['chain', 'provider', 'kind'],
          registers,
        }),
    ),
    providerDisagreements: metric(
      registry,
      'chain_provider_disagreements_total',
      () =>
        new Counter({
          name: 'chain_provider_disagreements_total',
          help: 'Block hashes this provider showed that another provider contradicted at the same height',
          labelNames: ['chain', 'provider'],
          registers,
        }),
    ),
    providerFailovers: metric(
      registry,
      'chain_provider_failovers_total',
      () =>
        new Counter({
          name: 'chain_provider_failovers_total',
          help: 'Times the listener stopped reading from this provider, by reason',
          labelNames: ['chain', 'provider', 'reason'],
          registers,
        }),
    ),
    providerThrottled: metric(
      registry,
      'chain_provider_throttled_total',
      () =>
        new Counter({
          name: 'chain_provider_throttled_total',
          help: 'Rate-limited answers of this provider that the listener slowed down for and asked again',
          labelNames: ['chain', 'provider'],
          registers,
        }),
    ),
    providersHealthy: gauge('chain_providers_healthy', 'Providers fit to be read from (up, in step with the others, not held)'),
  };
  byRegistry.set(registry, metrics);
  return metrics;
}

/** Every series of each chain and of its providers, from the start (see the header). Once per process. */
export function exportChainSeries(
  registry: Registry,
  chains: ReadonlyArray<{ name: string; providers: ReadonlyArray<{ name: string }> }>,
): void {
  const m = getChainMetrics(registry);
  for (const { name: chain, providers } of chains) {
    for (const gauge of [m.height, m.processedHeight, m.safeHeight, m.finalizedHeight, m.lag, m.wsConnected, m.up, m.providersHealthy])
      gauge.set({ chain }, 0);
    for (const tag of FINALITY_TAGS) {
      m.finalityKnown.set({ chain, tag }, 0);
      for (const reason of FINALITY_REJECTIONS) m.finalityRejected.inc({ chain, tag, reason }, 0);
    }
    m.reorgs.inc({ chain }, 0);
    m.reorgDepth.zero({ chain });
    m.eventsReceived.inc({ chain }, 0);
    for (const kind of RPC_ERROR_KINDS) m.rpcErrors.inc({ chain, kind }, 0);
    for (const { name: provider } of providers) {
      for (const gauge of [m.providerUp, m.providerHeight, m.providerLag, m.providerActive]) gauge.set({ chain, provider }, 0);
      m.providerLatency.zero({ chain, provider });
      m.providerDisagreements.inc({ chain, provider }, 0);
      m.providerThrottled.inc({ chain, provider }, 0);
      for (const kind of RPC_ERROR_KINDS) m.providerErrors.inc({ chain, provider, kind }, 0);
      for (const reason of FAILOVER_REASONS) m.providerFailovers.inc({ chain, provider, reason }, 0);
    }
  }
}
