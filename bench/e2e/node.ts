/**
 * The node as a user runs it: `node bin/ethhook.mjs start --config <dir>/node.json` in a child process,
 * in a fresh temp dir (its dataDir inside), with no ETHHOOK_* variable from the bench's environment and
 * the environment `npm start` sets (MALLOC_ARENA_MAX=2, malloc's thresholds).
 *
 * - Config: the given chains, admin on 127.0.0.1 port 0 with one `operate` token, log level info (the
 *   admin address is read from the `node running` line, as test/support/node-process.ts does), dev
 *   chain and demo off, loopback targets allowed; every other setting is the shipped default, unless
 *   `options.config` gives sections (merged one level deep over these: bench:cluster's store, node id
 *   and cluster timing). `options.env` adds variables (the cluster's ETHHOOK_MASTER_KEY).
 * - `api(method, path, body?)` calls the admin API (10 s timeout, throws on a non-2xx answer);
 *   `metrics()` is the /metrics text.
 * - `rss()` reads VmRSS of the node's process, the part of it that maps files (RssFile + RssShmem:
 *   the node binary's pages, LevelDB's memory-mapped tables) and, apart, the sum over its descendants
 *   (a forked actor, if the configuration places one) from /proc.
 * - `stop()` sends SIGTERM, SIGKILL after the node's own shutdown deadline plus 5 s, and removes the
 *   temp dir. `kill()` SIGKILLs at once (the bench's exit hook).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { sourcePath } from '../../src/runtime/source-dir.ts';
import { processCpuSeconds } from './cpu.ts';

const TOKEN = 'bench-e2e-operate-token-0123456789';
const BIN = sourcePath('../bin/ethhook.mjs');
/**
 * `npm start` as package.json writes it (`[VAR=value ...] node [flags] bin/ethhook.mjs start`): the
 * environment it sets and the flags it gives node, which the image's ENTRYPOINT gives too. Benches run
 * the node (and bench:match its children) the same way.
 */
export const NPM_START = npmStart();

