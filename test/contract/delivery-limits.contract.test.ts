// The shared delivery limits contract on a real PostgreSQL (a schema of its own per test, two pools on
// it as two instances would have) and on the in-memory model.
import { PgDeliveryLimits } from '../../src/store/postgres/delivery-limits.ts';
import { openPgPool } from '../../src/store/postgres/pool.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { Registry } from 'prom-client';
import { MemoryDeliveryLimits } from '../support/memory-delivery-limits.ts';
import { freshPgPool, pgAdminUrl } from '../support/postgres.ts';
import { describeDeliveryLimitsContract } from './delivery-limits.contract.ts';

describeDeliveryLimitsContract('PostgreSQL', async () => {
  const first = await freshPgPool('limits');
  const second = await openPgPool({
    url: pgAdminUrl(),
    schema: first.schema,
    logger: createLogger({ level: 'silent' }),
    registry: new Registry(),
  });
  let turn = 0;
  return {
    // Instances alternate between two pools on the schema: the rows are what they share.
    instance: (owner) => new PgDeliveryLimits(turn++ % 2 === 0 ? first : second, owner),
    async close() {
      await second.close();
      await first.drop();
    },
  };
});

describeDeliveryLimitsContract('in-memory model', async () => {
  const limits = new MemoryDeliveryLimits();
  return { instance: (owner) => limits.as(owner), close: async () => {} };
});
