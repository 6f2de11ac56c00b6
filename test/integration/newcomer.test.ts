// What a newcomer gets from `npm start`: `node bin/ethhook.mjs start` as a real child process, with no
// configuration file and only ETHHOOK_ADMIN__PORT=0 and a temp dataDir from the environment. The node
// starts anvil with its Tick contract, the demo receiver and the demo governance server; the demo
// endpoint and subscription arrive through governance; Tick events become signed webhooks the
// receiver verifies; the status line says so; the live streams carry the logs. SIGTERM stops it all:
// exit 0, and no process of its own (anvil) left behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { EndpointAnswer } from '../support/admin-answers.ts';
import { readMetric } from '../support/node-process.ts';
import { isRefused, openSse } from '../support/stream-clients.ts';
import { wsText } from '../support/ws-text.ts';

const BIN = new URL('../../bin/ethhook.mjs', import.meta.url).pathname;

interface Line {
  msg?: string;
  [key: string]: unknown;
}

/** Pids whose parent is `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Field 4 of /proc/<pid>/stat is the parent pid; the command name (field 2) may hold spaces.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

let dir: string;
let child: ChildProcess;
const lines: Line[] = [];
let stderr = '';
let exited: Promise<number | null>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ethhook-newcomer-'));
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETHHOOK_')) env[k] = v;
  child = spawn(process.execPath, [BIN, 'start'], {
    cwd: dir,
    env: { ...env, ETHHOOK_ADMIN__PORT: '0', ETHHOOK_NODE__DATA_DIR: join(dir, 'data') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout! }).on('line', (text) => {
    try {
      lines.push(JSON.parse(text) as Line);
    } catch {
      lines.push({ msg: text });
    }
  });
});

afterAll(async () => {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await exited;
  await rm(dir, { recursive: true, force: true });
});

async function until<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  ms: number,
  whileRunning = true,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (whileRunning && child.exitCode !== null)
      throw new Error(`the node exited (${child.exitCode}) while waiting for ${what}; stderr: ${stderr.slice(-2000)}`);
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}; last lines: ${lines
          .slice(-5)
          .map((l) => JSON.stringify(l))
          .join('\n')}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('npm start with no configuration', () => {
  it('runs the whole system, shows it working, and stops cleanly', async () => {
    const running = await until('the node running line', () => lines.find((l) => l.msg === 'node running'), 40_000);
    const admin = running.admin as string;
    expect(admin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(running).toMatchObject({
      metrics: `${admin}/metrics`,
      streams: { ws: `${admin.replace('http', 'ws')}/v1/ws/events`, sse: `${admin}/v1/sse/events` },
      adminTokenFile: join(dir, 'data', 'admin-token'),
      anvil: { http: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/), contract: expect.stringMatching(/^0x[0-9a-f]{40}$/) },
      governance: expect.stringMatching(/^ws:\/\/127\.0\.0\.1:\d+\/$/),
      demoReceiver: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/webhooks$/),
    });
    // The human version on stderr: written once the admin token is read, so it may come after the line.
    const human = ['ethhook is running', admin, 'demo receiver', 'governance server'];
    await until('the banner on stderr', () => human.every((text) => stderr.includes(text)), 10_000);
    const token = (await readFile(join(dir, 'data', 'admin-token'), 'utf8')).trim();
    const auth = { authorization: `Bearer ${token}` };

    // The demo endpoint and subscription came through governance, signed, in order.
    await until('the demo configuration applied', () => lines.filter((l) => l.msg === 'governance message applied').length >= 4, 15_000);
    expect(lines.filter((l) => l.msg === 'governance message applied').map((l) => l.type)).toEqual([
      'endpoint.upsert',
      'subscription.upsert',
      'endpoint.pause',
      'endpoint.resume',
    ]);
    const endpoint = (await (await fetch(`${admin}/v1/endpoints/ep_demo`, { headers: auth })).json()) as EndpointAnswer;
    expect(endpoint.endpoint).toMatchObject({ id: 'ep_demo', url: running.demoReceiver, paused: false });

    // A live stream client sees Tick logs as they are matched.
    const sse = await openSse(`${admin}/v1/sse/events?events=log.created`, auth);
    if (isRefused(sse)) throw new Error(`SSE refused: ${JSON.stringify(sse.body)}`);
    const streamed: Array<{ kind: string; address: string }> = [];
    sse.onMessage = (text) => streamed.push(JSON.parse(text) as { kind: string; address: string });
    const ws = new WebSocket(`${(running.streams as { ws: string }).ws}?events=log.created`, { headers: auth });
    const overWs: unknown[] = [];
    ws.on('message', (data) => overWs.push(JSON.parse(wsText(data))));

    // The status line reports webhooks the receiver verified. The receiver counts a webhook when it
    // arrives, the node once its answer is back: a line may catch one in between, so the line looked
    // at is one where the node's count has caught up.
    const status = await until(
      'the receiver to verify a few webhooks, and the node to count them delivered',
      () =>
        lines
          .filter((l) => l.msg === 'status')
          .find((l) => (l.verified as number) >= 3 && (l.delivered as number) >= (l.verified as number)),
      40_000,
    );
    expect(status).toMatchObject({ verifyFailures: 0, head: { dev: expect.any(Number) }, governanceHeight: 4 });
    expect(status.delivered as number).toBeGreaterThanOrEqual(status.verified as number);
    expect(status.matched as number).toBeGreaterThanOrEqual(status.verified as number);
    expect(Object.keys(status.mailboxes as object)).toEqual(
      expect.arrayContaining([
        '/pipeline/deliverer',
        '/pipeline/matcher',
        '/pipeline/chains/chain-listener:31337',
        '/governance-stream',
        '/admin',
      ]),
    );

    expect((await fetch(`${admin}/ready`)).status).toBe(200);
    const metrics = await (await fetch(`${admin}/metrics`, { headers: auth })).text();
    expect(readMetric(metrics, 'chain_height', { chain: 'dev' })).toBeGreaterThan(0);
    expect(readMetric(metrics, 'webhook_deliveries_total', { status: 'success' })).toBeGreaterThanOrEqual(3);
    expect(readMetric(metrics, 'governance_height')).toBe(4);
    expect(readMetric(metrics, 'signature_mismatches_total')).toBe(0);

    await until('streamed logs', () => streamed.length > 0 && overWs.length > 0, 15_000);
    expect(streamed[0]).toMatchObject({ kind: 'log.created', address: (running.anvil as { contract: string }).contract });
    sse.close();
    ws.close();

    // SIGTERM: exit 0, anvil (our child) gone, the governance server and the receiver no longer listen.
    const children = childrenOf(child.pid!).map((pid) => ({ pid, cmd: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '' }));
    // anvil, and possibly tsx's esbuild service: every one must be gone after the exit.
    expect(children.filter((c) => /\/anvil$/.test(c.cmd))).toHaveLength(1);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    await until('anvil (and every other child) to be gone', () => children.every((c) => !alive(c.pid)), 5_000, false);
    for (const url of [running.governance as string, running.demoReceiver as string, (running.anvil as { http: string }).http]) {
      await expect(fetch(url.replace(/^ws/, 'http')), url).rejects.toThrow();
    }
    const order = ['demo: receiver and governance server stopped', 'dev chain: anvil stopped', 'node exited'].map((msg) =>
      lines.findIndex((l) => l.msg === msg),
    );
    expect(
      order.every((at, i) => at >= 0 && (i === 0 || at > order[i - 1]!)),
      JSON.stringify(order),
    ).toBe(true);
    expect(lines.find((l) => l.msg === 'node exited')).toMatchObject({ code: 0 });
  }, 60_000);
});
