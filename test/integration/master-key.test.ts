// A node with the production master-key setting (`security.generateMasterKey: false`), as an operator
// runs one: without ETHHOOK_MASTER_KEY it refuses to start, saying why, and writes no key file; with it,
// webhook secrets are sealed under that key (no key file on disk) and open with it, and only with it;
// restarted with another key it refuses to start (ETHHOOK_ERR_MASTER_KEY_MISMATCH) instead of failing
// every delivery, and a secret that still does not open is counted in deliverer_secret_decrypt_failures_total.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { countDecryptFailures } from '../../src/actors/deliverer/decrypt-failures.ts';
import { delivererMetrics } from '../../src/actors/deliverer/metrics.ts';
import { EndpointStore } from '../../src/store/endpoints.ts';
import { openDb } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import type { EndpointCreated } from '../support/admin-answers.ts';
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
    const created = await node.api<EndpointCreated>('POST', '/v1/endpoints', { url: 'http://127.0.0.1:9/hook', description: 'sealed' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.secret).toMatch(/^whsec_/);
    const id = created.body.endpoint.id;
    node.kill('SIGTERM');
    expect((await node.waitForExit()).code).toBe(0);
    expect(existsSync(join(dir.dataDir, 'master.key'))).toBe(false);

    // The stopped node's store, read as the next start would: the secret opens under the same key only.
    const db = await openDb(join(dir.dataDir, 'db'));
    try {
      const endpoint = (await new EndpointStore(new LevelKv(db), Buffer.from(KEY, 'hex')).get(id))!;
      expect(JSON.stringify(endpoint)).not.toContain(created.body.secret.slice('whsec_'.length));
      expect(new EndpointStore(new LevelKv(db), Buffer.from(KEY, 'hex')).activeSecrets(endpoint)).toEqual([created.body.secret]);
      expect(() => new EndpointStore(new LevelKv(db), Buffer.alloc(32, 7)).activeSecrets(endpoint)).toThrow(
        expect.objectContaining({ code: 'ETHHOOK_ERR_SECRET_DECRYPT' }),
      );
    } finally {
      await db.close();
    }
  }, 60_000);

  it('a node started with another key than its store was written with refuses to start, with the code; the right key starts it', async () => {
    const dir = await createNodeDir();
    dirs.push(dir);
    const first = await startNodeProcess({ dir, config, env: { ETHHOOK_MASTER_KEY: KEY } });
    const created = await first.api('POST', '/v1/endpoints', { url: 'http://127.0.0.1:9/hook' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    first.kill('SIGTERM');
    expect((await first.waitForExit()).code).toBe(0);

    const wrong = await spawnNodeProcess({ dir, config, env: { ETHHOOK_MASTER_KEY: 'b2'.repeat(32) } });
    await expect(wrong.running).rejects.toThrow();
    expect((await wrong.waitForExit()).code).toBe(1);
    expect(wrong.stderr).toContain('ETHHOOK_ERR_MASTER_KEY_MISMATCH');
    expect(wrong.logs.some((l) => JSON.stringify(l).includes('ETHHOOK_ERR_MASTER_KEY_MISMATCH'))).toBe(true);

    const right = await startNodeProcess({ dir, config, env: { ETHHOOK_MASTER_KEY: KEY } });
    expect((await right.api('GET', '/ready')).status).not.toBe(500);
    right.kill('SIGTERM');
    expect((await right.waitForExit()).code).toBe(0);
  }, 90_000);
});

describe('the key check and the decrypt-failure count', () => {
  it('verifyMasterKey: an empty store passes and records its key check, which refuses another key; no secret opening is a mismatch naming the endpoints; a single tampered record is reported, not refused', async () => {
    const dir = await createNodeDir();
    dirs.push(dir);
    const db = await openDb(join(dir.dataDir, 'db'));
    try {
      const right = new EndpointStore(new LevelKv(db), Buffer.from(KEY, 'hex'));
      const wrong = new EndpointStore(new LevelKv(db), Buffer.alloc(32, 7));
      expect(await right.verifyMasterKey()).toEqual({ checked: 0, unreadable: [] });
      await expect(wrong.verifyMasterKey()).rejects.toMatchObject({
        code: 'ETHHOOK_ERR_MASTER_KEY_MISMATCH',
        context: { endpointIds: [] },
      });
      const a = (await right.create({ url: 'https://a.example/hook' })).endpoint;
      const b = (await right.create({ url: 'https://b.example/hook' })).endpoint;
      // A store written before it had a key check: the secrets decide, and a wrong key records nothing.
      await new LevelKv(db).space('master-key').del('check');
      await expect(wrong.verifyMasterKey()).rejects.toMatchObject({
        code: 'ETHHOOK_ERR_MASTER_KEY_MISMATCH',
        context: { endpointIds: [a.id, b.id] },
      });
      expect(await new LevelKv(db).space('master-key').get('check')).toBeUndefined();
      expect(await right.verifyMasterKey()).toEqual({ checked: 2, unreadable: [] });
      // b's secret sealed under another key (a record copied from another store).
      const foreign = (await wrong.create({ url: 'https://c.example/hook' })).endpoint;
      expect(await right.verifyMasterKey()).toEqual({ checked: 3, unreadable: [foreign.id] });

      const registry = new Registry();
      const metrics = delivererMetrics(registry);
      const counted = countDecryptFailures(right, metrics);
      expect(counted.activeSecrets(a)).toHaveLength(1);
      expect(() => counted.activeSecrets(foreign)).toThrow(expect.objectContaining({ code: 'ETHHOOK_ERR_SECRET_DECRYPT' }));
      expect(() => counted.activeSecrets(foreign)).toThrow();
      expect(await registry.metrics()).toContain('deliverer_secret_decrypt_failures_total 2');
    } finally {
      await db.close();
    }
  });
});
