/**
 * The test PostgreSQL: one server per vitest run, one schema per test file.
 *
 * As vitest's globalSetup (vitest.config.ts), `setup` starts one embedded PostgreSQL (~2 s) on a free
 * 127.0.0.1 port with its data directory under os.tmpdir() (`ethhook-pg-*`; test/support/pg-server.ts:
 * its settings, and the detached watchdog that stops it if the run dies), and `provide`s its admin URL
 * to the test files as `pgAdminUrl`. With `ETHHOOK_TEST_PG_URL` set, that server is used instead and
 * nothing is started. A file that never calls the helpers below pays nothing beyond that one start.
 * Teardown stops the server and removes the directory.
 *
 * In a test file, `pgTestSchema(name?)` names a schema unique to the call (`t_<name>_<random>`) and
 * drops it, with everything in it, after the file (afterAll); the stores create it when they migrate.
 * `freshPgPool(name?, options?)`, callable anywhere (a beforeEach, a contract's `open`), opens a pool
 * on a new schema and migrates it; its `drop()` closes the pool and drops the schema.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, inject } from 'vitest';
import type { TestProject } from 'vitest/node';
import { createLogger } from '../../src/runtime/log.ts';
import { migrate } from '../../src/store/postgres/migrate.ts';
import { openPgPool, type PgPool, type PgPoolOptions } from '../../src/store/postgres/pool.ts';
import { startPgServer } from './pg-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const external = process.env.ETHHOOK_TEST_PG_URL;
  if (external !== undefined && external !== '') {
    project.provide('pgAdminUrl', external);
    return undefined;
  }
  const server = await startPgServer();
  project.provide('pgAdminUrl', server.url);
  return () => server.close();
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
