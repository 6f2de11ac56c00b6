// The store contracts on a real PostgreSQL (the run's server, a schema per store opened).
import { Registry } from 'prom-client';
import { createLogger } from '../../src/runtime/log.ts';
import { PgKv } from '../../src/store/postgres/kv.ts';
import { PgOutbox } from '../../src/store/postgres/outbox.ts';
import { openPgPool, type PgPool } from '../../src/store/postgres/pool.ts';
import { dropPgSchema, freshPgPool, pgAdminUrl } from '../support/postgres.ts';
import { describeKvContract } from './kv.contract.ts';
import { describeOutboxContract, type OutboxContractOptions, type OutboxContractStore } from './outbox.contract.ts';

/** The outbox on `pool`'s schema; `reopen` opens a new pool and outbox on it, as a restarted node (same owner). */
async function pgOutboxStore(pool: PgPool, options: OutboxContractOptions): Promise<OutboxContractStore> {
  const kv = new PgKv(pool);
  const outbox = await PgOutbox.open(pool, kv, { owner: 'contract', ...options });
  let closed = false;
  const shut = async () => {
    closed = true;
    await outbox.close();
    await pool.close();
  };
  return {
    outbox,
    kv,
    async reopen() {
      await shut();
      const again = await openPgPool({
        url: pgAdminUrl(),
        schema: pool.schema,
        logger: createLogger({ level: 'silent' }),
        registry: new Registry(),
      });
      return pgOutboxStore(again, options);
    },
    async close() {
      if (closed) return;
      await shut();
      await dropPgSchema(pgAdminUrl(), pool.schema);
    },
  };
}

describeOutboxContract('PostgreSQL', async (options) => pgOutboxStore(await freshPgPool('outbox'), options));

describeKvContract('PostgreSQL', async () => {
  const pool = await freshPgPool('kv');
  let closed = false;
  return {
    kv: new PgKv(pool),
    async close() {
      if (closed) return;
      closed = true;
      await pool.drop();
    },
  };
});
