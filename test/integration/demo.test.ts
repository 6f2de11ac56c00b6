// The demo's pieces (src/demo/) on loopback and real files:
// - the receiver verifies real signed requests over HTTP and counts them; forged ones get 401;
// - startDemo keeps its key, log and secret across starts under one dataDir, feeds the endpoint and
//   subscription once, and only what changed afterwards (the receiver's port, the contract);
// - readStatus reads the catalog metrics and the tree into the status line.
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signPayload } from '../../src/webhook-signing.ts';
import { delivererMetrics } from '../../src/actors/deliverer/metrics.ts';
import { getChainMetrics } from '../../src/actors/chain-listener/metrics.ts';
import { keyIdOf, parsePublicKey } from '../../src/governance-protocol/keys.ts';
import { DEMO_ENDPOINT_ID, DEMO_KEY_FILE, DEMO_SUBSCRIPTION_ID, readStatus, startDemo } from '../../src/demo/index.ts';
import { startDemoReceiver } from '../../src/demo/receiver.ts';
import { TICK_TOPIC } from '../../src/dev-chain/index.ts';
import type { ActorSnapshot } from '../../src/runtime/types.ts';
import { generateWebhookSecret } from '../../src/store/secrets.ts';
import { memoryLogger } from '../support/kernel.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ethhook-demo-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const CONTRACT = '0x5FbDB2315678afecb367f032d93F642f64180aa3';

