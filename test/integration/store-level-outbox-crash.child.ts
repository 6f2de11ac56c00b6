// Child process of store-level-outbox-crash.test.ts: enqueues numbered batches of 200 jobs plus a marker
// (the caller's extra op) as fast as it can, printing each committed batch number, until killed.
import { openDb } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import { LevelOutbox } from '../../src/store/level/outbox/outbox.ts';

const dir = process.argv[2]!;
const db = await openDb(dir);
const outbox = await LevelOutbox.open(new LevelKv(db));

for (let b = 0; ; b++) {
  const jobs = Array.from({ length: 200 }, (_, i) => ({
    id: `msg_b${b}_j${i}`,
    endpointId: `ep_${i % 7}`,
    subscriptionId: 'sub_1',
    type: 'log.created' as const,
    payload: {
      type: 'log.created' as const,
      timestamp: new Date().toISOString(),
      data: {
        chainId: 1,
        blockNumber: b,
        blockHash: '0x' + 'a'.repeat(64),
        transactionHash: '0x' + 'b'.repeat(64),
        logIndex: i,
        address: '0x' + 'c'.repeat(40),
        topics: ['0x' + 'd'.repeat(64)],
        data: '0x' + 'e'.repeat(256),
        subscriptionId: 'sub_1',
      },
    },
    eventSeenAt: Date.now(),
  }));
  await outbox.enqueueBatch(jobs, [{ type: 'put', space: 'test-markers', key: String(b).padStart(8, '0'), value: b }]);
  process.stdout.write(`${b}\n`);
}
