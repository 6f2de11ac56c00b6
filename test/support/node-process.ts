/**
 * A real ethhook node as a child process, the way an operator runs it:
 * `node bin/ethhook.mjs start --config <dataDir>/node.json`.
 *
 * - `createNodeDir()` makes a fresh temp dir (under os.tmpdir()) that holds the config file and the
 *   node's `dataDir`; reuse it across `startNodeProcess` calls to restart a node on the same store.
 * - `spawnNodeProcess({ dir, config })` writes `config` (merged over the test defaults below) and spawns
 *   the node with no `ETHHOOK_*` variable from the test's environment, without waiting: `running`
 *   resolves with the admin address once the node's `node running` JSON log line names it (admin.port
 *   is 0: a free port), and rejects when the node exits first or does not come up within
 *   `startTimeoutMs` (default 60 s). `startNodeProcess` spawns and waits for `running`.
 * - Test defaults: admin on 127.0.0.1:0 with one `operate` token (`NODE_TOKEN`), log level info (the
 *   address is read from an info line), dev chain off, short shutdown deadline.
 * - `testStore(kind)` is a config's `store` section: LevelDB (in the node's dataDir), or PostgreSQL on
 *   the run's test server (test/support/postgres.ts) in a new schema, dropped after the file. Call it
 *   while the file is collected (it registers that afterAll), once per store: a node restarted with
 *   the same section finds its store again, as one restarted on the same dir does. `openedStore(node)`
 *   says which one a running node opened (its start-up log).
 * - `api(method, path, body?)` calls the admin API with the token; `metric(name, labels)` reads one
 *   sample from /metrics. `kill(signal)` signals it; `waitForExit()` resolves with code and signal once
 *   its output is read to the end (`logs` and `stderr` are then complete). A log line is read here a
 *   little after the node wrote it: to check a line that follows an API answer (an audit line), poll
 *   for it (`expect.poll`).
 * - Every process started here is SIGKILLed by `killAllNodes()` (call it in afterAll) and, as a last
 *   resort, when the test process exits.
 * - stdout lines are kept parsed in `logs` (non-JSON lines as `{ msg: line }`); stderr is kept in
 *   `stderr` (the last 64 KiB). `ETHHOOK_TEST_LOG=1` also echoes both to the test's stderr.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { pgTestSchema } from './postgres.ts';

export const NODE_TOKEN = 'e2e-operate-token-0123456789abcdef';
const BIN = fileURLToPath(new URL('../../bin/ethhook.mjs', import.meta.url));
const ECHO = process.env.ETHHOOK_TEST_LOG !== undefined;

export interface NodeDir {
  /** The temp dir: `node.json` and `data/` live in it. */
  readonly path: string;
  readonly dataDir: string;
  readonly configFile: string;
  remove(): Promise<void>;
}

export async function createNodeDir(): Promise<NodeDir> {
  const path = await mkdtemp(join(tmpdir(), 'ethhook-e2e-'));
  return {
    path,
    dataDir: join(path, 'data'),
    configFile: join(path, 'node.json'),
    remove: () => rm(path, { recursive: true, force: true }),
  };
}

export interface LogLine {
  level?: number;
  msg?: string;
  /** The error catalog's code (`ETHHOOK_ERR_...`) on a line that reports one. */
  code?: string;
  [key: string]: unknown;
}

export interface ApiAnswer<T = unknown> {
  status: number;
  body: T;
}

