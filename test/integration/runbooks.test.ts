// Every ```sh block of runbooks/*.md, pasted into bash against one real node: the dev chain (anvil,
// chain 31337) with the demo (its governance stream and endpoint), plus an endpoint of this test whose
// receiver answers 400, so attempts, dead letters and breaker series exist. Per runbook, the blocks run
// in document order (their stop/start and pause/resume pairs leave the node as they found it), each
// in a fresh `bash` with `set -euo pipefail`, preceded by the runbook's first block (the dev checkout's
// NODE and TOKEN, with the node's real port for 8080: the token is its generated data/admin-token).
// `<placeholders>` are the ones runbooks/README.md lists, filled from the running node. A block whose
// first line is `# not run by the test: <reason>` is skipped; the exceptions are counted below, so a
// new one is a visible change. The PromQL blocks are not run (promtool checks the alert rules); the
// metrics they select must be ones the node exposes.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeDir, killAllNodes, startNodeProcess, type NodeDir, type NodeProcess } from '../support/node-process.ts';

const RUNBOOKS = new URL('../../runbooks/', import.meta.url);
const SKIP = /^# not run by the test: (\S.*)$/;
const PLACEHOLDER = /<([a-z][a-z0-9 ]*[a-z0-9])>/g;
const DEV_NODE = 'http://127.0.0.1:8080';
/** What curl -S prints for an attempt that found the port closed (see the blocks' test). */
const RETRIED_CONNECT = /^curl: \(7\) Failed to connect to [^\n]*: Couldn't connect to server\n/gm;

interface Block {
  file: string;
  line: number;
  heading: string;
  text: string;
  skipped?: string;
}

/** The blocks of one runbook fenced as ```lang, with the heading they sit under. */
function fencedBlocks(file: string, lang: string): Block[] {
  const lines = readFileSync(new URL(file, RUNBOOKS), 'utf8').split('\n');
  const blocks: Block[] = [];
  let heading = '';
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(\S*)/.exec(lines[i]!);
    if (fence === null) {
      if (lines[i]!.startsWith('#')) heading = lines[i]!.replace(/^#+\s*/, '');
      continue;
    }
    const start = i;
    while (++i < lines.length && !lines[i]!.startsWith('```'));
    if (fence[1] !== lang) continue;
    const text = lines.slice(start + 1, i).join('\n');
    const skipped = SKIP.exec(text.split('\n')[0]!)?.[1];
    blocks.push({ file, line: start + 1, heading, text, ...(skipped !== undefined ? { skipped } : {}) });
  }
  return blocks;
}

const shBlocks = (file: string) => fencedBlocks(file, 'sh');

/** The placeholders runbooks/README.md lists: its table rows that start with `<name>`. */
function listedPlaceholders(): Set<string> {
  const readme = readFileSync(new URL('README.md', RUNBOOKS), 'utf8');
  return new Set([...readme.matchAll(/^\| `<([a-z][a-z0-9 ]*[a-z0-9])>` \|/gm)].map((m) => m[1]!));
}

const files = readdirSync(RUNBOOKS)
  .filter((f) => f.endsWith('.md'))
  .sort();
const blocks = files.flatMap(shBlocks);

