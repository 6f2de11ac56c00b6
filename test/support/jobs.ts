/** Outbox jobs for tests: one log.created job (`newJob`), or `n` to one endpoint with ids `msg_<tag>_<i>` (`jobsFor`). */
import type { NewJob } from '../../src/store/outbox/job.ts';

/** One log.created job to `endpointId`, seen at `seenAt` (ms); `extra` overrides any field (nextAttemptAt, ...). */
export function newJob(id: string, endpointId = 'ep_a', extra: Partial<NewJob> = {}, seenAt = Date.now()): NewJob {
  return {
    id,
    endpointId,
    subscriptionId: 'sub_1',
    type: 'log.created',
    payload: {
      type: 'log.created',
      timestamp: new Date(seenAt).toISOString(),
      data: {
        chainId: 1,
        blockNumber: 10,
        blockHash: '0x' + '1'.repeat(64),
        transactionHash: '0x' + '2'.repeat(64),
        logIndex: 0,
        address: '0x' + '3'.repeat(40),
        topics: [],
        data: '0x',
        subscriptionId: 'sub_1',
      },
    },
    eventSeenAt: seenAt,
    ...extra,
  };
}

export function jobsFor(endpointId: string, n: number, tag: string, eventSeenAt = Date.now()): NewJob[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `msg_${tag}_${i}`,
    endpointId,
    subscriptionId: 'sub_1',
    type: 'log.created' as const,
    eventSeenAt,
    payload: {
      type: 'log.created' as const,
      timestamp: new Date().toISOString(),
      data: {
        chainId: 1,
        blockNumber: 1,
        blockHash: '0x01',
        transactionHash: '0x02',
        logIndex: i,
        address: '0x03',
        topics: ['0x04'],
        data: '0x',
        subscriptionId: 'sub_1',
      },
    },
  }));
}
