// The PostgreSQL pool on a real server: every connection starts in the store's schema with its statement
// timeout; transient failures (a terminated backend, a statement timeout, a server that does not
// answer) are retried until they pass or the wait runs out, permanent ones are thrown at once; the
// store metrics count each; and no log line or error carries the password.
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EthhookError } from '../../src/runtime/errors.ts';
import { migrate } from '../../src/store/postgres/migrate.ts';
import { openPgPool, type PgPool, type PgPoolOptions } from '../../src/store/postgres/pool.ts';
import { memoryLogger, waitFor } from '../support/kernel.ts';
import { pgAdminUrl, pgTestSchema } from '../support/postgres.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

const { schema } = pgTestSchema('pool');
const PASSWORD = () => decodeURIComponent(new URL(pgAdminUrl()).password);

interface Opened {
  pool: PgPool;
  registry: Registry;
  lines: Record<string, unknown>[];
}

const opened: PgPool[] = [];

async function open(options: Partial<PgPoolOptions> = {}): Promise<Opened> {
  const { logger, lines } = memoryLogger();
  const registry = new Registry();
  const pool = await openPgPool({ url: pgAdminUrl(), schema, logger, registry, ...options });
  opened.push(pool);
  return { pool, registry, lines };
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return 0;
  const { values } = await metric.get();
  const found = values.find(
    (v) => (v as { metricName?: string }).metricName !== `${name}_bucket` && Object.entries(labels).every(([k, l]) => v.labels[k] === l),
  );
  return found?.value ?? 0;
}

async function histogramCount(registry: Registry, op: string): Promise<number> {
  const metric = registry.getSingleMetric('store_operation_duration_seconds');
  const { values } = await metric!.get();
  return (
    values.find((v) => (v as { metricName?: string }).metricName === 'store_operation_duration_seconds_count' && v.labels.op === op)
      ?.value ?? 0
  );
}

beforeAll(async () => {
  const { pool } = await open();
  await migrate(pool);
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((p) => p.close()));
});

describe('connections', () => {
  it("start in the store's schema with its statement timeout", async () => {
    const { pool } = await open({ statementTimeoutMs: 1234 });
    const settings = await pool.run('test', async (c) => ({
      path: (await c.query<{ search_path: string }>('SHOW search_path')).rows[0]!.search_path,
      timeout: (await c.query<{ statement_timeout: string }>('SHOW statement_timeout')).rows[0]!.statement_timeout,
    }));
    expect(settings).toEqual({ path: schema, timeout: '1234ms' });
    // Unqualified names are the schema's tables.
    await pool.run('test', (c) => c.query("INSERT INTO kv (space, key, value) VALUES ('s', 'k', '1')"));
    expect(await pool.run('test', async (c) => (await c.query(`SELECT 1 FROM ${schema}.kv WHERE key = 'k'`)).rowCount)).toBe(1);
  });

  it("an op's error series exist from its first run, at 0 per kind (an alert's increase() then sees its first error)", async () => {
    const { pool, registry } = await open();
    await pool.run('test.fresh', (c) => c.query('SELECT 1'));
    const { values } = await registry.getSingleMetric('store_errors_total')!.get();
    const series = values.filter((v) => v.labels.op === 'test.fresh').map((v) => [v.labels.kind, v.value]);
    expect(series.sort()).toEqual([
      ['query', 0],
      ['timeout', 0],
      ['unavailable', 0],
    ]);
  });

  it('refuses a schema name that is not a lower-case identifier', async () => {
    await expect(open({ schema: 'x; DROP TABLE kv' })).rejects.toThrow(/lower-case SQL identifier/);
  });
});

