/** A registry holding every metric the node registers (as main.ts builds it), for catalog tests. */
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { getChainMetrics } from '../../src/actors/chain-listener/metrics.ts';
import { ClusterCoordinator } from '../../src/cluster/coordinator.ts';
import { LocalClusterStore } from '../../src/cluster/local-store.ts';
import { delivererMetrics } from '../../src/actors/deliverer/metrics.ts';
import { getGovernanceMetrics } from '../../src/actors/governance/metrics.ts';
import { getMatcherMetrics } from '../../src/actors/matcher/metrics.ts';
import { pipelineStages } from '../../src/pipeline-stages.ts';
import { registerKernelMetrics } from '../../src/runtime/metrics.ts';
import { storeMetrics } from '../../src/store/metrics.ts';
import { streamCounters, streamRelayCounters } from '../../src/streams/metrics.ts';

export function registryWithAllMetrics(): Registry {
  const registry = new Registry();
  registerKernelMetrics(registry, () => []);
  getChainMetrics(registry);
  getMatcherMetrics(registry);
  delivererMetrics(registry);
  getGovernanceMetrics(registry);
  streamCounters(registry);
  streamRelayCounters(registry);
  pipelineStages(registry);
  storeMetrics(registry);
  // The coordinator registers the cluster metrics when it is built; it runs nothing until start().
  new ClusterCoordinator({
    store: new LocalClusterStore({ id: 'catalog', version: '0.0.0' }),
    self: 'catalog',
    chains: [],
    governance: false,
    leaseMs: 15_000,
    heartbeatMs: 5_000,
    registry,
    logger: pino({ level: 'silent' }),
    heights: () => Promise.resolve({}),
  });
  return registry;
}
