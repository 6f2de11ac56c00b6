// The store contracts on LevelDB: the key-value engine (LevelKv) and the outbox (LevelOutbox), each
// test on a LevelDB directory of its own.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import { LevelOutbox } from '../../src/store/level/outbox/outbox.ts';
import { describeKvContract } from './kv.contract.ts';
import { describeOutboxContract, type OutboxContractOptions, type OutboxContractStore } from './outbox.contract.ts';

async function freshDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'ethhook-contract-level-'));
}

describeKvContract('LevelDB', async () => {
  const dir = await freshDir();
  const db = await openDb(dir);
  let closed = false;
  return {
    kv: new LevelKv(db),
    async close() {
      if (closed) return;
      closed = true;
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

/** The outbox of the database in `dir`: `reopen` hands it to a new instance; `close` of an instance not reopened removes the directory. */
async function openOutbox(dir: string, options: OutboxContractOptions): Promise<OutboxContractStore> {
  const db = await openDb(dir);
  const kv = new LevelKv(db);
  const outbox = await LevelOutbox.open(kv, options);
  let closed = false;
  const shut = async () => {
    if (closed) return false;
    closed = true;
    await outbox.idle();
    await db.close();
    return true;
  };
  return {
    outbox,
    kv,
    async reopen() {
      await shut();
      return openOutbox(dir, options);
    },
    async close() {
      if (await shut()) await rm(dir, { recursive: true, force: true });
    },
  };
}

describeOutboxContract('LevelDB', async (options) => openOutbox(await freshDir(), options));
