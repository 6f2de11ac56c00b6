// Cluster sharding: every endpoint belongs to exactly one instance, and the shards are balanced.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { endpointShard, ownsEndpoint } from '../../src/cluster.ts';

describe('endpoint shards', () => {
  it('give every endpoint to exactly one ordinal, the same one every time', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.integer({ min: 1, max: 16 }), (id, size) => {
        const owners = Array.from({ length: size }, (_, ordinal) => ownsEndpoint({ ordinal, size })(id));
        expect(owners.filter(Boolean)).toHaveLength(1);
        expect(owners.indexOf(true)).toBe(endpointShard(id, size));
      }),
    );
  });

  it('spread endpoints evenly over a 3-instance cluster', () => {
    const counts = [0, 0, 0];
    for (let i = 0; i < 30_000; i++) counts[endpointShard(`ep_${i}`, 3)]!++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
  });
});
