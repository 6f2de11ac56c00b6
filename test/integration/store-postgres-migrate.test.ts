// The PostgreSQL migrations on a real server: a fresh schema is created and migrated, instances starting
// together apply each migration once, a dry run writes nothing, a schema newer than the code is refused,
// a failing migration is rolled back whole, and `ethhook store migrate` plans and applies from the
// command line.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/runtime/log.ts';
import { checkServerVersion, migrate, planMigrations, readMigrations, type Migration } from '../../src/store/postgres/migrate.ts';
import { openPgPool, type PgPool } from '../../src/store/postgres/pool.ts';
import { pgAdminUrl, pgTestSchema } from '../support/postgres.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const pools: PgPool[] = [];

async function open(schema: string): Promise<PgPool> {
  const pool = await openPgPool({ url: pgAdminUrl(), schema, logger: createLogger({ level: 'silent' }), registry: new Registry() });
  pools.push(pool);
  return pool;
}

async function query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: pgAdminUrl() });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

async function tables(schema: string): Promise<string[]> {
  const rows = await query<{ name: string }>(
    'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1',
    [schema],
  );
  return rows.map((r) => r.name);
}

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

describe('migrate', () => {
  it('creates the schema and its tables, and records each version once', async () => {
    const { schema } = pgTestSchema('fresh');
    const known = await readMigrations();
    expect(known.map((m) => [m.version, m.name])).toContainEqual([1, 'init']);
    const applied = await migrate(await open(schema));
    expect(applied.map((m) => m.version)).toEqual(known.map((m) => m.version));
    expect(await tables(schema)).toEqual([
      'cluster_instances',
      'cluster_leases',
      'delivery_breakers',
      'delivery_rate_buckets',
      'kv',
      'outbox_dead',
      'outbox_jobs',
      'schema_migrations',
      'stream_events',
    ]);
    const recorded = await query<{ version: number; name: string }>(
      `SELECT version, name FROM ${schema}.schema_migrations ORDER BY version`,
    );
    expect(recorded).toEqual(known.map((m) => ({ version: m.version, name: m.name })));
    // Again: nothing to do.
    expect(await migrate(await open(schema))).toEqual([]);
  });

  it('keys of the kv table sort bytewise, as LevelDB orders them', async () => {
    const { schema } = pgTestSchema('collate');
    const pool = await open(schema);
    await migrate(pool);
    const keys = ['b', 'B', 'a!1', 'a\xff', 'a~', '_'];
    await pool.run('test', (c) => c.query(`INSERT INTO kv (space, key, value) SELECT 's', k, '1' FROM unnest($1::text[]) k`, [keys]));
    const rows = await pool.run('test', (c) => c.query<{ key: string }>("SELECT key FROM kv WHERE space = 's' ORDER BY key"));
    expect(rows.rows.map((r) => r.key)).toEqual([...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
  });

  it('instances starting together apply each migration once', async () => {
    const { schema } = pgTestSchema('race');
    const known = await readMigrations();
    // A slow migration, so that the second instance arrives while the first holds the lock.
    const slow: Migration[] = [...known, { version: 900, name: 'slow', sql: 'SELECT pg_sleep(0.3); CREATE TABLE slow_once (n int)' }];
    const opened = await Promise.all([open(schema), open(schema), open(schema)]);
    const results = await Promise.all(opened.map((p) => migrate(p, slow)));
    const counts = results.map((r) => r.length).sort();
    expect(counts).toEqual([0, 0, slow.length]);
    const recorded = await query<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.schema_migrations`);
    expect(Number(recorded[0]!.n)).toBe(slow.length);
  });

  it('a failing migration is rolled back whole and named in the error; the ones before it stay', async () => {
    const { schema } = pgTestSchema('failing');
    const known = await readMigrations();
    const broken: Migration[] = [...known, { version: 901, name: 'broken', sql: 'CREATE TABLE half (n int); SELEC 1' }];
    await expect(migrate(await open(schema), broken)).rejects.toThrow(/migration 901 \(broken\) failed: syntax error/);
    expect(await tables(schema)).not.toContain('half');
    const plan = await planMigrations(await open(schema), broken);
    expect(plan.applied).toEqual(known.map((m) => m.version));
    expect(plan.pending.map((m) => m.version)).toEqual([901]);
  });

  it('a dry run plans without writing anything', async () => {
    const { schema } = pgTestSchema('dry');
    const plan = await planMigrations(await open(schema));
    expect(plan.applied).toEqual([]);
    expect(plan.pending.map((m) => m.version)).toEqual((await readMigrations()).map((m) => m.version));
    expect(await query('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [schema])).toEqual([]);
  });

  it('refuses a schema that records a version newer than the code knows, naming both', async () => {
    const { schema } = pgTestSchema('newer');
    await migrate(await open(schema));
    await query(`INSERT INTO ${schema}.schema_migrations (version, name) VALUES (999, 'from_the_future')`);
    const newest = (await readMigrations()).at(-1)!.version;
    for (const run of [async () => migrate(await open(schema)), async () => planMigrations(await open(schema))]) {
      const err = await run().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ETHHOOK_ERR_STORE_SCHEMA_NEWER', context: { schema, schemaVersion: 999, knownVersion: newest } });
      expect((err as Error).message).toContain(`version 999`);
      expect((err as Error).message).toContain(`newest migration is ${newest}`);
    }
  });
});

describe('ethhook store migrate', () => {
  interface Run {
    code: number;
    stdout: string;
    stderr: string;
  }

  /** The CLI as operators run it, the store's URL (and its password) in ETHHOOK_STORE__URL. */
  function ethhook(args: string[], schema: string): Promise<Run> {
    const env = {
      PATH: process.env.PATH ?? '',
      ETHHOOK_STORE__KIND: 'postgres',
      ETHHOOK_STORE__URL: pgAdminUrl(),
      ETHHOOK_STORE__SCHEMA: schema,
    };
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        ['bin/ethhook.mjs', 'store', 'migrate', ...args],
        { cwd: ROOT, env, timeout: 60_000 },
        (err, stdout, stderr) => {
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
        },
      );
    });
  }

  it('--dry-run prints the plan and writes nothing; without it, applies it; then there is nothing to do', async () => {
    const { schema } = pgTestSchema('cli');
    const password = new URL(pgAdminUrl()).password;
    const known = await readMigrations();
    const listed = known.map((m) => `  ${String(m.version).padStart(3, '0')} ${m.name}`);

    const dry = await ethhook(['--dry-run'], schema);
    expect(dry).toMatchObject({ code: 0, stderr: '' });
    expect(dry.stdout).toContain(`schema ${schema}`);
    expect(dry.stdout).toContain('at version 0; would apply:');
    for (const line of listed) expect(dry.stdout).toContain(line);
    expect(dry.stdout).not.toContain(password);
    expect(await query('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [schema])).toEqual([]);

    const applied = await ethhook([], schema);
    expect(applied).toMatchObject({ code: 0, stderr: '' });
    expect(applied.stdout).toContain('was at version 0; applied:');
    for (const line of listed) expect(applied.stdout).toContain(line);
    expect(await tables(schema)).toContain('kv');

    const again = await ethhook(['--dry-run'], schema);
    expect(again).toMatchObject({ code: 0 });
    expect(again.stdout).toContain(`at version ${known.at(-1)!.version}: up to date, nothing to apply`);
  });

  it('exits 1 with the error code on a schema newer than it knows', async () => {
    const { schema } = pgTestSchema('cli_newer');
    await migrate(await open(schema));
    await query(`INSERT INTO ${schema}.schema_migrations (version, name) VALUES (999, 'from_the_future')`);
    const run = await ethhook(['--dry-run'], schema);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('ETHHOOK_ERR_STORE_SCHEMA_NEWER');
    expect(run.stderr).toContain('version 999');
  });
});

describe('the server version', () => {
  it('PostgreSQL 15 and newer pass; an older server is refused naming its version', () => {
    expect(() => checkServerVersion(150000, '15.0')).not.toThrow();
    expect(() => checkServerVersion(180004, '18.4')).not.toThrow();
    expect(() => checkServerVersion(140011, '14.11')).toThrow(
      expect.objectContaining({ code: 'ETHHOOK_ERR_STORE_SERVER_TOO_OLD', message: expect.stringContaining('14.11') as string }),
    );
  });
});
