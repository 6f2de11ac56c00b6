// Endpoints and subscriptions on a real LevelDB directory: validation, sealed secrets, rotation,
// status changes, subscription normalization and cascading deletes.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, type Db } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import { EndpointStore, endpointView } from '../../src/store/endpoints.ts';
import { removeEndpointCascade, SubscriptionStore } from '../../src/store/subscriptions.ts';

const HOUR = 3_600_000;
const T0 = 1_700_000_000_000;
const ADDR = '0x' + 'Ab'.repeat(20);
const TOPIC = (n: number) => '0x' + n.toString(16).padStart(64, '0');

let dir: string;
let db: Db;
let endpoints: EndpointStore;
let subscriptions: SubscriptionStore;
const masterKey = randomBytes(32);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ethhook-endpoints-'));
  db = await openDb(dir);
  endpoints = new EndpointStore(new LevelKv(db), masterKey);
  subscriptions = new SubscriptionStore(new LevelKv(db), endpoints);
});
afterAll(async () => {
  await db.close();
  await rm(dir, { recursive: true, force: true });
});

async function rawDump(): Promise<string> {
  const parts: string[] = [];
  for await (const [k, v] of db.iterator()) parts.push(k, JSON.stringify(v));
  return parts.join('\n');
}

describe('endpoint creation', () => {
  it('returns a whsec_ secret once, stores it sealed, and signs with it', async () => {
    const { endpoint, secret } = await endpoints.create({ url: 'https://hooks.example.com/in', description: 'main' }, T0);
    expect(endpoint.id).toMatch(/^ep_[0-9a-z]{26}$/);
    expect(secret).toMatch(/^whsec_/);
    expect(endpoint).toMatchObject({
      url: 'https://hooks.example.com/in',
      description: 'main',
      disabled: null,
      paused: false,
      createdAt: T0,
    });
    expect(await rawDump()).not.toContain(secret.slice(6));
    const stored = await endpoints.require(endpoint.id);
    expect(endpoints.activeSecrets(stored, T0)).toEqual([secret]);
    expect(JSON.stringify(endpointView(stored))).not.toContain('encrypted');
  });

  it('cannot open the secrets under another master key', async () => {
    const { endpoint } = await endpoints.create({ url: 'https://x.example' });
    const other = new EndpointStore(new LevelKv(db), randomBytes(32));
    expect(() => other.activeSecrets(endpoint)).toThrow(expect.objectContaining({ code: 'ETHHOOK_ERR_SECRET_DECRYPT' }));
  });

  it('accepts an id and a secret from governance, and refuses a second endpoint with that id', async () => {
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const { endpoint, secret: returned } = await endpoints.create({ url: 'http://127.0.0.1:9/h', id: 'ep_cluster1', secret });
    expect(endpoint.id).toBe('ep_cluster1');
    expect(returned).toBe(secret);
    await expect(endpoints.create({ url: 'http://127.0.0.1:9/h', id: 'ep_cluster1' })).rejects.toMatchObject({
      code: 'ETHHOOK_ERR_ENDPOINT_EXISTS',
    });
  });

  it('refuses bad input with ETHHOOK_ERR_INVALID_INPUT naming the field', async () => {
    const cases: Array<[unknown, string]> = [
      [{ url: 'ftp://example.com' }, 'url'],
      [{ url: 'not a url' }, 'url'],
      [{ url: 'https://user:pw@example.com' }, 'url'],
      [{ url: 'https://example.com', rateLimitPerSec: 0 }, 'rateLimitPerSec'],
      [{ url: 'https://example.com', secret: 'whsec_short' }, 'secret'],
      [{ url: 'https://example.com', id: 'bad id' }, 'id'],
      [{ url: 'https://example.com', extra: 1 }, ''],
      [{}, 'url'],
    ];
    for (const [input, field] of cases) {
      await expect(endpoints.create(input as never)).rejects.toMatchObject({
        code: 'ETHHOOK_ERR_INVALID_INPUT',
        context: { issues: expect.arrayContaining([expect.objectContaining({ path: field })]) },
      });
    }
  });
});