function run(script: string, cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A loopback port nobody listens on now. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('runbooks/ command blocks', () => {
  it('mark every block the test skips with a reason, and only these', () => {
    const skipped = blocks.filter((b) => b.skipped !== undefined).map((b) => `${b.file}: ${b.skipped}`);
    const setUps = files.length * 2;
    // Per runbook, NODE and TOKEN for docker compose and Kubernetes; then the few below.
    expect(skipped.filter((s) => /: (docker compose|Kubernetes):/.test(s))).toHaveLength(setUps);
    expect(skipped.filter((s) => !/: (docker compose|Kubernetes):/.test(s)).sort()).toEqual([
      'README.md: it stops the node',
      'chains.md: it needs a chain with a second provider (the dev chain has one)',
      'chains.md: it needs the node stopped (the running node holds the store)',
      "cluster.md: it moves the chain's lease to another instance (the test node is alone)",
      "cluster.md: it reads a pod's state and logs with kubectl",
      'cluster.md: it scales the Deployment with kubectl',
      'cluster.md: it stops an instance',
      'store.md: it needs PostgreSQL (the test node runs on LevelDB)',
    ]);
  });

  it('start each runbook with the dev checkout NODE and TOKEN, then compose, then Kubernetes', () => {
    for (const file of files) {
      const [dev, compose, k8s] = shBlocks(file);
      expect(dev?.text, file).toMatch(new RegExp(`^# dev checkout[^\\n]*\\nNODE=${DEV_NODE}\\nTOKEN=\\$\\(cat data/admin-token\\)$`));
      expect(compose?.skipped, file).toMatch(/^docker compose:/);
      expect(compose?.text, file).toMatch(/\nNODE=.*\nTOKEN=/);
      expect(k8s?.skipped, file).toMatch(/^Kubernetes:/);
      expect(k8s?.text, file).toMatch(/\nNODE=.*\nTOKEN=/);
    }
  });

  it('use only the placeholders runbooks/README.md lists', () => {
    const listed = listedPlaceholders();
    expect(listed.size).toBeGreaterThan(5);
    const unknown = blocks.flatMap((b) =>
      [...b.text.matchAll(PLACEHOLDER)]
        .map((m) => m[1]!)
        .filter((p) => !listed.has(p))
        .map((p) => `${b.file}:${b.line} <${p}>`),
    );
    expect(unknown).toEqual([]);
  });

  it('let no curl hide an HTTP error', () => {
    // /ready answers 503 with its reasons when the node is not ready: that answer is what is read.
    const silent = blocks.flatMap((b) =>
      b.text
        .split('\n')
        .filter((l) => /^\s*curl /.test(l) && !l.includes('--fail-with-body') && !/"\$NODE\/ready"/.test(l))
        .map((l) => `${b.file}:${b.line} ${l.trim()}`),
    );
    expect(silent).toEqual([]);
  });
});

describe('runbooks/ command blocks on a running node', () => {
  let dir: NodeDir;
  let node: NodeProcess;
  let receiver: Server;
  let fill: Record<string, string>;

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      req.resume();
      res.writeHead(400).end('the runbook test refuses every webhook');
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    dir = await createNodeDir();
    node = await startNodeProcess({
      dir,
      config: {
        // A fixed port, as in production: a restarted Admin actor (streams.md) listens on it again.
        admin: { port: await freePort(), tokens: [] },
        devChain: { enabled: true, blockTimeMs: 500, txIntervalMs: 500 },
        demo: { enabled: true, statusIntervalMs: 0 },
      },
    });
    const token = (await readFile(join(dir.dataDir, 'admin-token'), 'utf8')).trim();
    const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
      const res = await fetch(`${node.adminUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
      return JSON.parse(text) as T;
    };
    const since = new Date(Date.now() - 3_600_000).toISOString();
    const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const { endpoint } = await api<{ endpoint: { id: string } }>('POST', '/v1/endpoints', { url: receiverUrl });
    await api('POST', '/v1/subscriptions', { endpointId: endpoint.id, chainId: 31_337 });
    const deadLetter = await waitFor('a dead letter of the refusing endpoint', async () => {
      const { data } = await api<{ data: { id: string }[] }>('GET', `/v1/dead-letters?endpointId=${endpoint.id}&limit=1`);
      return data[0];
    });
    await waitFor('the node to be ready', async () => ((await fetch(`${node.adminUrl}/ready`)).ok ? true : undefined));
    fill = {
      'endpoint id': endpoint.id,
      'dead letter id': deadLetter.id,
      'chain id': '31337',
      provider: 'primary',
      since,
    };
  }, 120_000);

  afterAll(async () => {
    await killAllNodes();
    await new Promise((resolve) => receiver?.close(resolve));
    await dir?.remove();
  });

  it('query in their PromQL only metrics the node exposes', async () => {
    const token = (await readFile(join(dir.dataDir, 'admin-token'), 'utf8')).trim();
    const text = await (await fetch(`${node.adminUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
    const exposed = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
    const queried = files
      .flatMap((f) => fencedBlocks(f, 'promql'))
      .flatMap((b) => [...b.text.matchAll(/\b([a-z_:][a-z0-9_:]*)\{/g)].map((m) => `${b.file}:${b.line} ${m[1]!}`));
    expect(queried.length).toBeGreaterThan(0);
    expect(queried.filter((q) => !exposed.has(q.split(' ')[1]!.replace(/_(bucket|sum|count)$/, '')))).toEqual([]);
  });

  for (const file of files) {
    describe(file, () => {
      const [setUp, ...rest] = shBlocks(file);
      for (const block of rest.filter((b) => b.skipped === undefined)) {
        it(`runs the block of line ${block.line} (${block.heading})`, async () => {
          const prefix = setUp!.text.replace(`NODE=${DEV_NODE}`, `NODE=${node.adminUrl}`);
          const body = block.text.replace(PLACEHOLDER, (whole, name: string) => {
            const value = fill[name];
            if (value === undefined) throw new Error(`${file}:${block.line}: the test cannot fill ${whole}`);
            return value;
          });
          const { code, stdout, stderr: printed } = await run(`set -euo pipefail\n${prefix}\n${body}\n`, dir.path);
          // `curl -S --retry-connrefused` prints an error for each attempt it retries, even when a later
          // one succeeds (a block that waits for the admin API to come back): those lines are not failures.
          const stderr = body.includes('--retry-connrefused') ? printed.replace(RETRIED_CONNECT, '') : printed;
          expect({ code, stderr }, `${file}:${block.line}\n${body}\nstdout: ${stdout.slice(0, 2_000)}`).toEqual({ code: 0, stderr: '' });
        });
      }
    });
  }
});
