/**
 * Cluster sharding (docs/architecture.md, "Clustering, as it is today"): every instance follows every chain, and each
 * delivers the endpoints of its own shard — sha256 of the endpoint id, its first 4 bytes as an unsigned
 * integer, modulo the cluster size — so an event is delivered by exactly one instance. The ordinal is
 * the instance's position (a Kubernetes StatefulSet's pod ordinal): `node.cluster` in the config.
 */
import { createHash } from 'node:crypto';

export function endpointShard(endpointId: string, size: number): number {
  return createHash('sha256').update(endpointId).digest().readUInt32BE(0) % size;
}

/** The predicate the Matcher indexes subscriptions by: only this instance's endpoints. */
export function ownsEndpoint(cluster: { ordinal: number; size: number }): (endpointId: string) => boolean {
  if (cluster.size === 1) return () => true;
  return (endpointId) => endpointShard(endpointId, cluster.size) === cluster.ordinal;
}