describe('secret rotation', () => {
  it('keeps the old secret signing for the overlap, newest first, then only the new one', async () => {
    const { endpoint, secret: first } = await endpoints.create({ url: 'https://rot.example' }, T0);
    const { secret: second } = await endpoints.rotateSecret(endpoint.id, 2 * HOUR, { now: T0 + HOUR });
    let e = await endpoints.require(endpoint.id);
    expect(endpoints.activeSecrets(e, T0 + HOUR)).toEqual([second, first]);
    expect(endpoints.activeSecrets(e, T0 + 3 * HOUR - 1)).toEqual([second, first]);
    expect(endpoints.activeSecrets(e, T0 + 3 * HOUR)).toEqual([second]);

    // A second rotation inside the overlap never extends the first secret's expiry.
    const { secret: third } = await endpoints.rotateSecret(endpoint.id, 24 * HOUR, { now: T0 + 2 * HOUR });
    e = await endpoints.require(endpoint.id);
    expect(endpoints.activeSecrets(e, T0 + 2 * HOUR)).toEqual([third, second, first]);
    expect(endpoints.activeSecrets(e, T0 + 3 * HOUR)).toEqual([third, second]);
    expect(endpoints.activeSecrets(e, T0 + 26 * HOUR)).toEqual([third]);

    // Rotating after expiries drops the expired records.
    await endpoints.rotateSecret(endpoint.id, 0, { now: T0 + 30 * HOUR });
    e = await endpoints.require(endpoint.id);
    expect(e.secrets).toHaveLength(2);
    expect(endpoints.activeSecrets(e, T0 + 30 * HOUR)).toHaveLength(1);
  });

  it('defaults to a 24 h overlap', async () => {
    const { endpoint, secret: old } = await endpoints.create({ url: 'https://rot2.example' });
    const before = Date.now();
    await endpoints.rotateSecret(endpoint.id);
    const e = await endpoints.require(endpoint.id);
    const oldRecord = e.secrets[1]!;
    expect(oldRecord.expiresAt! - before).toBeGreaterThanOrEqual(24 * HOUR);
    expect(oldRecord.expiresAt! - before).toBeLessThan(24 * HOUR + 5000);
    expect(endpoints.activeSecrets(e)).toContain(old);
  });

  it('serializes concurrent rotations so none is lost', async () => {
    const { endpoint } = await endpoints.create({ url: 'https://rot3.example' }, T0);
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => endpoints.rotateSecret(endpoint.id, HOUR, { now: T0 + i })));
    const e = await endpoints.require(endpoint.id);
    expect(e.secrets).toHaveLength(6);
    expect(endpoints.activeSecrets(e, T0 + 10)).toEqual(expect.arrayContaining(results.map((r) => r.secret)));
  });

  it('fails for an unknown endpoint', async () => {
    await expect(endpoints.rotateSecret('ep_missing')).rejects.toMatchObject({ code: 'ETHHOOK_ERR_ENDPOINT_NOT_FOUND' });
  });
});

describe('endpoint status and listing', () => {
  it('disables with a reason, enables, pauses, updates', async () => {
    const { endpoint } = await endpoints.create({ url: 'https://s.example', rateLimitPerSec: 5 });
    expect((await endpoints.disable(endpoint.id, 'HTTP 410 Gone', T0)).disabled).toEqual({ reason: 'HTTP 410 Gone', at: T0 });
    expect((await endpoints.enable(endpoint.id)).disabled).toBeNull();
    expect((await endpoints.setPaused(endpoint.id, true)).paused).toBe(true);
    const updated = await endpoints.update(endpoint.id, { url: 'https://s2.example', rateLimitPerSec: null });
    expect(updated.url).toBe('https://s2.example');
    expect(updated).not.toHaveProperty('rateLimitPerSec');
    expect((await endpoints.update(endpoint.id, { rateLimitPerSec: 7 })).rateLimitPerSec).toBe(7);
    await expect(endpoints.update(endpoint.id, { url: 'gopher://x' })).rejects.toMatchObject({ code: 'ETHHOOK_ERR_INVALID_INPUT' });
  });

  it('lists in creation order with pages', async () => {
    const all = await endpoints.list();
    expect(all.length).toBeGreaterThan(3);
    const page1 = await endpoints.list({ limit: 2 });
    const page2 = await endpoints.list({ limit: 2, after: page1[1]!.id });
    expect([...page1, ...page2].map((e) => e.id)).toEqual(all.slice(0, 4).map((e) => e.id));
  });
});

