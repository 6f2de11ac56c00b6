/**
 * `fencedKv(kv, lease)`: the same engine, every write of it conditional on a lease (src/store/kv.ts,
 * KvFence). `lease.current()` is read at each write: the fence of the lease held now; a write refused
 * for the lease calls `lease.suspect()`. A write made while it is
 * undefined (the lease not held) is refused with ETHHOOK_ERR_LEASE_LOST, as a stale fence would be by
 * the store. Single puts and deletes become one-op batches so that they carry the fence too, and a
 * `clear` reads the range's keys and deletes them in one fenced batch (use it on small ranges). Reads
 * go to `kv` unchanged.
 */
import { EthhookError, isEthhookError } from '../runtime/errors.ts';
import type { Kv, KvFence, KvOp, KvRange, KvSpace } from './kv.ts';

/** A lease as the writer sees it (src/cluster/coordinator.ts LeaseGate). */
export interface FenceSource {
  readonly name: string;
  /** The fence of the lease held now; undefined when not held. */
  current(): KvFence | undefined;
  /** Told when a write was refused for the lease. */
  suspect(): void;
}

export function fencedKv(kv: Kv, lease: FenceSource): Kv {
  const withFence = (ops: readonly KvOp[]): KvOp[] => {
    const current = lease.current();
    if (current === undefined)
      throw new EthhookError('ETHHOOK_ERR_LEASE_LOST', `lease ${lease.name} is not held here`, { lease: lease.name });
    return [current, ...ops];
  };
  const fenced: Kv = {
    kind: kv.kind,
    space<V>(name: string): KvSpace<V> {
      const space = kv.space<V>(name);
      return Object.assign(Object.create(space) as KvSpace<V>, {
        put: (key: string, value: V) => fenced.batch([space.putOp(key, value)]),
        del: (key: string) => fenced.batch([space.delOp(key)]),
        clear: async (range?: KvRange) => fenced.batch((await space.keys(range)).map((key) => space.delOp(key))),
      });
    },
    async batch(ops: readonly KvOp[]): Promise<void> {
      if (ops.length === 0) return;
      try {
        await kv.batch(withFence(ops));
      } catch (err) {
        if (isEthhookError(err, 'ETHHOOK_ERR_LEASE_LOST')) lease.suspect();
        throw err;
      }
    },
  };
  return fenced;
}
