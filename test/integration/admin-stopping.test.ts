// A draining node (a shutdown began, its actors still stopping): the admin API still answers reads and
// probes, /ready says "the node is shutting down", and every other request is refused with 503
// ETHHOOK_ERR_ADMIN_STOPPING, so that no change is taken by a node whose pipeline may have stopped.
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { expect, it } from 'vitest';
import { createAdminBehaviour } from '../../src/actors/admin/behaviour.ts';
import { defineRoute } from '../../src/actors/admin/router.ts';
import { defaultConfig } from '../../src/config/schema.ts';
import { createLogger } from '../../src/runtime/log.ts';
import type { ActorRef } from '../../src/runtime/types.ts';
import type { ActorSystem } from '../../src/runtime/system.ts';
import { startSystem } from '../../src/supervision/index.ts';
import { waitFor } from '../support/kernel.ts';

const OPERATE = 'operate-token-bbbbbbbbbbbbbbbb';

it('refuses writes with 503 while the node stops, and still answers reads and probes', async () => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let stopStarted = false;
  const registry = new Registry();
  let writes = 0;
  const routes = [
    defineRoute({ method: 'POST', path: '/v1/things', auth: 'operate', handle: () => ({ status: 201, json: { n: ++writes } }) }),
    defineRoute({ method: 'GET', path: '/v1/things', auth: 'read', handle: () => ({ json: { n: writes } }) }),
  ];
  const system: ActorSystem = await startSystem(
    {
      kind: 'supervisor',
      name: 'root',
      strategy: 'one-for-one',
      children: [
        {
          kind: 'worker',
          name: 'admin',
          behaviour: () =>
            createAdminBehaviour({
              system: () => system,
              config: { ...defaultConfig().admin, port: 0, tokens: [{ token: OPERATE, role: 'operate' }] },
              registry,
              routes,
            }),
        },
        // Started after the admin, so stopped before it: it holds the shutdown while the test asks.
        {
          kind: 'worker',
          name: 'pipeline',
          shutdownTimeoutMs: 30_000,
          behaviour: () => ({
            receive: () => 'ok',
            postStop: async () => {
              stopStarted = true;
              await held;
            },
          }),
        },
      ],
    },
    { logger: createLogger({ level: 'silent' }), registry },
  );
  const address = await (system.lookup('admin') as ActorRef<{ type: 'address' }>).ask<AddressInfo | null>({ type: 'address' });
  const base = `http://127.0.0.1:${address!.port}`;
  const auth = { authorization: `Bearer ${OPERATE}`, 'content-type': 'application/json' };
  const first = await fetch(`${base}/v1/things`, { method: 'POST', headers: auth, body: '{}' });
  expect(first.status, await first.clone().text()).toBe(201);

  const stopped = system.shutdown('test', 30_000);
  await waitFor(() => stopStarted, 10_000, 'the pipeline stopping');
  const refused = await fetch(`${base}/v1/things`, { method: 'POST', headers: auth, body: '{}' });
  expect(refused.status).toBe(503);
  expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('ETHHOOK_ERR_ADMIN_STOPPING');
  expect(await (await fetch(`${base}/v1/things`, { headers: auth })).json()).toEqual({ n: 1 });
  expect((await fetch(`${base}/health`)).status).toBe(200);
  const ready = await fetch(`${base}/ready`);
  expect(ready.status).toBe(503);
  expect(((await ready.json()) as { reasons: string[] }).reasons).toContain('the node is shutting down');

  release();
  expect(await stopped).toBe(true);
  expect(writes).toBe(1);
});