function npmStart(): { env: Record<string, string>; nodeArgs: string[] } {
  const { scripts } = JSON.parse(readFileSync(sourcePath('../package.json'), 'utf8')) as { scripts: { start: string } };
  const words = scripts.start.trim().split(/\s+/);
  const node = words.indexOf('node');
  const bin = words.indexOf('bin/ethhook.mjs');
  if (node < 0 || bin < node || !words.slice(0, node).every((w) => /^[A-Z_]+=\S*$/.test(w))) {
    throw new Error(`package.json's start is not "[VAR=value ...] node [flags] bin/ethhook.mjs ...": ${scripts.start}`);
  }
  const env = Object.fromEntries(words.slice(0, node).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
  return { env, nodeArgs: words.slice(node + 1, bin) };
}
const START_TIMEOUT_MS = 60_000;
const API_TIMEOUT_MS = 10_000;
const SHUTDOWN_DEADLINE_MS = 10_000;

export interface BenchNode {
  readonly pid: number;
  readonly adminUrl: string;
  /** An admin request; `T` names the answer's JSON body. */
  api<T>(method: string, path: string, body?: unknown): Promise<T>;
  metrics(): Promise<string>;
  rss(): { mainMb: number; fileMb: number; childrenMb: number } | null;
  /** CPU seconds the node's process has used so far, all its threads (utime + stime from /proc). */
  cpuSeconds(): number | null;
  /** The last lines of the node's stderr and of its warn-or-worse log lines. */
  problems(): string;
  stop(): Promise<void>;
  kill(): void;
}

export interface StartNodeOptions {
  /** Config sections over the bench's (one level deep). */
  config?: Record<string, Record<string, unknown>>;
  /** Variables on top of the bench's environment without its ETHHOOK_* ones. */
  env?: Record<string, string>;
}

export async function startNode(chains: unknown[], options: StartNodeOptions = {}): Promise<BenchNode> {
  const dir = await mkdtemp(join(tmpdir(), 'ethhook-bench-e2e-'));
  const configFile = join(dir, 'node.json');
  const config: Record<string, unknown> = {
    node: { id: 'bench-e2e', dataDir: join(dir, 'data'), shutdownDeadlineMs: SHUTDOWN_DEADLINE_MS },
    log: { level: 'info' },
    admin: { host: '127.0.0.1', port: 0, tokens: [{ token: TOKEN, role: 'operate' }] },
    devChain: { enabled: false },
    demo: { enabled: false },
    security: { allowPrivateTargets: true },
    chains,
  };
  for (const [section, values] of Object.entries(options.config ?? {})) {
    config[section] = { ...(config[section] as Record<string, unknown> | undefined), ...values };
  }
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETHHOOK_')) env[k] = v;
  Object.assign(env, options.env);
  // The environment `npm start` (package.json) and the image (deploy/Dockerfile) give the node.
  for (const [k, v] of Object.entries(NPM_START.env)) env[k] ??= v;
  // The flags `npm start` and the image give node; BENCH_NODE_ARGS replaces them (`--cpu-prof`, heap
  // flags; space-separated) for the node's process only. BENCH_NODE_TRACE: a file that gets the node's
  // stdout lines that are not JSON (`--trace-gc`'s), each after the time it was read (ms since the epoch).
  const nodeArgs = process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? NPM_START.nodeArgs;
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, BIN, 'start', '--config', configFile], {
    cwd: dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid!;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  const warnings: string[] = [];
  child.stderr!.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-8_000);
  });

  let adminUrl = '';
  const running = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the node did not log "node running" within ${START_TIMEOUT_MS} ms: ${stderr.slice(-2_000)}`)),
      START_TIMEOUT_MS,
    );
    createInterface({ input: child.stdout! }).on('line', (text) => {
      let line: { level?: number; msg?: string; admin?: unknown };
      try {
        line = JSON.parse(text) as typeof line;
      } catch {
        if (process.env.BENCH_NODE_TRACE)
          appendFileSync(process.env.BENCH_NODE_TRACE, `${(performance.timeOrigin + performance.now()).toFixed(1)} ${text}\n`);
        return;
      }
      if ((line.level ?? 0) >= 40) {
        warnings.push(text.slice(0, 500));
        if (warnings.length > 20) warnings.shift();
      }
      if (line.msg === 'node running' && typeof line.admin === 'string') {
        clearTimeout(timer);
        resolve(line.admin);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`the node exited (${child.exitCode ?? child.signalCode}) before running: ${stderr.slice(-2_000)}`));
    });
  });

  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(kill, SHUTDOWN_DEADLINE_MS + 5_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    adminUrl = await running;
  } catch (err) {
    await stop();
    throw err;
  }

  const request = async (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${adminUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(API_TIMEOUT_MS),
    });

  return {
    pid,
    adminUrl,
    async api<T>(method: string, path: string, body?: unknown): Promise<T> {
      const res = await request(method, path, body);
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 500)}`);
      return JSON.parse(text) as T;
    },
    async metrics() {
      const res = await request('GET', '/metrics');
      const text = await res.text();
      if (!res.ok) throw new Error(`GET /metrics: ${res.status} ${text.slice(0, 200)}`);
      return text;
    },
    rss() {
      const main = rssKb(pid);
      if (main === null) return null;
      const children = descendants(pid).reduce((sum, p) => sum + (rssKb(p)?.total ?? 0), 0);
      return { mainMb: main.total / 1024, fileMb: main.file / 1024, childrenMb: children / 1024 };
    },
    cpuSeconds: () => processCpuSeconds(pid),
    problems: () => [...warnings.slice(-5), stderr.slice(-1_000)].join('\n'),
    stop,
    kill,
  };
}

/** VmRSS of `pid` and the part of it that maps files (RssFile + RssShmem), in kB. */
function rssKb(pid: number): { total: number; file: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)\\s+kB`).exec(status)?.[1] ?? NaN);
    const total = field('VmRSS');
    return Number.isNaN(total) ? null : { total, file: (field('RssFile') || 0) + (field('RssShmem') || 0) };
  } catch {
    return null;
  }
}

/** Every process below `pid`, from /proc/<pid>/task/<tid>/children (any thread may have forked). */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number) => {
    let children: string[] = [];
    try {
      for (const tid of readdirSync(`/proc/${p}/task`)) {
        children.push(...readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean));
      }
    } catch {
      children = [];
    }
    for (const c of children) {
      out.push(Number(c));
      walk(Number(c));
    }
  };
  walk(pid);
  return out;
}
