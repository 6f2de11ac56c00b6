// The embedded dev chain: anvil on a free loopback port, the Tick contract deployed, transactions sent
// on a timer; a ChainListener follows it and the events decode (ethers) as declared; stop() kills anvil.
// anvil's lifetime, on real node processes (bin/ethhook.mjs start with the dev chain): it runs in its own
// process group, so a Ctrl-C (SIGINT to the node's whole group) reaches only the node, which stops it in
// order; and a node killed with SIGKILL, where no hook of its own runs, leaves no anvil behind.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Interface } from 'ethers';
import { afterAll, describe, expect, it } from 'vitest';
import { startDevChain, TICK_EVENT_SIGNATURE } from '../../src/dev-chain/index.ts';
import { memoryLogger } from '../support/kernel.ts';
import { netLogs, seqs, startHarness, tempDb, waitFor } from '../support/chain-harness.ts';
import { createNodeDir, killAllNodes, nodeConfig, startNodeProcess, type LogLine, type NodeDir } from '../support/node-process.ts';

const BIN = new URL('../../bin/ethhook.mjs', import.meta.url).pathname;
const DEV_NODE = { devChain: { enabled: true, blockTimeMs: 200, txIntervalMs: 0 }, demo: { enabled: false } };

/** `/proc/<pid>/stat` fields after the command name: state, ppid, pgrp, … (undefined: no such process). */
function stat(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Gone: no such process, or a zombie (dead; its new parent may be slow to reap it). */
const gone = (pid: number) => {
  const fields = stat(pid);
  return fields === undefined || fields[0] === 'Z';
};

/** The anvil watchdog(s) of `anvilPid` (anvil-process.ts), whoever their parent. */
function watchdogsOf(anvilPid: number): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
        return argv.includes('anvil-watchdog') && argv.includes(String(anvilPid));
      } catch {
        return false;
      }
    })
    .map(Number);
}

const dirs: NodeDir[] = [];
afterAll(async () => {
  await killAllNodes();
  for (const d of dirs) await d.remove();
});

async function nodeDir(): Promise<NodeDir> {
  const dir = await createNodeDir();
  dirs.push(dir);
  return dir;
}

const anvilLine = (logs: readonly LogLine[]) => logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('dev chain: anvil (pid'));

describe('startDevChain', () => {
  it('runs anvil with a contract that emits decodable events, followed by a ChainListener, until stop()', async () => {
    const { logger, lines } = memoryLogger();
    const dev = await startDevChain({ logger, blockTimeMs: 200, txIntervalMs: 100 });
    const store = await tempDb();
    let stopped = false;
    try {
      expect(dev.chainId).toBe(31_337);
      expect(dev.wsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
      expect(
        lines.some(
          (l) =>
            l.wsUrl === dev.wsUrl &&
            l.anvilPid === dev.pid &&
            String(l.msg).includes(dev.httpUrl) &&
            String(l.msg).includes(`pid ${dev.pid}`),
        ),
      ).toBe(true);
      // Its own process group (the group id is its pid): a terminal's Ctrl-C goes to ours, not to it.
      expect(stat(dev.pid)![2]).toBe(String(dev.pid));
      expect(watchdogsOf(dev.pid)).toHaveLength(1);
      const h = await startHarness({ chain: { chainId: dev.chainId, name: 'dev', wsUrl: dev.wsUrl, startBlock: 0 }, db: store.db });
      try {
        await waitFor(() => netLogs(h.collector.messages).length >= 15, 30_000, '15 Tick events');
      } finally {
        await h.stop();
      }
      const logs = netLogs(h.collector.messages);
      const iface = new Interface([TICK_EVENT_SIGNATURE]);
      const from = (
        (await (
          await fetch(dev.httpUrl, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_accounts', params: [] }),
          })
        ).json()) as { result: string[] }
      ).result[0]!;
      for (const log of logs) {
        expect(log.address).toBe(dev.contractAddress);
        const parsed = iface.parseLog({ topics: log.topics, data: log.data })!;
        expect(parsed.name).toBe('Tick');
        expect(String(parsed.args.sender).toLowerCase()).toBe(from.toLowerCase());
        expect(Number(parsed.args.blockNumber)).toBe(log.blockNumber);
      }
      expect(seqs(logs)).toEqual(logs.map((_, i) => i));

      const watchdog = watchdogsOf(dev.pid);
      await dev.stop();
      stopped = true;
      await expect(fetch(dev.httpUrl, { method: 'POST', body: '{}' })).rejects.toThrow();
      expect(gone(dev.pid)).toBe(true);
      expect(watchdog.every(gone)).toBe(true);
      expect(lines.some((l) => l.msg === 'dev chain: anvil exited')).toBe(false);
    } finally {
      if (!stopped) await dev.stop();
      await store.close();
    }
  });

  it('fails with ETHHOOK_ERR_DEV_CHAIN when the anvil binary is missing', async () => {
    const { logger } = memoryLogger();
    await expect(startDevChain({ logger, binary: '/nonexistent/anvil' })).rejects.toMatchObject({ code: 'ETHHOOK_ERR_DEV_CHAIN' });
  });
});

describe("anvil's lifetime is the node's", () => {
  it('a node killed with SIGKILL leaves no anvil behind (its watchdog ends it)', async () => {
    const n = await startNodeProcess({ dir: await nodeDir(), config: DEV_NODE });
    const pid = anvilLine(n.logs)?.anvilPid as number;
    expect(pid).toEqual(expect.any(Number));
    const watchdogs = watchdogsOf(pid);
    expect(watchdogs).toHaveLength(1);
    expect(gone(pid)).toBe(false);
    n.kill('SIGKILL');
    expect((await n.waitForExit()).signal).toBe('SIGKILL');
    await waitFor(() => gone(pid) && watchdogs.every(gone), 5_000, 'anvil and its watchdog gone');
  });

  it('Ctrl-C (SIGINT to the whole foreground group) reaches only the node, which stops anvil in order', async () => {
    const dir = await nodeDir();
    await writeFile(dir.configFile, JSON.stringify(nodeConfig(dir, DEV_NODE)));
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETHHOOK_')) env[k] = v;
    // Detached: a group of its own, as a shell makes for a foreground job.
    const child = spawn(process.execPath, [BIN, 'start', '--config', dir.configFile], {
      cwd: dir.path,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const lines: LogLine[] = [];
    createInterface({ input: child.stdout }).on('line', (text) => {
      try {
        lines.push(JSON.parse(text) as LogLine);
      } catch {
        lines.push({ msg: text });
      }
    });
    child.stderr.resume();
    try {
      await waitFor(() => lines.some((l) => l.msg === 'node running') || child.exitCode !== null, 60_000, 'node running');
      const pid = anvilLine(lines)?.anvilPid as number;
      expect(pid).toEqual(expect.any(Number));
      // What keeps the SIGINT from anvil: it is not in the group the signal goes to.
      expect(stat(pid)![2]).not.toBe(String(child.pid));
      process.kill(-child.pid!, 'SIGINT');
      expect(await exited).toBe(0);
      expect(lines.find((l) => l.msg === 'dev chain: anvil exited')).toBeUndefined();
      const order = ['dev chain: anvil stopped', 'node exited'].map((msg) => lines.findIndex((l) => l.msg === msg));
      expect(order[0]).toBeGreaterThanOrEqual(0);
      expect(order[1]).toBeGreaterThan(order[0]!);
      await waitFor(() => gone(pid) && watchdogsOf(pid).every(gone), 5_000, 'anvil gone');
    } finally {
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
      await exited;
    }
  });
});
