// What a bare node (dev chain and demo off) keeps beside itself once it runs, as an operator starts it
// (bin/ethhook.mjs start):
// - no child process: the esbuild service that bundled the sources is stopped before the node starts;
// - no comedy loaded while nothing is placed: its bson allocates a 17 MB buffer at load, which shows in
//   the external memory /metrics exports (a bare node holds ~4 MB).
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createNodeDir, killAllNodes, startNodeProcess, type NodeDir } from '../support/node-process.ts';

const dirs: NodeDir[] = [];
afterAll(async () => {
  await killAllNodes();
  for (const d of dirs) await d.remove();
});

/** The pid and command name of every live process whose parent is `pid` (Linux /proc). */
function childrenOf(pid: number): { pid: number; comm: string }[] {
  const children: { pid: number; comm: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // ended while we looked
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
    const close = stat.lastIndexOf(')');
    const [, ppid] = stat.slice(close + 2).split(' ');
    if (Number(ppid) === pid) children.push({ pid: Number(entry), comm: stat.slice(stat.indexOf('(') + 1, close) });
  }
  return children;
}

async function until<T>(what: string, probe: () => T | undefined, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.runIf(process.platform === 'linux')('a bare node once it runs', () => {
  it('has no child process (the esbuild service is gone) and has not loaded comedy', async () => {
    const dir = await createNodeDir();
    dirs.push(dir);
    const node = await startNodeProcess({ dir, config: { demo: { enabled: false } } });

    const left = await until('the node to have no child process', () => {
      const children = childrenOf(node.pid);
      return children.length === 0 ? children : undefined;
    }).catch(() => childrenOf(node.pid));
    expect(left).toEqual([]);

    const external = await node.metric('nodejs_external_memory_bytes');
    expect(external).toBeDefined();
    expect(external!).toBeLessThan(12 * 1024 * 1024);
    node.kill('SIGTERM');
    expect(await node.waitForExit()).toMatchObject({ code: 0 });
  });
});
