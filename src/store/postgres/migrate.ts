/**
 * The PostgreSQL schema's migrations: versioned plain SQL files, `migrations/NNN_name.sql` (version
 * NNN, applied in version order), found beside the sources (src/runtime/source-dir.ts) whether the
 * node runs them through tsx or from its bundle.
 *
 * `migrate(pg)` brings the pool's schema up to the newest file:
 * - refuses a server older than PostgreSQL 15 (ETHHOOK_ERR_STORE_SERVER_TOO_OLD naming its version);
 * - under a session advisory lock whose key is derived from the schema name, so that instances starting
 *   together take turns and each migration is applied once (the later ones find it recorded);
 * - creates the schema if missing, and `schema_migrations (version, name, applied_at)` in it;
 * - applies each pending migration in a transaction of its own, recording its version in the same
 *   transaction: a migration lands whole or not at all, and a crash between two leaves the first done;
 * - refuses a schema that records a version newer than the newest file (a newer ethhook migrated it)
 *   with ETHHOOK_ERR_STORE_SCHEMA_NEWER naming both versions, before touching anything.
 * It resolves with the migrations it applied (none when the schema was up to date).
 *
 * `planMigrations(pg)` reads what `migrate` would apply without writing anything (no schema, no table,
 * no lock): `ethhook store migrate --dry-run`.
 */
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import { EthhookError } from '../../runtime/errors.ts';
import { sourcePath } from '../../runtime/source-dir.ts';
import { storeErrorKind, type PgPool } from './pool.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export interface MigrationPlan {
  schema: string;
  /** The versions the schema records, ascending. */
  applied: number[];
  /** The migrations `migrate` would apply, in order. */
  pending: Migration[];
}

export const MIGRATIONS_DIR = sourcePath('store/postgres/migrations');

const MIGRATION_FILE = /^(\d{3})_([a-z0-9_]+)\.sql$/;

/** The migrations in `dir`, by version; a `.sql` file not named `NNN_name.sql`, or two of one version, is refused. */
export async function readMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const migrations: Migration[] = [];
  for (const file of (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort()) {
    const match = MIGRATION_FILE.exec(file);
    if (!match) throw new Error(`migration file ${file} in ${dir} is not named NNN_name.sql`);
    const version = Number(match[1]);
    if (migrations.some((m) => m.version === version)) throw new Error(`two migration files of version ${version} in ${dir}`);
    migrations.push({ version, name: match[2]!, sql: await readFile(join(dir, file), 'utf8') });
  }
  return migrations;
}

/** A 64-bit advisory lock key of the schema's migrations (a signed bigint, as text). */
function lockKey(schema: string): string {
  return createHash('sha256').update(`ethhook:migrate:${schema}`).digest().readBigInt64BE(0).toString();
}

function quoted(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}

async function appliedVersions(client: pg.PoolClient, schema: string): Promise<number[]> {
  const table = await client.query<{ exists: boolean }>('SELECT to_regclass($1) IS NOT NULL AS exists', [
    `${quoted(schema)}.schema_migrations`,
  ]);
  if (!table.rows[0]?.exists) return [];
  const rows = await client.query<{ version: number }>(`SELECT version FROM ${quoted(schema)}.schema_migrations ORDER BY version`);
  return rows.rows.map((r) => r.version);
}

function plan(schema: string, applied: number[], migrations: readonly Migration[]): MigrationPlan {
  const newest = migrations.at(-1)?.version ?? 0;
  const recorded = applied.at(-1) ?? 0;
  if (recorded > newest) {
    throw new EthhookError(
      'ETHHOOK_ERR_STORE_SCHEMA_NEWER',
      `the PostgreSQL schema ${schema} is at version ${recorded}, newer than this ethhook knows (its newest migration is ${newest}): run the ethhook that migrated it, or restore the database`,
      { schema, schemaVersion: recorded, knownVersion: newest },
    );
  }
  const done = new Set(applied);
  return { schema, applied, pending: migrations.filter((m) => !done.has(m.version)) };
}

export async function planMigrations(pg: PgPool, migrations?: readonly Migration[]): Promise<MigrationPlan> {
  const known = migrations ?? (await readMigrations());
  return pg.run('migrate.plan', async (client) => plan(pg.schema, await appliedVersions(client, pg.schema), known));
}

/** The oldest PostgreSQL the store runs on, as `server_version_num`. */
export const MIN_SERVER_VERSION_NUM = 150000;

/** Throws ETHHOOK_ERR_STORE_SERVER_TOO_OLD for a server older than MIN_SERVER_VERSION_NUM. */
export function checkServerVersion(versionNum: number, version: string): void {
  if (versionNum >= MIN_SERVER_VERSION_NUM) return;
  throw new EthhookError(
    'ETHHOOK_ERR_STORE_SERVER_TOO_OLD',
    `the PostgreSQL server is version ${version}; the store needs PostgreSQL 15 or newer`,
    { version, versionNum },
  );
}

export async function migrate(pg: PgPool, migrations?: readonly Migration[]): Promise<Migration[]> {
  const known = migrations ?? (await readMigrations());
  const schema = quoted(pg.schema);
  const key = lockKey(pg.schema);
  return pg.run('migrate', async (client) => {
    const { rows } = await client.query<{ num: string; version: string }>(
      "SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS version",
    );
    checkServerVersion(Number(rows[0]!.num), rows[0]!.version);
    await client.query('SELECT pg_advisory_lock($1)', [key]);
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${schema}.schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
      const { pending } = plan(pg.schema, await appliedVersions(client, pg.schema), known);
      for (const migration of pending) {
        await client.query('BEGIN');
        try {
          await client.query(`SET LOCAL search_path TO ${schema}`);
          await client.query(migration.sql);
          await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK');
          if (storeErrorKind(err) !== 'query') throw err;
          const message = err instanceof Error ? err.message : String(err);
          throw new Error(`migration ${migration.version} (${migration.name}) failed: ${message}`, { cause: err });
        }
      }
      return pending;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [key]);
    }
  });
}
