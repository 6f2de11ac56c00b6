// A node that cannot start says why on the operator's terminal (stderr, with the error code) as well as
// in its JSON log, and exits 1: a data directory another node holds, an admin port already taken.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createNodeDir, killAllNodes, spawnNodeProcess, startNodeProcess, type NodeDir } from '../support/node-process.ts';

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

describe('a node that cannot start', () => {
  it('refuses a data directory a running node holds, naming the store and ETHHOOK_ERR_STORE_LOCKED, and leaves the first node running', async () => {
    const dir = await nodeDir();
    const first = await startNodeProcess({ dir, config: {} });
    const second = await spawnNodeProcess({ dir, config: {} });
    await expect(second.running).rejects.toThrow();
    expect((await second.waitForExit()).code).toBe(1);
    expect(second.stderr).toContain('[ETHHOOK_ERR_STORE_LOCKED]');
    expect(second.stderr).toContain(join(dir.dataDir, 'db'));
    expect(second.logs.some((l) => l.level === 60 && JSON.stringify(l).includes('ETHHOOK_ERR_STORE_LOCKED'))).toBe(true);
    expect((await first.api('GET', '/health')).status).toBe(200);
    first.kill('SIGTERM');
    expect((await first.waitForExit()).code).toBe(0);
  });

  it('refuses an admin port already taken, naming the address and ETHHOOK_ERR_ADMIN_LISTEN', async () => {
    const first = await startNodeProcess({ dir: await nodeDir(), config: {} });
    const port = Number(new URL(first.adminUrl).port);
    const second = await spawnNodeProcess({ dir: await nodeDir(), config: { admin: { port } } });
    await expect(second.running).rejects.toThrow();
    expect((await second.waitForExit()).code).toBe(1);
    expect(second.stderr).toContain('[ETHHOOK_ERR_ADMIN_LISTEN]');
    expect(second.stderr).toContain(`127.0.0.1:${port}`);
    first.kill('SIGTERM');
    expect((await first.waitForExit()).code).toBe(0);
  });
});
