// The ChainListener's metrics: the exact catalog names, once per registry, sharing what exists already.
import { Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { getChainMetrics } from '../../src/actors/chain-listener/metrics.ts';

describe('getChainMetrics', () => {
  it('creates the catalog names once per registry, and reuses a metric registered by someone else', async () => {
    const registry = new Registry();
    const foreign = new Gauge({ name: 'chain_height', help: 'made elsewhere', labelNames: ['chain'], registers: [registry] });
    const m = getChainMetrics(registry);
    expect(getChainMetrics(registry)).toBe(m);
    expect(m.height).toBe(foreign);
    const names = (await registry.getMetricsAsJSON()).map((x) => x.name).sort();
    expect(names).toEqual(
      [
        'chain_finality_known',
        'chain_finality_rejected_total',
        'chain_finalized_height',
        'chain_safe_height',
        'chain_height',
        'chain_lag_blocks',
        'chain_processed_height',
        'chain_provider_active',
        'chain_provider_disagreements_total',
        'chain_provider_errors_total',
        'chain_provider_failovers_total',
        'chain_provider_height',
        'chain_provider_lag_blocks',
        'chain_provider_throttled_total',
        'chain_provider_latency_seconds',
        'chain_provider_up',
        'chain_providers_healthy',
        'chain_reorg_depth',
        'chain_reorgs_total',
        'chain_rpc_errors_total',
        'chain_up',
        'chain_ws_connected',
        'events_received_total',
      ].sort(),
    );
  });
});
