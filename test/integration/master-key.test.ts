// A node with the production master-key setting (`security.generateMasterKey: false`), as an operator
// runs one: without ETHHOOK_MASTER_KEY it refuses to start, saying why, and writes no key file; with it,
// webhook secrets are sealed under that key (no key file on disk) and open with it, and only with it.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EndpointStore } from '../../src/store/endpoints.ts';
import { openDb } from '../../src/store/db.ts';
import { createNodeDir, killAllNodes, spawnNodeProcess, startNodeProcess, type NodeDir } from '../support/node-process.ts';

const KEY = 'a1'.repeat(32);
const config = { security: { generateMasterKey: false, allowPrivateTargets: true } };
const dirs: NodeDir[] = [];

afterAll(async () => {
  await killAllNodes();
  for (const d of dirs) await d.remove();
});

describe('the production master-key setting', () => {
  it('without ETHHOOK_MASTER_KEY the node does not start, names the variable, and generates no key', async () => {
    const dir = await createNodeDir();
    dirs.push(dir);
    const node = await spawnNodeProcess({ dir, config });
    await expect(node.running).rejects.toThrow();
    const exit = await node.waitForExit();
    expect(exit.code).not.toBe(0);
    const said = JSON.stringify(node.logs) + node.stderr;
    expect(said).toContain('ETHHOOK_ERR_MASTER_KEY_MISSING');
    expect(said).toContain('ETHHOOK_MASTER_KEY');
    expect(existsSync(join(dir.dataDir, 'master.key'))).toBe(false);
  });

  it('with it, seals secrets under that key (no key file): they open with it, and only with it', async () => {
    const dir = await createNodeDir();
    dirs.push(dir);
    const node = await startNodeProcess({ dir, config, env: { ETHHOOK_MASTER_KEY: KEY } });
    const created = await node.api('POST', '/v1/endpoints', { url: 'http://127.0.0.1:9/hook', description: 'sealed' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.secret).toMatch(/^whsec_/);
    const id = created.body.endpoint.id as string;
    node.kill('SIGTERM');
    expect((await node.waitForExit()).code).toBe(0);
    expect(existsSync(join(dir.dataDir, 'master.key'))).toBe(false);

    // The stopped node's store, read as the next start would: the secret opens under the same key only.
    const db = await openDb(join(dir.dataDir, 'db'));
    try {
      const endpoint = (await new EndpointStore(db, Buffer.from(KEY, 'hex')).get(id))!;
      expect(JSON.stringify(endpoint)).not.toContain(created.body.secret.slice('whsec_'.length));
      expect(new EndpointStore(db, Buffer.from(KEY, 'hex')).activeSecrets(endpoint)).toEqual([created.body.secret]);
      expect(() => new EndpointStore(db, Buffer.alloc(32, 7)).activeSecrets(endpoint)).toThrow(expect.objectContaining({ code: 'ETHHOOK_ERR_SECRET_DECRYPT' }));
    } finally {
      await db.close();
    }
  }, 60_000);
});
