/** Outbox jobs for Deliverer tests: `n` log.created jobs to one endpoint, ids `msg_<tag>_<i>`. */
import type { NewJob } from '../../src/store/outbox.ts';

export function jobsFor(endpointId: string, n: number, tag: string, eventSeenAt = Date.now()): NewJob[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `msg_${tag}_${i}`, endpointId, subscriptionId: 'sub_1', type: 'log.created' as const, eventSeenAt,
    payload: {
      type: 'log.created' as const, timestamp: new Date().toISOString(),
      data: { chainId: 1, blockNumber: 1, blockHash: '0x01', transactionHash: '0x02', logIndex: i, address: '0x03', topics: ['0x04'], data: '0x', subscriptionId: 'sub_1' },
    },
  }));
}
