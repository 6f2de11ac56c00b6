/** A registry holding every metric the node registers (as main.ts builds it), for catalog tests. */
import { Registry } from 'prom-client';
import { getBackfillMetrics } from '../../src/actors/backfill/metrics.ts';
import { getChainMetrics } from '../../src/actors/chain-listener/metrics.ts';
import { clusterMetrics } from '../../src/cluster/coordinator.ts';
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
  getBackfillMetrics(registry, []);
  delivererMetrics(registry);
  getGovernanceMetrics(registry);
  streamCounters(registry);
  streamRelayCounters(registry);
  pipelineStages(registry);
  storeMetrics(registry);
  clusterMetrics(registry);
  return registry;
}