describe('subscriptions', () => {
  it('refuses a subscription for an unknown endpoint', async () => {
    await expect(subscriptions.create({ endpointId: 'ep_nobody', chainId: 1 })).rejects.toMatchObject({
      code: 'ETHHOOK_ERR_ENDPOINT_NOT_FOUND',
    });
  });

  it('normalizes addresses and topics: lowercase, deduplicated, empty lists are wildcards', async () => {
    const { endpoint } = await endpoints.create({ url: 'https://subs.example' });
    const sub = await subscriptions.create(
      {
        endpointId: endpoint.id,
        chainId: 1,
        addresses: [ADDR, ADDR.toLowerCase()],
        topics: [TOPIC(1).toUpperCase().replace('0X', '0x'), null, [TOPIC(2), TOPIC(2), TOPIC(3)], []],
        confirmations: 3,
      },
      T0,
    );
    expect(sub.id).toMatch(/^sub_/);
    expect(sub).toMatchObject({
      endpointId: endpoint.id,
      chainId: 1,
      addresses: [ADDR.toLowerCase()],
      topics: [TOPIC(1), null, [TOPIC(2), TOPIC(3)], null],
      confirmations: 3,
      createdAt: T0,
    });
    expect(await subscriptions.require(sub.id)).toEqual(sub);
    const anyAddress = await subscriptions.create({ endpointId: endpoint.id, chainId: 1, addresses: [] });
    expect(anyAddress).not.toHaveProperty('addresses');
  });

  it('refuses malformed filters naming the field', async () => {
    const { endpoint } = await endpoints.create({ url: 'https://subs2.example' });
    const cases: Array<[unknown, string]> = [
      [{ endpointId: endpoint.id, chainId: 0 }, 'chainId'],
      [{ endpointId: endpoint.id, chainId: 1, addresses: ['0x12'] }, 'addresses.0'],
      [{ endpointId: endpoint.id, chainId: 1, topics: [null, '0xzz'] }, 'topics.1'],
      [{ endpointId: endpoint.id, chainId: 1, topics: [null, null, null, null, null] }, 'topics'],
      [{ endpointId: endpoint.id, chainId: 1, confirmations: -1 }, 'confirmations'],
    ];
    for (const [input, field] of cases) {
      await expect(subscriptions.create(input as never)).rejects.toMatchObject({
        code: 'ETHHOOK_ERR_INVALID_INPUT',
        context: { issues: expect.arrayContaining([expect.objectContaining({ path: field })]) },
      });
    }
  });

  it('lists by endpoint and chain, removes one, and cascades an endpoint delete', async () => {
    const { endpoint: a } = await endpoints.create({ url: 'https://a.example' });
    const { endpoint: b } = await endpoints.create({ url: 'https://b.example' });
    const a1 = await subscriptions.create({ endpointId: a.id, chainId: 1 });
    const a2 = await subscriptions.create({ endpointId: a.id, chainId: 2 });
    const b1 = await subscriptions.create({ endpointId: b.id, chainId: 1 });
    expect((await subscriptions.list({ endpointId: a.id })).map((s) => s.id)).toEqual([a1.id, a2.id]);
    expect((await subscriptions.list({ endpointId: a.id, chainId: 2 })).map((s) => s.id)).toEqual([a2.id]);
    expect((await subscriptions.list({ endpointId: a.id, after: a1.id })).map((s) => s.id)).toEqual([a2.id]);
    expect((await subscriptions.list({ chainId: 1 })).map((s) => s.id)).toEqual(expect.arrayContaining([a1.id, b1.id]));

    expect((await subscriptions.remove(b1.id))?.id).toBe(b1.id);
    expect(await subscriptions.remove(b1.id)).toBeUndefined();
    expect(await subscriptions.list({ endpointId: b.id })).toEqual([]);

    expect(await removeEndpointCascade(endpoints, subscriptions, a.id)).toEqual([a1.id, a2.id]);
    expect(await endpoints.get(a.id)).toBeUndefined();
    expect(await subscriptions.get(a1.id)).toBeUndefined();
    expect(await removeEndpointCascade(endpoints, subscriptions, a.id)).toBeUndefined();
  });

  it('a subscription created while its endpoint is being deleted does not survive it', async () => {
    const { endpoint } = await endpoints.create({ url: 'https://race.example' });
    const creating = subscriptions.create({ endpointId: endpoint.id, chainId: 1 }).catch((e: unknown) => e);
    const removed = await removeEndpointCascade(endpoints, subscriptions, endpoint.id);
    await creating;
    expect(removed).toBeDefined();
    expect(await subscriptions.list({ endpointId: endpoint.id })).toEqual([]);
  });
});