describe('transient errors are retried', () => {
  it('a backend terminated under an operation: the operation runs again on a new connection and succeeds', async () => {
    const { pool, registry, lines } = await open({ poolSize: 2 });
    const killer = await open();
    let attempts = 0;
    const result = await pool.run('test.terminated', async (c) => {
      attempts += 1;
      const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      if (attempts === 1) await killer.pool.run('test.kill', (k) => k.query('SELECT pg_terminate_backend($1)', [pid]));
      return (await c.query<{ n: number }>('SELECT 41 + 1 AS n')).rows[0]!.n;
    });
    expect(result).toBe(42);
    expect(attempts).toBe(2);
    expect(await metricValue(registry, 'store_errors_total', { op: 'test.terminated', kind: 'unavailable' })).toBe(1);
    expect(await histogramCount(registry, 'test.terminated')).toBe(1);
    expect(pool.up()).toBe(true);
    expect(await metricValue(registry, 'store_up')).toBe(1);
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['PostgreSQL unavailable; retrying', 'PostgreSQL answers again']));
  });

  it('a transaction cut off by a terminated backend is retried whole, and lands once', async () => {
    const { pool, registry } = await open();
    const killer = await open();
    let attempts = 0;
    await pool.tx('test.tx', async (c) => {
      attempts += 1;
      await c.query("INSERT INTO kv (space, key, value) VALUES ('tx', 'once', '1')");
      if (attempts === 1) {
        const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
        await killer.pool.run('test.kill', (k) => k.query('SELECT pg_terminate_backend($1)', [pid]));
        await c.query('SELECT 1');
      }
    });
    expect(attempts).toBe(2);
    expect(await pool.run('test', async (c) => (await c.query("SELECT 1 FROM kv WHERE space = 'tx'")).rowCount)).toBe(1);
    expect(await metricValue(registry, 'store_errors_total', { op: 'test.tx', kind: 'unavailable' })).toBe(1);
  });

  it('a statement timeout counts as kind timeout and is retried', async () => {
    const { pool, registry } = await open({ statementTimeoutMs: 100 });
    let attempts = 0;
    await pool.run('test.slow', async (c) => {
      attempts += 1;
      await c.query(attempts === 1 ? 'SELECT pg_sleep(2)' : 'SELECT 1');
    });
    expect(attempts).toBe(2);
    expect(await metricValue(registry, 'store_errors_total', { op: 'test.slow', kind: 'timeout' })).toBe(1);
  });

  describe('a server that does not answer', () => {
    let proxy: TcpProxy;
    const proxied = () => {
      const url = new URL(pgAdminUrl());
      url.port = String(proxy.port);
      return url.toString();
    };

    beforeAll(async () => {
      proxy = await startTcpProxy(Number(new URL(pgAdminUrl()).port));
    });
    afterAll(() => proxy.stop());
    afterEach(() => proxy.refuse(false));

    it('takes store_up to 0 with lastError while it fails, and back to 1 once an operation passes', async () => {
      const { pool, registry, lines } = await open({ url: proxied(), retryForMs: 30_000 });
      proxy.refuse(true);
      const pending = pool.run('test.down', async (c) => (await c.query<{ n: number }>('SELECT 7 AS n')).rows[0]!.n);
      await waitFor(() => !pool.up(), 10_000, 'store down');
      expect(await metricValue(registry, 'store_up')).toBe(0);
      expect(pool.lastError?.message).toBeTruthy();
      await waitFor(
        async () => (await metricValue(registry, 'store_errors_total', { op: 'test.down', kind: 'unavailable' })) >= 2,
        10_000,
        'retries',
      );
      proxy.refuse(false);
      expect(await pending).toBe(7);
      expect(pool.up()).toBe(true);
      expect(pool.lastError).toBeUndefined();
      expect(await metricValue(registry, 'store_up')).toBe(1);
      const logged = JSON.stringify(lines);
      expect(logged).not.toContain(PASSWORD());
      expect(logged).toContain(`127.0.0.1:${proxy.port}`);
    });

    it('gives up after retryForMs with ETHHOOK_ERR_STORE_UNAVAILABLE naming the operation, not the password', async () => {
      const { pool, lines } = await open({ url: proxied(), retryForMs: 300 });
      proxy.refuse(true);
      let calls = 0;
      const err = await pool
        .run('test.gone', async () => {
          calls += 1;
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EthhookError);
      expect(err).toMatchObject({ code: 'ETHHOOK_ERR_STORE_UNAVAILABLE', context: { op: 'test.gone', kind: 'unavailable' } });
      expect((err as EthhookError).context.attempts).toBeGreaterThan(1);
      expect(calls).toBe(0);
      expect(JSON.stringify({ message: (err as Error).message, context: (err as EthhookError).context })).not.toContain(PASSWORD());
      expect(JSON.stringify(lines)).not.toContain(PASSWORD());
    });
  });
});

describe('permanent errors are not retried', () => {
  it('a missing table, a syntax error and a unique violation are thrown at once, counted as kind query, and leave the store up', async () => {
    const { pool, registry, lines } = await open();
    await pool.run('test', (c) => c.query("INSERT INTO kv (space, key, value) VALUES ('p', 'taken', '1')"));
    const cases: [string, string, string][] = [
      ['test.missing', 'SELECT * FROM no_such_table', '42P01'],
      ['test.syntax', 'SELEC 1', '42601'],
      ['test.unique', "INSERT INTO kv (space, key, value) VALUES ('p', 'taken', '2')", '23505'],
    ];
    for (const [op, sql, code] of cases) {
      let attempts = 0;
      const err = await pool
        .run(op, async (c) => {
          attempts += 1;
          await c.query(sql);
        })
        .catch((e: unknown) => e);
      expect(err, op).toMatchObject({ code });
      expect(attempts, op).toBe(1);
      expect(await metricValue(registry, 'store_errors_total', { op, kind: 'query' }), op).toBe(1);
    }
    expect(pool.up()).toBe(true);
    expect(lines.filter((l) => l.msg === 'PostgreSQL operation failed').map((l) => l.code)).toEqual(['42P01', '42601', '23505']);
  });

  it('a transaction whose function throws is rolled back', async () => {
    const { pool } = await open();
    await expect(
      pool.tx('test.rollback', async (c) => {
        await c.query("INSERT INTO kv (space, key, value) VALUES ('rb', 'k', '1')");
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(await pool.run('test', async (c) => (await c.query("SELECT 1 FROM kv WHERE space = 'rb'")).rowCount)).toBe(0);
  });
});