export interface NodeProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** `http://127.0.0.1:<port>`; read it after `running` resolved. */
  readonly adminUrl: string;
  /** The admin address, once the node runs (see the header). */
  readonly running: Promise<string>;
  readonly logs: readonly LogLine[];
  readonly stderr: string;
  /** An admin request; `T` names the answer's body (test/support/admin-answers.ts), unknown until named. */
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<ApiAnswer<T>>;
  /** The value of one sample of /metrics (`name{labels}`), undefined when absent. */
  metric(name: string, labels?: Record<string, string>): Promise<number | undefined>;
  kill(signal?: NodeJS.Signals): void;
  waitForExit(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartNodeOptions {
  dir: NodeDir;
  /** The config file's sections, merged (one level deep) over the test defaults. */
  config: Record<string, unknown>;
  startTimeoutMs?: number;
  /** Variables given to the node on top of the test's environment without its ETHHOOK_* ones. */
  env?: Record<string, string>;
}

const live = new Set<ChildProcess>();
const killLive = () => {
  for (const c of live) c.kill('SIGKILL');
};
process.once('exit', killLive);

/** SIGKILLs every node process still running and waits for them to go. */
export async function killAllNodes(): Promise<void> {
  const waiting = [...live].map(
    (c) =>
      new Promise<void>((resolve) => {
        if (c.exitCode !== null || c.signalCode !== null) return resolve();
        c.once('exit', () => resolve());
        c.kill('SIGKILL');
      }),
  );
  await Promise.all(waiting);
}

export type StoreKind = 'level' | 'postgres';

export function testStore(kind: StoreKind): Record<string, unknown> {
  if (kind === 'level') return { kind: 'level' };
  const { url, schema } = pgTestSchema('e2e');
  return { kind: 'postgres', url, schema };
}

export function openedStore(node: NodeProcess): StoreKind {
  return node.logs.some((l) => l.msg === 'PostgreSQL store open') ? 'postgres' : 'level';
}

export function nodeConfig(dir: NodeDir, config: Record<string, unknown>): Record<string, unknown> {
  const defaults: Record<string, Record<string, unknown>> = {
    node: { id: 'e2e', dataDir: dir.dataDir, shutdownDeadlineMs: 5_000 },
    log: { level: 'info' },
    admin: { host: '127.0.0.1', port: 0, tokens: [{ token: NODE_TOKEN, role: 'operate' }] },
    devChain: { enabled: false },
  };
  const merged: Record<string, unknown> = { ...config };
  for (const [section, values] of Object.entries(defaults)) {
    merged[section] = { ...values, ...(config[section] as Record<string, unknown> | undefined) };
  }
  return merged;
}

export async function startNodeProcess(options: StartNodeOptions): Promise<NodeProcess> {
  const node = await spawnNodeProcess(options);
  await node.running;
  return node;
}

export async function spawnNodeProcess(options: StartNodeOptions): Promise<NodeProcess> {
  const { dir } = options;
  await writeFile(dir.configFile, JSON.stringify(nodeConfig(dir, options.config), null, 2));
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETHHOOK_')) env[k] = v;
  Object.assign(env, options.env);
  const child = spawn(process.execPath, [BIN, 'start', '--config', dir.configFile], {
    cwd: dir.path,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  // 'close' comes after 'exit' once stdout and stderr are read to their end: a test that waited for the
  // exit then sees every line the node wrote.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
  });

  const logs: LogLine[] = [];
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-65_536);
    if (ECHO) process.stderr.write(`[node ${child.pid} err] ${chunk.toString()}`);
  });
  let onLine: (line: LogLine) => void = () => {};
  createInterface({ input: child.stdout }).on('line', (text) => {
    if (ECHO) process.stderr.write(`[node ${child.pid}] ${text}\n`);
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      line = { msg: text };
    }
    logs.push(line);
    onLine(line);
  });

  const timeoutMs = options.startTimeoutMs ?? 60_000;
  let adminUrl = '';
  const running = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node did not log "node running" within ${timeoutMs} ms; stderr: ${stderr.slice(-2_000)}`));
    }, timeoutMs);
    onLine = (line) => {
      if (line.msg === 'node running' && typeof line.admin === 'string') {
        clearTimeout(timer);
        onLine = () => {};
        adminUrl = line.admin;
        resolve(line.admin);
      }
    };
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      const last = logs
        .slice(-5)
        .map((l) => JSON.stringify(l))
        .join('\n');
      reject(new Error(`node exited (${code ?? signal}) before running; stderr: ${stderr.slice(-2_000)}\nlast logs:\n${last}`));
    });
  });
  // A node killed while starting is a rejection nobody may be waiting for.
  running.catch(() => {});

  const api = async <T>(method: string, path: string, body?: unknown): Promise<ApiAnswer<T>> => {
    const res = await fetch(`${adminUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${NODE_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON (metrics, plain errors): keep the text
    }
    return { status: res.status, body: parsed as T };
  };

  return {
    child,
    pid: child.pid!,
    get adminUrl() {
      return adminUrl;
    },
    running,
    logs,
    get stderr() {
      return stderr;
    },
    api,
    async metric(name, labels = {}) {
      const res = await api<string>('GET', '/metrics');
      return readMetric(String(res.body), name, labels);
    },
    kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    async waitForExit(ms = 30_000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`node ${child.pid} did not exit within ${ms} ms`)), ms);
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** One sample of a Prometheus text exposition: `name{...labels...} value`, the labels given must match. */
export function readMetric(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const found = new Map([...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (Object.entries(labels).every(([k, v]) => found.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}
