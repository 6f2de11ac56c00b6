// The cluster's notice bus on a real PostgreSQL (src/store/postgres/notice-bus.ts behind
// src/cluster/notices.ts): a change told on one instance reaches the other instances' actors, not its
// own twice; a malformed notification is dropped; a lost LISTEN connection comes back with a full reload.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyClusterNotice, clusterNotices, reloadAll, type ClusterNotice } from '../../src/cluster/notices.ts';
import type { PipelineNotices } from '../../src/pipeline-notices.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { noticeChannel, startPgNoticeBus, type PgNoticeBus } from '../../src/store/postgres/notice-bus.ts';
import { waitFor } from '../support/kernel.ts';
import { freshPgPool, type TestPgPool } from '../support/postgres.ts';

const log = createLogger({ level: 'silent' });
let pool: TestPgPool;
const buses: PgNoticeBus[] = [];

beforeAll(async () => {
  pool = await freshPgPool('notices');
});
afterAll(async () => {
  await Promise.all(buses.map((b) => b.close()));
  await pool.drop();
});

/** An instance: what its actors were told, through its own writes or the bus. */
async function instance(origin: string) {
  const told: string[] = [];
  const local: PipelineNotices = {
    async subscriptionsChanged(change) {
      told.push(
        change.upserted === undefined && change.removed === undefined
          ? 'reload'
          : `subs +${(change.upserted ?? []).join(',')} -${(change.removed ?? []).join(',')}`,
      );
    },
    async endpointChanged(id, _log, deleted) {
      told.push(`endpoint ${id}${deleted ? ' deleted' : ''}`);
    },
  };
  const bus = await startPgNoticeBus({
    pool,
    origin,
    logger: log,
    onNotice: (n: ClusterNotice) => applyClusterNotice(local, n, log),
    onResync: () => reloadAll(local, log),
  });
  buses.push(bus);
  return { told, notices: clusterNotices(local, bus) };
}

describe('the notice bus', () => {
  it("tells every other instance's actors, and the writer's own once", async () => {
    const a = await instance('a');
    const b = await instance('b');
    const c = await instance('c');
    await a.notices.subscriptionsChanged({ upserted: ['sub_1'] }, log);
    await a.notices.endpointChanged('ep_1', log, true);
    await b.notices.subscriptionsChanged({ upserted: Array.from({ length: 150 }, (_, i) => `s${i}`) }, log);
    const expected = ['subs +sub_1 -', 'endpoint ep_1 deleted'];
    await waitFor(() => c.told.length === 3 && b.told.length === 3 && a.told.length === 3, 10_000, 'all told');
    expect(c.told.filter((t) => t !== 'reload')).toEqual(expected);
    expect(c.told.filter((t) => t === 'reload')).toHaveLength(1);
    expect(b.told.filter((t) => !t.startsWith('subs +s0,'))).toEqual(expected);
    // The writer's own actors hear of its change once (locally), never back from the bus.
    expect(a.told).toEqual([...expected, 'reload']);
    expect(b.told.filter((t) => t.startsWith('subs +s0,s1,'))).toHaveLength(1);
  });

  it('drops a notification that is not a notice, and goes on', async () => {
    const a = await instance('a2');
    const channel = noticeChannel(pool.schema);
    await pool.run('t', (client) => client.query('SELECT pg_notify($1, $2)', [channel, 'not json']));
    await pool.run('t', (client) =>
      client.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify({ origin: 'x', kind: 'drop-tables' })]),
    );
    await pool.run('t', (client) =>
      client.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify({ origin: 'x', kind: 'endpoint', endpointId: 'ep_ok' })]),
    );
    await waitFor(() => a.told.includes('endpoint ep_ok'), 10_000, 'the good notice');
    expect(a.told.filter((t) => t !== 'endpoint ep_ok')).toEqual([]);
  });

  it('reloads everything after its connection was lost, and hears notices again', async () => {
    const a = await instance('a3');
    const b = await instance('b3');
    await pool.run('t', (client) =>
      client.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'ethhook-notices'`),
    );
    await waitFor(() => a.told.includes('reload') && b.told.includes('reload'), 20_000, 'a reload on reconnection');
    await b.notices.endpointChanged('ep_after', log);
    await waitFor(() => a.told.includes('endpoint ep_after'), 10_000, 'a notice after the reconnection');
  });
});
