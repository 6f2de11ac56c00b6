/**
 * The ChainListener's metrics, created once per prom-client registry (a restarted behaviour finds the
 * same instruments again; one already registered under the same name is reused). Label `chain` is the
 * configured chain name, `kind` a closed set.
 *
 * - `chain_height{chain}`: the head the listener last saw.
 * - `chain_processed_height{chain}`: the last block acknowledged by the next actor (the cursor).
 * - `chain_finalized_height{chain}`: head - maxReorgDepth, the height below which a reorg is fatal.
 * - `chain_lag_blocks{chain}`: head seen - processed height (never below 0), so confirmations count:
 *   with `confirmations: 12` a listener that keeps up reads 12.
 * - `chain_ws_connected{chain}`: 1 while the WebSocket session is up.
 * - `chain_up{chain}`: 1 while a session with the node works (WebSocket, or HTTP polling), the chain
 *   verified; 0 while the listener cannot reach it.
 *
 * `exportChainSeries` gives every configured chain all its series (0, or no error of any kind) when the
 * node starts, so a chain whose node is never reached is still visible: chain_up 0, chain_height 0
 * that never changes (EthhookChainDown, EthhookChainHeadStalled), its connection errors counting.
 * - `chain_reorgs_total{chain}`: reorgs that orphaned at least one emitted block; their depth goes to
 *   the histogram `chain_reorg_depth{chain}`.
 * - `events_received_total{chain}`: logs emitted (retractions not counted).
 * - `chain_rpc_errors_total{chain,kind}`: every transport or node failure, by kind (RPC_ERROR_KINDS).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export const RPC_ERROR_KINDS = [
  'timeout', // a request got no answer in requestTimeoutMs
  'rpc', // the node answered with a JSON-RPC error
  'malformed', // a frame or result failed validation
  'unknown-id', // a response or notification for nothing we asked
  'connection', // connect failed or the connection dropped
  'range-too-large', // eth_getLogs range refused; the range is split
  'inconsistent', // the chain moved while a range was read
] as const;
export type RpcErrorKind = (typeof RPC_ERROR_KINDS)[number];

export interface ChainMetrics {
  height: Gauge<'chain'>;
  processedHeight: Gauge<'chain'>;
  finalizedHeight: Gauge<'chain'>;
  lag: Gauge<'chain'>;
  wsConnected: Gauge<'chain'>;
  up: Gauge<'chain'>;
  reorgs: Counter<'chain'>;
  reorgDepth: Histogram<'chain'>;
  eventsReceived: Counter<'chain'>;
  rpcErrors: Counter<'chain' | 'kind'>;
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
  const gauge = (name: string, help: string) =>
    metric(registry, name, () => new Gauge({ name, help, labelNames: ['chain'], registers }));
  const metrics: ChainMetrics = {
    height: gauge('chain_height', 'Head block number seen'),
    processedHeight: gauge('chain_processed_height', 'Last block acknowledged downstream (the persisted cursor)'),
    finalizedHeight: gauge('chain_finalized_height', 'Head minus maxReorgDepth: below it a reorg stops the listener'),
    lag: gauge('chain_lag_blocks', 'Head seen minus processed height: blocks not yet acknowledged downstream (confirmations included)'),
    wsConnected: gauge('chain_ws_connected', '1 while the WebSocket session to the node is up'),
    up: gauge('chain_up', '1 while a session with the chain node works (WebSocket or HTTP polling)'),
    reorgs: metric(registry, 'chain_reorgs_total', () =>
      new Counter({ name: 'chain_reorgs_total', help: 'Reorgs that orphaned emitted blocks', labelNames: ['chain'], registers }),
    ),
    reorgDepth: metric(registry, 'chain_reorg_depth', () =>
      new Histogram({
        name: 'chain_reorg_depth',
        help: 'Emitted blocks orphaned per reorg',
        labelNames: ['chain'],
        buckets: [1, 2, 3, 5, 8, 13, 21, 34, 64, 128],
        registers,
      }),
    ),
    eventsReceived: metric(registry, 'events_received_total', () =>
      new Counter({ name: 'events_received_total', help: 'Logs emitted by the chain listeners', labelNames: ['chain'], registers }),
    ),
    rpcErrors: metric(registry, 'chain_rpc_errors_total', () =>
      new Counter({
        name: 'chain_rpc_errors_total',
        help: 'Chain node transport and protocol errors, by kind',
        labelNames: ['chain', 'kind'],
        registers,
      }),
    ),
  };
  byRegistry.set(registry, metrics);
  return metrics;
}

/** Every series of each named chain, from the start (see the header). Once per process. */
export function exportChainSeries(registry: Registry, chains: readonly string[]): void {
  const m = getChainMetrics(registry);
  for (const chain of chains) {
    for (const gauge of [m.height, m.processedHeight, m.finalizedHeight, m.lag, m.wsConnected, m.up]) gauge.set({ chain }, 0);
    m.reorgs.inc({ chain }, 0);
    m.eventsReceived.inc({ chain }, 0);
    for (const kind of RPC_ERROR_KINDS) m.rpcErrors.inc({ chain, kind }, 0);
  }
}
