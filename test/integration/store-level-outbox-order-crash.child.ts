// Child process of store-level-outbox-order-crash.test.ts: round after round, enqueues 100 creations, then
// their 100 retractions (each follows its creation) while the first due jobs are completed or
// dead-lettered, then the other due jobs one by one; prints each round number once its writes are in,
// until killed.
import { openDb } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import { type NewJob } from '../../src/store/outbox/job.ts';
import { LevelOutbox } from '../../src/store/level/outbox/outbox.ts';

const dir = process.argv[2]!;
const db = await openDb(dir);
const outbox = await LevelOutbox.open(new LevelKv(db));

function job(id: string, follows?: string): NewJob {
  const type = follows === undefined ? ('log.created' as const) : ('log.removed' as const);
  return {
    id,
    endpointId: 'ep_a',
    subscriptionId: 'sub_1',
    type,
    eventSeenAt: Date.now(),
    ...(follows === undefined ? {} : { follows }),
    payload: {
      type,
      timestamp: new Date().toISOString(),
      data: {
        chainId: 1,
        blockNumber: 1,
        blockHash: '0x01',
        transactionHash: '0x02',
        logIndex: 0,
        address: '0x03',
        topics: [],
        data: '0x',
        subscriptionId: 'sub_1',
      },
    },
  };
}

for (let round = 0; ; round++) {
  const created = Array.from({ length: 100 }, (_, i) => `msg_r${round}_c${i}`);
  await outbox.enqueueBatch(created.map((id) => job(id)));
  const due = await outbox.due(Date.now() + 1, 1_000);
  // The retractions' enqueue races with the first outcomes; the rest go one write at a time, so most of
  // the round is spent with retractions held.
  const outcome = (j: (typeof due)[number], i: number) => (i % 3 === 0 ? outbox.deadLetter(j, 'test') : outbox.complete(j));
  await Promise.all([outbox.enqueueBatch(created.map((id) => job(id.replace('_c', '_x'), id))), ...due.slice(0, 10).map(outcome)]);
  for (const [i, j] of due.slice(10).entries()) await outcome(j, i);
  process.stdout.write(`${round}\n`);
}
