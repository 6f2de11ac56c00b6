// Restarting the whole node process resumes from the persisted cursor: after kill -9 the first block is
// the last one printed (acknowledged but maybe not persisted: at least once) or the next; after a graceful
// SIGTERM it is exactly the next one. Across the three runs the blocks follow each other without gap.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAnvil, type TestAnvil } from '../support/anvil.ts';
import { tempDb, waitFor } from '../support/chain-harness.ts';

interface Line {
  block: number;
  hash: string;
  removed: boolean;
}

const CHILD = fileURLToPath(new URL('./chain-listener.node.child.ts', import.meta.url));
let anvil: TestAnvil;
const children: ChildProcess[] = [];
const head = async () => Number.parseInt(await anvil.rpc<string>('eth_blockNumber'), 16);

beforeAll(async () => {
  anvil = await startAnvil({ blockTime: 0.3 });
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await anvil?.stop();
});

function runNode(dbDir: string): { child: ChildProcess; lines: Line[]; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, anvil.wsUrl, dbDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines: Line[] = [];
  createInterface({ input: child.stdout }).on('line', (l) => lines.push(JSON.parse(l) as Line));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, lines, exited };
}

describe('node process restarts', () => {
  it('resumes from the cursor after kill -9 and after SIGTERM', async () => {
    const store = await tempDb();
    await store.db.close(); // the child processes own the directory
    try {
      const first = runNode(store.dir);
      await waitFor(() => first.lines.length >= 5, 30_000, 'five blocks in run 1');
      first.child.kill('SIGKILL');
      await first.exited;
      const last1 = first.lines.at(-1)!.block;
      await waitFor(async () => (await head()) >= last1 + 3, 20_000, 'blocks while the node is down');

      const second = runNode(store.dir);
      const target = await head();
      await waitFor(() => (second.lines.at(-1)?.block ?? 0) >= target, 30_000, `block ${target} in run 2`);
      expect([last1, last1 + 1]).toContain(second.lines[0]!.block);
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
      const last2 = second.lines.at(-1)!.block;

      const third = runNode(store.dir);
      await waitFor(() => third.lines.length >= 2, 30_000, 'blocks in run 3');
      expect(third.lines[0]!.block).toBe(last2 + 1);
      third.child.kill('SIGTERM');
      expect(await third.exited).toBe(0);

      const all = [...first.lines, ...second.lines, ...third.lines];
      expect(all.some((l) => l.removed)).toBe(false);
      const unique = [...new Map(all.map((l) => [l.block, l.hash])).keys()];
      expect(unique).toEqual(unique.map((_, i) => unique[0]! + i));
    } finally {
      await store.close().catch(() => {});
    }
  });
});