describe('demo receiver', () => {
  it('answers 204 to signed requests, 401 to forged ones, and logs every N verified', async () => {
    const secret = generateWebhookSecret();
    const { logger, lines } = memoryLogger();
    const receiver = await startDemoReceiver({ secrets: [secret], logger, logEvery: 2 });
    try {
      expect(receiver.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/webhooks$/);
      const post = (headers: Record<string, string>, body: string) =>
        fetch(receiver.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
      const now = Math.floor(Date.now() / 1000);
      for (const id of ['msg_a', 'msg_b', 'msg_a']) {
        const body = JSON.stringify({ id });
        expect((await post({ ...signPayload({ id, timestamp: now, body, secrets: [secret] }) }, body)).status).toBe(204);
      }
      const forged = signPayload({ id: 'msg_c', timestamp: now, body: '{}', secrets: [generateWebhookSecret()] });
      const refused = await post({ ...forged }, '{}');
      expect(refused.status).toBe(401);
      expect(await refused.text()).toContain('no signature matches');
      expect((await post({}, '{}')).status).toBe(401);
      expect((await fetch(receiver.url)).status).toBe(405);
      expect(receiver.stats()).toEqual({ received: 5, verified: 3, failed: 2, duplicates: 1 });
      expect(lines.filter((l) => l.msg === 'demo receiver: 2 webhooks verified')).toHaveLength(1);
      expect(lines.filter((l) => l.msg === 'demo receiver: signature NOT verified')).toHaveLength(2);
    } finally {
      await receiver.close();
    }
    await expect(fetch(receiver.url, { method: 'POST', body: '{}' })).rejects.toThrow();
  });
});

describe('startDemo', () => {
  it('keeps its key, log and secret across starts and feeds only what changed', async () => {
    const dataDir = join(dir, 'data');
    const { logger } = memoryLogger();
    const chain = { chainId: 31337, contractAddress: CONTRACT };

    const first = await startDemo({ dataDir, chain, logger });
    let firstKey: string;
    let firstSecret: string;
    try {
      expect(first.fed).toEqual([1, 2, 3, 4]);
      expect(first.governanceServer.messages().map((m) => m.type)).toEqual([
        'endpoint.upsert',
        'subscription.upsert',
        'endpoint.pause',
        'endpoint.resume',
      ]);
      const [endpoint, subscription] = first.governanceServer.messages().map((m) => m.payload as Record<string, unknown>);
      expect(endpoint).toMatchObject({ id: DEMO_ENDPOINT_ID, url: first.receiver.url, secret: expect.stringMatching(/^whsec_/) });
      expect(subscription).toMatchObject({
        id: DEMO_SUBSCRIPTION_ID,
        endpointId: DEMO_ENDPOINT_ID,
        chainId: 31337,
        addresses: [CONTRACT.toLowerCase()],
        topics: [TICK_TOPIC],
      });
      // The node is told to trust the key that signs.
      firstKey = keyIdOf(parsePublicKey(first.governance.publicKeys[0]!));
      expect(first.governance.publicKeys).toHaveLength(1);
      expect(first.governanceServer.keyId).toBe(firstKey);
      expect(first.governance.url).toBe(first.governanceServer.url);
      expect((await stat(join(dataDir, DEMO_KEY_FILE))).mode & 0o777).toBe(0o600);
      firstSecret = endpoint!.secret as string;
    } finally {
      await first.stop();
    }

    // Same dataDir: same key, same log, same secret; the receiver's new port is the one change.
    const second = await startDemo({ dataDir, chain, logger });
    try {
      expect(second.governanceServer.keyId).toBe(firstKey);
      expect(second.fed).toEqual([5]);
      const last = second.governanceServer.messages().at(-1)!;
      expect(last).toMatchObject({ seq: 5, type: 'endpoint.upsert', payload: { url: second.receiver.url, secret: firstSecret } });
      // The receiver verifies with that secret.
      const now = Math.floor(Date.now() / 1000);
      const res = await fetch(second.receiver.url, {
        method: 'POST',
        headers: { ...signPayload({ id: 'm', timestamp: now, body: 'x', secrets: [firstSecret] }) },
        body: 'x',
      });
      expect(res.status).toBe(204);
    } finally {
      await second.stop();
    }

    // Another contract address: the subscription is fed again.
    const third = await startDemo({ dataDir, chain: { chainId: 31337, contractAddress: '0x' + '11'.repeat(20) }, logger });
    try {
      expect(third.fed).toEqual([6, 7]);
      expect(third.governanceServer.messages().at(-1)).toMatchObject({
        type: 'subscription.upsert',
        payload: { addresses: ['0x' + '11'.repeat(20)] },
      });
    } finally {
      await third.stop();
    }
    // The log on disk holds all of it, one signed message per line.
    expect((await readFile(join(dataDir, 'demo-governance.jsonl'), 'utf8')).trim().split('\n')).toHaveLength(7);
  });
});

describe('readStatus', () => {
  it('reads heights, deliveries and mailboxes; leaves out what the node does not have', async () => {
    const registry = new Registry();
    getChainMetrics(registry).height.set({ chain: 'dev' }, 42);
    const deliveries = delivererMetrics(registry).deliveries;
    deliveries.inc({ status: 'success' }, 7);
    deliveries.inc({ status: 'server_error' }, 2);
    const snapshot: ActorSnapshot = {
      path: '/',
      name: 'root',
      kind: 'supervisor',
      state: 'running',
      restartType: 'permanent',
      placement: 'local',
      pid: null,
      incarnation: 1,
      mailbox: null,
      restarts: 0,
      panics: 0,
      children: [
        {
          path: '/matcher',
          name: 'matcher',
          kind: 'worker',
          state: 'running',
          restartType: 'permanent',
          placement: 'local',
          pid: null,
          incarnation: 1,
          mailbox: { size: 3, capacity: 10, overflow: 'backpressure' },
          restarts: 0,
          panics: 0,
        },
      ],
    };
    const status = await readStatus({
      registry,
      snapshot: () => snapshot,
      receiver: () => ({ received: 8, verified: 7, failed: 1, duplicates: 0 }),
    });
    expect(status).toEqual({
      head: { dev: 42 },
      events: 0,
      delivered: 7,
      deliveryFailures: 2,
      queue: 0,
      verified: 7,
      verifyFailures: 1,
      mailboxes: { '/matcher': 3 },
    });
  });
});
