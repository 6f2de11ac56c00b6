// SIGTERM on a real node process: the tree stops in reverse start order, within the deadline.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const script = fileURLToPath(new URL('../support/shutdown-node.ts', import.meta.url));

function runNode(stopMs: number) {
  const child = spawn(process.execPath, ['--import', 'tsx', script, String(stopMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += String(d);
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
  });
  return { child, lines };
}

async function until(cond: () => boolean, ms: number) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('graceful shutdown', () => {
  it('SIGTERM stops the tree in reverse order and exits 0 within the deadline', async () => {
    const { child, lines } = runNode(20);
    try {
      await until(() => lines.includes('ready'), 30_000);
      expect(lines.filter((l) => l.startsWith('start'))).toEqual([
        'start deliverer',
        'start matcher',
        'start listener',
        'start governance',
        'start admin',
      ]);
      const t0 = Date.now();
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      expect(code).toBe(0);
      expect(Date.now() - t0).toBeLessThan(2000 + 1500);
      expect(lines.filter((l) => l.startsWith('stop'))).toEqual([
        'stop admin',
        'stop governance',
        'stop listener',
        'stop matcher',
        'stop deliverer',
      ]);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('an actor that overruns the deadline makes the exit non-zero instead of hanging', async () => {
    const { child, lines } = runNode(5000);
    try {
      await until(() => lines.includes('ready'), 30_000);
      const t0 = Date.now();
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      expect(code).toBe(1);
      expect(Date.now() - t0).toBeLessThan(2000 + 1500);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
