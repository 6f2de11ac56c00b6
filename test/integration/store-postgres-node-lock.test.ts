// One running node per PostgreSQL schema (src/store/postgres/node-lock.ts), through openStore as a node
// opens its store: a second opener is refused, the lock outlives a lost connection.
import { Registry } from 'prom-client';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/runtime/log.ts';
import { openStore, type OpenedStore } from '../../src/store/open.ts';
import { waitFor } from '../support/kernel.ts';
import { pgAdminUrl, pgTestSchema } from '../support/postgres.ts';

const logger = createLogger({ level: 'silent' });
const opened: OpenedStore[] = [];

afterEach(async () => {
  for (const store of opened.splice(0).reverse()) await store.close();
});

async function open(schema: string, url: string): Promise<OpenedStore> {
  const store = await openStore(
    { kind: 'postgres', url, schema, poolSize: 2, statementTimeoutMs: 5_000 },
    { dataDir: '/nonexistent', owner: 'lock-test', logger, registry: new Registry() },
  );
  opened.push(store);
  return store;
}

describe('the node lock of a PostgreSQL schema', () => {
  it('refuses a second node on the same schema at once, and lets one in once the first closed', async () => {
    const { url, schema } = pgTestSchema('lock');
    const first = await open(schema, url);
    await expect(open(schema, url)).rejects.toMatchObject({ code: 'ETHHOOK_ERR_STORE_LOCKED', context: { schema } });
    // Another schema on the same server is another store.
    const other = pgTestSchema('lock_other');
    await open(other.schema, other.url);
    await first.close();
    opened.splice(opened.indexOf(first), 1);
    const again = await open(schema, url);
    expect(again.kind).toBe('postgres');
  });

  it('is taken again when its connection is lost, and still refuses a second node afterwards', async () => {
    const { url, schema } = pgTestSchema('relock');
    await open(schema, url);
    const admin = new pg.Client({ connectionString: pgAdminUrl() });
    await admin.connect();
    try {
      const lockHolders = async () =>
        (
          await admin.query<{ pid: number }>(
            "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND a.application_name = 'ethhook-node-lock' AND l.granted",
          )
        ).rows.map((r) => r.pid);
      await waitFor(async () => (await lockHolders()).length >= 1, 20_000, 'the lock held');
      const before = await lockHolders();
      for (const pid of before) await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      // A new session holds it again.
      await waitFor(
        async () => {
          const now = await lockHolders();
          return now.length > 0 && now.every((pid) => !before.includes(pid));
        },
        20_000,
        'the lock taken again',
      );
      await expect(open(schema, url)).rejects.toMatchObject({ code: 'ETHHOOK_ERR_STORE_LOCKED' });
    } finally {
      await admin.end();
    }
  });
});
