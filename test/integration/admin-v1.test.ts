// The /v1 admin API (endpoints, subscriptions, attempts, dead letters) over real HTTP on 127.0.0.1:
// the real admin behaviour under a real ActorSystem, real stores on a LevelDB dir, and collector actors
// at /pipeline/matcher and /pipeline/deliverer that record the change notices.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminBehaviour } from '../../src/actors/admin/behaviour.ts';
import { v1Routes, type CheckTarget } from '../../src/actors/admin/v1/index.ts';
import { checkTarget, type ResolvedAddress } from '../../src/target-policy/ssrf.ts';
import { defaultConfig, type AdminConfig } from '../../src/config/schema.ts';
import { createLogger } from '../../src/runtime/log.ts';
import type { ActorSystem } from '../../src/runtime/system.ts';
import type { ActorRef, Behaviour } from '../../src/runtime/types.ts';
import { openDb, type Db } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import { EndpointStore } from '../../src/store/endpoints.ts';
import { type NewJob } from '../../src/store/outbox/job.ts';
import { LevelOutbox } from '../../src/store/level/outbox/outbox.ts';
import { SubscriptionStore } from '../../src/store/subscriptions.ts';
import { BackfillStore } from '../../src/store/backfills.ts';
import { startSystem } from '../../src/supervision/index.ts';
import { waitFor } from '../support/kernel.ts';

const READ = 'read-token-aaaaaaaaaaaaaaaa';
const OPERATE = 'operate-token-bbbbbbbbbbbbbbbb';
const HOUR = 60 * 60 * 1000;
const T0 = `0x${'aa'.repeat(32)}`;
const T2A = `0x${'BB'.repeat(32)}`;
const T2B = `0x${'cc'.repeat(32)}`;
const ADDRESS = `0x${'De'.repeat(20)}`;

const logLines: Record<string, unknown>[] = [];
const rawLog: string[] = [];
const logger = createLogger({
  level: 'debug',
  destination: { write: (line: string) => void (rawLog.push(line), logLines.push(JSON.parse(line) as Record<string, unknown>)) },
});

/** Every message the stand-in Matcher and Deliverer received, in order. */
const notices: { to: string; msg: Record<string, unknown> }[] = [];
const collector = (to: string) => (): Behaviour => ({
  receive: (msg) => {
    notices.push({ to, msg: msg as Record<string, unknown> });
    return { ok: true };
  },
});
const noticesTo = (to: string) => notices.filter((n) => n.to === to).map((n) => n.msg);

/** DNS for the strict admin: names resolve to the addresses a test needs, and nothing leaves the host. */
const DNS: Record<string, ResolvedAddress[]> = {
  'hooks.example': [{ address: '93.184.216.34', family: 4 }],
  'internal.example': [{ address: '10.0.0.5', family: 4 }],
  'mixed.example': [
    { address: '93.184.216.34', family: 4 },
    { address: '127.0.0.1', family: 4 },
  ],
};
const fakeDnsCheck: CheckTarget = (url, policy) =>
  checkTarget(url, {
    ...policy,
    lookup: async (host) => {
      const found = DNS[host];
      if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
      return found;
    },
  });

let dir: string;
let db: Db;
let endpoints: EndpointStore;
let subscriptions: SubscriptionStore;
let outbox: LevelOutbox;
let system: ActorSystem;
const bases: Record<'strict' | 'dev' | 'https', string> = { strict: '', dev: '', https: '' };
/** Every secret an answer carried: none may ever reach a log line. */
const secretsSeen: string[] = [];

const adminConfig: AdminConfig = {
  ...defaultConfig().admin,
  port: 0,
  tokens: [
    { token: READ, role: 'read' },
    { token: OPERATE, role: 'operate' },
  ],
};

function admin(name: string, security: { allowPrivateTargets: boolean; requireHttpsTargets: boolean }, check?: CheckTarget) {
  return {
    kind: 'worker' as const,
    name,
    behaviour: () =>
      createAdminBehaviour({
        system: () => system,
        config: adminConfig,
        registry: new Registry(),
        routes: v1Routes({
          endpoints,
          subscriptions,
          outbox,
          lookup: (path) => system.lookup(path),
          backfills: new BackfillStore(new LevelKv(db)),
          chains: [31337, 1, 2, 10],
          config: { secretOverlapMs: HOUR, ...security },
          noticeTimeoutMs: 300,
          ...(check ? { checkTarget: check } : {}),
        }),
      }),
  };
}

async function baseOf(name: string): Promise<string> {
  const address = await (system.lookup(name) as ActorRef<{ type: 'address' }>).ask<AddressInfo | null>({ type: 'address' });
  if (address === null) throw new Error(`${name} is not listening`);
  return `http://127.0.0.1:${address.port}`;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ethhook-admin-v1-'));
  db = await openDb(dir);
  endpoints = new EndpointStore(new LevelKv(db), randomBytes(32));
  subscriptions = new SubscriptionStore(new LevelKv(db), endpoints);
  outbox = await LevelOutbox.open(new LevelKv(db));
  system = await startSystem(
    {
      kind: 'supervisor',
      name: 'root',
      strategy: 'one-for-one',
      children: [
        {
          kind: 'supervisor',
          name: 'pipeline',
          strategy: 'rest-for-one',
          children: [
            { kind: 'worker', name: 'deliverer', behaviour: collector('deliverer') },
            { kind: 'worker', name: 'matcher', behaviour: collector('matcher') },
          ],
        },
        // Production-like: private targets refused (with the fake DNS above).
        admin('admin', { allowPrivateTargets: false, requireHttpsTargets: false }, fakeDnsCheck),
        // Development: private targets allowed.
        admin('admin-dev', { allowPrivateTargets: true, requireHttpsTargets: false }),
        admin('admin-https', { allowPrivateTargets: true, requireHttpsTargets: true }),
      ],
    },
    { logger },
  );
  bases.strict = await baseOf('admin');
  bases.dev = await baseOf('admin-dev');
  bases.https = await baseOf('admin-https');
});

afterAll(async () => {
  await system?.shutdown('test over', 5_000);
  await db?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A row of a /v1 list (endpoints, subscriptions, attempts or dead letters), as the assertions read it. */
type Row = { id: string; jobId: string; at: number; chainId: number; redacted?: boolean; url?: string };

/** A /v1 answer's JSON as the assertions read it: each answer carries some of these fields. */
interface V1Body {
  error: { code: string; field?: string; message: string };
  endpoint: {
    id: string;
    url: string;
    paused: boolean;
    disabled: unknown;
    rateLimitPerSec?: number;
    redacted?: boolean;
    secrets: { id: string }[];
  };
  secret: string;
  secretId: string;
  previousSecretExpiresAt: number;
  subscription: { id: string; topics: unknown[] };
  data: Row[];
  next: string | null;
}

interface Reply<B = V1Body> {
  status: number;
  text: string;
  json: B;
}

async function call<B = V1Body>(
  method: string,
  path: string,
  opts: { token?: string | null; body?: unknown; via?: keyof typeof bases } = {},
): Promise<Reply<B>> {
  const headers: Record<string, string> = {};
  const token = opts.token === undefined ? OPERATE : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(`${bases[opts.via ?? 'dev']}${path}`, { method, headers, body });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json: json as B };
}

async function createEndpoint(body: Record<string, unknown> = {}, via: keyof typeof bases = 'dev') {
  const r = await call('POST', '/v1/endpoints', { body: { url: 'http://127.0.0.1:9/hook?token=t0p', ...body }, via });
  expect(r.status).toBe(201);
  secretsSeen.push(r.json.secret);
  return r.json;
}

function badField(r: Reply, field: string, code = 'ETHHOOK_ERR_ADMIN_INVALID_REQUEST') {
  expect(r.status, r.text).toBe(code === 'ETHHOOK_ERR_ADMIN_INVALID_REQUEST' || code === 'ETHHOOK_ERR_TARGET_REFUSED' ? 400 : 404);
  expect(r.json.error).toMatchObject({ code, field });
}

describe('roles', () => {
  // No token: 401 everywhere under /v1. A read token: 403 on writes and customer data.
  it('answers 401 without a valid token and 403 to a read token on operate routes', async () => {
    const { endpoint } = await createEndpoint();
    for (const [method, path] of [
      ['GET', '/v1/endpoints'],
      ['POST', '/v1/endpoints'],
      ['GET', '/v1/subscriptions'],
      ['GET', '/v1/dead-letters'],
    ] as const) {
      expect((await call(method, path, { token: null })).status).toBe(401);
      expect((await call(method, path, { token: 'not-a-token' })).status).toBe(401);
    }
    for (const [method, path] of [
      ['POST', '/v1/endpoints'],
      ['PATCH', `/v1/endpoints/${endpoint.id}`],
      ['DELETE', `/v1/endpoints/${endpoint.id}`],
      ['POST', `/v1/endpoints/${endpoint.id}/rotate-secret`],
      ['POST', `/v1/endpoints/${endpoint.id}/pause`],
      ['GET', `/v1/endpoints/${endpoint.id}/attempts`],
      ['POST', '/v1/subscriptions'],
      ['DELETE', '/v1/subscriptions/sub_x'],
      ['GET', '/v1/dead-letters'],
      ['POST', '/v1/dead-letters/replay'],
      ['POST', '/v1/dead-letters/msg_x/replay'],
    ] as const) {
      const r = await call(method, path, { token: READ, body: method === 'GET' || method === 'DELETE' ? undefined : {} });
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.json.error.code).toBe('ETHHOOK_ERR_ADMIN_FORBIDDEN');
    }
    // Nothing changed behind the refusals.
    expect((await endpoints.require(endpoint.id)).paused).toBe(false);
  });

  it('shows a read token endpoints and subscriptions without their customer fields', async () => {
    const { endpoint } = await createEndpoint({ description: 'ACME payments' });
    const sub = await call('POST', '/v1/subscriptions', {
      body: { endpointId: endpoint.id, chainId: 1, addresses: [ADDRESS], topics: [T0] },
    });
    const asRead = await call('GET', `/v1/endpoints/${endpoint.id}`, { token: READ });
    expect(asRead.status).toBe(200);
    expect(asRead.json.endpoint).toMatchObject({
      id: endpoint.id,
      origin: 'http://127.0.0.1:9',
      redacted: true,
      paused: false,
      disabled: null,
    });
    expect(asRead.text).not.toContain('token=t0p');
    expect(asRead.text).not.toContain('ACME');
    const list = await call('GET', '/v1/endpoints?limit=1000', { token: READ });
    expect(list.json.data.every((e: Record<string, unknown>) => e.redacted === true && e.url === undefined)).toBe(true);
    const subRead = await call('GET', `/v1/subscriptions/${sub.json.subscription.id}`, { token: READ });
    expect(subRead.json.subscription).toEqual({
      id: sub.json.subscription.id,
      endpointId: endpoint.id,
      chainId: 1,
      createdAt: expect.any(Number),
      redacted: true,
    });
    const asOperate = await call('GET', `/v1/endpoints/${endpoint.id}`);
    expect(asOperate.json.endpoint).toMatchObject({ url: 'http://127.0.0.1:9/hook?token=t0p', description: 'ACME payments' });
    expect(asOperate.json.endpoint.redacted).toBeUndefined();
  });
});

describe('endpoints', () => {
  it('creates an endpoint: 201 with its view and a whsec_ secret shown this once', async () => {
    const created = await call('POST', '/v1/endpoints', {
      body: { url: 'http://127.0.0.1:9/a', description: 'first', rateLimitPerSec: 5 },
    });
    expect(created.status).toBe(201);
    secretsSeen.push(created.json.secret);
    const { endpoint, secret } = created.json;
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/=]+$/);
    expect(endpoint).toMatchObject({
      url: 'http://127.0.0.1:9/a',
      description: 'first',
      rateLimitPerSec: 5,
      paused: false,
      disabled: null,
    });
    expect(endpoint.id).toMatch(/^ep_/);
    expect(endpoint.secrets).toEqual([{ id: expect.stringMatching(/^sec_/), createdAt: expect.any(Number) }]);
    // The store signs with exactly that secret; no later read shows it, sealed or not.
    expect(endpoints.activeSecrets(await endpoints.require(endpoint.id))).toEqual([secret]);
    const later = await call('GET', `/v1/endpoints/${endpoint.id}`);
    expect(later.status).toBe(200);
    expect(later.text).not.toContain(secret);
    expect(later.text).not.toContain('whsec_');
    expect(later.text).not.toContain('encrypted');
    const listed = await call('GET', '/v1/endpoints?limit=1000');
    expect(listed.text).not.toContain('whsec_');
  });

  it('refuses bad create bodies with 400 naming the field', async () => {
    badField(await call('POST', '/v1/endpoints', { body: { url: 'ftp://127.0.0.1/x' } }), 'url');
    badField(await call('POST', '/v1/endpoints', { body: { url: 'not a url' } }), 'url');
    badField(await call('POST', '/v1/endpoints', { body: { url: 'http://user:pw@127.0.0.1/x' } }), 'url');
    badField(await call('POST', '/v1/endpoints', { body: {} }), 'url');
    badField(await call('POST', '/v1/endpoints', { body: { url: 'http://127.0.0.1/x', rateLimitPerSec: 0 } }), 'rateLimitPerSec');
    // A rate too small to deliver anything is a pause in disguise: refused, naming the minimum.
    const tiny = await call('POST', '/v1/endpoints', { body: { url: 'http://127.0.0.1/x', rateLimitPerSec: 1e-300 } });
    badField(tiny, 'rateLimitPerSec');
    expect(tiny.json.error.message).toContain('at least 0.01');
    // Ids and secrets are the governance stream's to choose, not the API's.
    badField(await call('POST', '/v1/endpoints', { body: { url: 'http://127.0.0.1/x', secret: `whsec_${'A'.repeat(32)}` } }), 'secret');
    badField(await call('POST', '/v1/endpoints', { body: { url: 'http://127.0.0.1/x', id: 'ep_mine' } }), 'id');
  });

  it('lists endpoints in creation order, paged by limit and after', async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await createEndpoint({ description: `page ${i}` })).endpoint.id);
    const all: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const r: Reply = await call('GET', `/v1/endpoints?limit=2${after ? `&after=${after}` : ''}`);
      expect(r.status).toBe(200);
      expect(r.json.data.length).toBeLessThanOrEqual(2);
      all.push(...r.json.data.map((e: { id: string }) => e.id));
      after = r.json.next;
      pages++;
    } while (after !== null);
    expect(all).toEqual((await endpoints.list()).map((e) => e.id));
    expect(all.slice(-3)).toEqual(ids);
    // `limit + 1` rows are read, so the last page is never an empty one.
    expect(pages).toBe(Math.ceil(all.length / 2));
    badField(await call('GET', '/v1/endpoints?limit=0'), 'limit');
    badField(await call('GET', '/v1/endpoints?limit=1001'), 'limit');
    badField(await call('GET', '/v1/endpoints?after=x!y'), 'after');
    badField(await call('GET', '/v1/endpoints?colour=red'), 'colour');
  });

  it('answers 404 with the catalog code for an unknown endpoint', async () => {
    for (const [method, path, body] of [
      ['GET', '/v1/endpoints/ep_nope', undefined],
      ['PATCH', '/v1/endpoints/ep_nope', { description: 'x' }],
      ['DELETE', '/v1/endpoints/ep_nope', undefined],
      ['POST', '/v1/endpoints/ep_nope/rotate-secret', {}],
      ['POST', '/v1/endpoints/ep_nope/pause', undefined],
      ['POST', '/v1/endpoints/ep_nope/resume', undefined],
      ['POST', '/v1/endpoints/ep_nope/enable', undefined],
      ['GET', '/v1/endpoints/ep_nope/attempts', undefined],
    ] as const) {
      const r = await call(method, path, { body });
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.json.error.code).toBe('ETHHOOK_ERR_ENDPOINT_NOT_FOUND');
    }
  });

  it('patches url, description and rate limit, and tells the Deliverer', async () => {
    const { endpoint } = await createEndpoint({ rateLimitPerSec: 10 });
    const before = noticesTo('deliverer').length;
    const r = await call('PATCH', `/v1/endpoints/${endpoint.id}`, { body: { url: 'http://127.0.0.1:9/b', description: 'moved' } });
    expect(r.status).toBe(200);
    expect(r.json.endpoint).toMatchObject({ id: endpoint.id, url: 'http://127.0.0.1:9/b', description: 'moved', rateLimitPerSec: 10 });
    const cleared = await call('PATCH', `/v1/endpoints/${endpoint.id}`, { body: { rateLimitPerSec: null } });
    expect(cleared.json.endpoint.rateLimitPerSec).toBeUndefined();
    expect((await endpoints.require(endpoint.id)).rateLimitPerSec).toBeUndefined();
    expect(noticesTo('deliverer').slice(before)).toEqual([
      { type: 'deliverer.endpoint-changed', endpointId: endpoint.id },
      { type: 'deliverer.endpoint-changed', endpointId: endpoint.id },
    ]);
    badField(await call('PATCH', `/v1/endpoints/${endpoint.id}`, { body: { url: 'gopher://x' } }), 'url');
    badField(await call('PATCH', `/v1/endpoints/${endpoint.id}`, { body: { paused: true } }), 'paused');
    const empty = await call('PATCH', `/v1/endpoints/${endpoint.id}`, { body: {} });
    expect(empty.status).toBe(400);
    expect(empty.json.error.message).toContain('at least one');
  });

  it('deletes an endpoint with its subscriptions, and tells the Matcher and the Deliverer', async () => {
    const { endpoint } = await createEndpoint();
    const subIds: string[] = [];
    for (const chainId of [1, 10])
      subIds.push((await call('POST', '/v1/subscriptions', { body: { endpointId: endpoint.id, chainId } })).json.subscription.id);
    const mark = notices.length;
    const r = await call('DELETE', `/v1/endpoints/${endpoint.id}`);
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ deleted: endpoint.id, removedSubscriptions: subIds });
    expect(notices.slice(mark)).toEqual([
      { to: 'matcher', msg: { type: 'subscriptions.changed', removed: subIds } },
      { to: 'deliverer', msg: { type: 'deliverer.endpoint-changed', endpointId: endpoint.id, deleted: true } },
    ]);
    expect((await call('GET', `/v1/endpoints/${endpoint.id}`)).status).toBe(404);
    expect((await call('GET', `/v1/subscriptions/${subIds[0]}`)).status).toBe(404);
    expect(await subscriptions.list({ endpointId: endpoint.id })).toEqual([]);
    expect((await call('DELETE', `/v1/endpoints/${endpoint.id}`)).json.error.code).toBe('ETHHOOK_ERR_ENDPOINT_NOT_FOUND');
  });

  it('pauses, resumes and re-enables a disabled endpoint, closing its breaker', async () => {
    const { endpoint } = await createEndpoint();
    const mark = noticesTo('deliverer').length;
    expect((await call('POST', `/v1/endpoints/${endpoint.id}/pause`)).json.endpoint.paused).toBe(true);
    expect((await endpoints.require(endpoint.id)).paused).toBe(true);
    expect((await call('POST', `/v1/endpoints/${endpoint.id}/resume`)).json.endpoint.paused).toBe(false);
    await endpoints.disable(endpoint.id, 'receiver answered 410 Gone');
    expect((await call('GET', `/v1/endpoints/${endpoint.id}`)).json.endpoint.disabled).toMatchObject({
      reason: 'receiver answered 410 Gone',
    });
    const enabled = await call('POST', `/v1/endpoints/${endpoint.id}/enable`);
    expect(enabled.status).toBe(200);
    expect(enabled.json.endpoint.disabled).toBeNull();
    expect((await endpoints.require(endpoint.id)).disabled).toBeNull();
    // Enabling also closes the endpoint's breaker.
    expect(noticesTo('deliverer').slice(mark)).toEqual([
      ...Array(3).fill({ type: 'deliverer.endpoint-changed', endpointId: endpoint.id }),
      { type: 'deliverer.breaker', endpointId: endpoint.id, action: 'close' },
    ]);
  });
});

describe('secret rotation', () => {
  it('returns a new secret once; the old one keeps signing until the overlap ends', async () => {
    const { endpoint, secret: old } = await createEndpoint();
    const mark = noticesTo('deliverer').length;
    const at = Date.now();
    const r = await call('POST', `/v1/endpoints/${endpoint.id}/rotate-secret`, { body: { overlapMs: 60_000 } });
    expect(r.status).toBe(200);
    secretsSeen.push(r.json.secret);
    expect(r.json.secret).toMatch(/^whsec_/);
    expect(r.json.secret).not.toBe(old);
    const expiry: number = r.json.previousSecretExpiresAt;
    expect(expiry).toBeGreaterThanOrEqual(at + 60_000);
    expect(expiry).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(r.json.endpoint.secrets.map((s: { id: string }) => s.id)[0]).toBe(r.json.secretId);
    expect(noticesTo('deliverer').slice(mark)).toEqual([{ type: 'deliverer.endpoint-changed', endpointId: endpoint.id }]);
    // Both sign during the overlap (newest first); only the new one after it.
    const stored = await endpoints.require(endpoint.id);
    expect(endpoints.activeSecrets(stored, Date.now())).toEqual([r.json.secret, old]);
    expect(endpoints.activeSecrets(stored, expiry - 1)).toEqual([r.json.secret, old]);
    expect(endpoints.activeSecrets(stored, expiry)).toEqual([r.json.secret]);
    // Later reads show neither secret.
    const later = await call('GET', `/v1/endpoints/${endpoint.id}`);
    expect(later.text).not.toContain(old);
    expect(later.text).not.toContain(r.json.secret);
  });

  it('takes the configured overlap when none is given, and refuses a bad one', async () => {
    const { endpoint } = await createEndpoint();
    const at = Date.now();
    const r = await call('POST', `/v1/endpoints/${endpoint.id}/rotate-secret`, { body: {} });
    expect(r.status).toBe(200);
    secretsSeen.push(r.json.secret);
    expect(r.json.previousSecretExpiresAt).toBeGreaterThanOrEqual(at + HOUR);
    expect(r.json.previousSecretExpiresAt).toBeLessThanOrEqual(Date.now() + HOUR);
    badField(await call('POST', `/v1/endpoints/${endpoint.id}/rotate-secret`, { body: { overlapMs: -1 } }), 'overlapMs');
    // The body is required (`{}` for the default), so a bare POST changes nothing by accident.
    expect((await call('POST', `/v1/endpoints/${endpoint.id}/rotate-secret`)).status).toBe(400);
    badField(await call('POST', `/v1/endpoints/${endpoint.id}/rotate-secret`, { body: { overlapMs: 'a day' } }), 'overlapMs');
    badField(await call('POST', `/v1/endpoints/${endpoint.id}/rotate-secret`, { body: { overlapMs: 31 * 24 * HOUR } }), 'overlapMs');
    expect((await endpoints.require(endpoint.id)).secrets).toHaveLength(2);
  });
});

describe('target URLs', () => {
  // With private targets refused (production), at creation and on change, with the reason.
  it('refuses loopback, link-local, private and unresolvable targets when private targets are not allowed', async () => {
    const cases: [string, string][] = [
      ['http://127.0.0.1:9/', 'loopback'],
      ['http://169.254.169.254/latest/meta-data/', 'link-local'],
      ['http://[::1]:8080/', 'loopback'],
      ['http://10.1.2.3/', 'private'],
      ['http://internal.example/hook', 'internal.example: 10.0.0.5 is private'],
      ['http://mixed.example/hook', 'loopback'],
      ['http://nowhere.example/hook', 'cannot resolve nowhere.example'],
    ];
    const before = (await endpoints.list()).length;
    for (const [url, reason] of cases) {
      const r = await call('POST', '/v1/endpoints', { body: { url }, via: 'strict' });
      badField(r, 'url', 'ETHHOOK_ERR_TARGET_REFUSED');
      expect(r.json.error.message, url).toContain(reason);
    }
    expect((await endpoints.list()).length).toBe(before);
  });

  it('accepts public targets, and refuses a change of URL to a private one', async () => {
    const byIp = await createEndpoint({ url: 'http://93.184.216.34/hook' }, 'strict');
    expect(byIp.endpoint.url).toBe('http://93.184.216.34/hook');
    const byName = await createEndpoint({ url: 'https://hooks.example/in' }, 'strict');
    const r = await call('PATCH', `/v1/endpoints/${byName.endpoint.id}`, { body: { url: 'http://169.254.169.254/' }, via: 'strict' });
    badField(r, 'url', 'ETHHOOK_ERR_TARGET_REFUSED');
    expect((await endpoints.require(byName.endpoint.id)).url).toBe('https://hooks.example/in');
  });

  it('accepts private targets when they are allowed, and refuses plain http when https is required', async () => {
    expect((await createEndpoint({ url: 'http://127.0.0.1:9/' }, 'dev')).endpoint.url).toBe('http://127.0.0.1:9/');
    expect((await createEndpoint({ url: 'http://169.254.169.254/' }, 'dev')).endpoint.url).toBe('http://169.254.169.254/');
    const plain = await call('POST', '/v1/endpoints', { body: { url: 'http://127.0.0.1:9/' }, via: 'https' });
    badField(plain, 'url', 'ETHHOOK_ERR_TARGET_REFUSED');
    expect(plain.json.error.message).toContain('https');
    expect((await createEndpoint({ url: 'https://127.0.0.1:9/' }, 'https')).endpoint.url).toBe('https://127.0.0.1:9/');
  });
});

describe('subscriptions', () => {
  it('creates a subscription (normalized) and tells the Matcher', async () => {
    const { endpoint } = await createEndpoint();
    const mark = noticesTo('matcher').length;
    const r = await call('POST', '/v1/subscriptions', {
      body: {
        endpointId: endpoint.id,
        chainId: 31337,
        addresses: [ADDRESS, ADDRESS.toLowerCase()],
        topics: [T0, null, [T2A, T2B, T2A]],
        confirmations: 3,
        finality: 'finalized',
      },
    });
    expect(r.status).toBe(201);
    const sub = r.json.subscription;
    expect(sub).toEqual({
      id: expect.stringMatching(/^sub_/),
      endpointId: endpoint.id,
      chainId: 31337,
      addresses: [ADDRESS.toLowerCase()],
      topics: [T0, null, [T2A.toLowerCase(), T2B]],
      confirmations: 3,
      finality: 'finalized',
      createdAt: expect.any(Number),
    });
    expect(noticesTo('matcher').slice(mark)).toEqual([{ type: 'subscriptions.changed', upserted: [sub.id] }]);
    expect(await subscriptions.require(sub.id)).toEqual(sub);
    // An empty alternative list is a wildcard, as in eth_getLogs.
    const wild = await call('POST', '/v1/subscriptions', { body: { endpointId: endpoint.id, chainId: 1, topics: [[]] } });
    expect(wild.json.subscription.topics).toEqual([null]);
  });

  it('refuses bad subscription input and a chain the node does not follow with 400 naming the field, and an unknown endpoint with 404', async () => {
    const { endpoint } = await createEndpoint();
    const mark = noticesTo('matcher').length;
    const post = (body: Record<string, unknown>) =>
      call('POST', '/v1/subscriptions', { body: { endpointId: endpoint.id, chainId: 1, ...body } });
    badField(await post({ topics: [T0, '0x12'] }), 'topics[1]');
    badField(await post({ topics: [T0, null, [T2A, 'nope']] }), 'topics[2][1]');
    badField(await post({ topics: [42] }), 'topics[0]');
    badField(await post({ topics: [null, null, null, null, T0] }), 'topics');
    badField(await post({ topics: T0 }), 'topics');
    badField(await post({ addresses: [ADDRESS, '0xabc'] }), 'addresses[1]');
    badField(await post({ chainId: 0 }), 'chainId');
    badField(await post({ chainId: '1' }), 'chainId');
    badField(await post({ confirmations: -1 }), 'confirmations');
    badField(await post({ finality: 'final' }), 'finality');
    badField(await post({ endpointId: 'nope' }), 'endpointId');
    badField(await post({ colour: 'red' }), 'colour');
    const missing = await call('POST', '/v1/subscriptions', { body: { endpointId: endpoint.id } });
    badField(missing, 'chainId');
    expect(missing.json.error.message).toContain('required');
    const elsewhere = await post({ chainId: 999 });
    badField(elsewhere, 'chainId');
    expect(elsewhere.json.error.message).toBe('body.chainId: this node follows chain 1, 2, 10, 31337; 999 is not one of them');
    const unknown = await post({ endpointId: 'ep_nope' });
    expect(unknown.status).toBe(404);
    expect(unknown.json.error).toMatchObject({ code: 'ETHHOOK_ERR_ENDPOINT_NOT_FOUND', field: 'endpointId' });
    expect(noticesTo('matcher').length).toBe(mark);
    expect(await subscriptions.list({ endpointId: endpoint.id })).toEqual([]);
  });

  it('lists by endpoint and chain, paged; reads one; deletes and tells the Matcher', async () => {
    const a = (await createEndpoint()).endpoint.id;
    const b = (await createEndpoint()).endpoint.id;
    const made: Record<string, string[]> = { a: [], b: [] };
    for (const [key, id, chainId] of [
      ['a', a, 1],
      ['a', a, 2],
      ['a', a, 1],
      ['b', b, 1],
    ] as const) {
      made[key]!.push((await call('POST', '/v1/subscriptions', { body: { endpointId: id, chainId } })).json.subscription.id);
    }
    const ofA = await call('GET', `/v1/subscriptions?endpointId=${a}`);
    expect(ofA.json).toMatchObject({ next: null });
    expect(ofA.json.data.map((s: { id: string }) => s.id)).toEqual(made.a);
    const ofAOnChain1 = await call('GET', `/v1/subscriptions?endpointId=${a}&chainId=1`);
    expect(ofAOnChain1.json.data.map((s: { id: string }) => s.id)).toEqual([made.a![0], made.a![2]]);
    const page1 = await call('GET', `/v1/subscriptions?endpointId=${a}&limit=2`);
    expect(page1.json.data).toHaveLength(2);
    expect(page1.json.next).toBe(made.a![1]);
    const page2 = await call('GET', `/v1/subscriptions?endpointId=${a}&limit=2&after=${page1.json.next}`);
    expect(page2.json).toMatchObject({ data: [{ id: made.a![2] }], next: null });
    const everyOnChain2 = await call('GET', '/v1/subscriptions?chainId=2&limit=1000');
    expect(everyOnChain2.json.data.every((s: { chainId: number }) => s.chainId === 2)).toBe(true);
    expect(everyOnChain2.json.data.map((s: { id: string }) => s.id)).toContain(made.a![1]);
    badField(await call('GET', '/v1/subscriptions?chainId=x'), 'chainId');
    badField(await call('GET', '/v1/subscriptions?endpointId=ep_a!b'), 'endpointId');

    expect((await call('GET', `/v1/subscriptions/${made.b![0]}`)).json.subscription).toMatchObject({
      id: made.b![0],
      endpointId: b,
      chainId: 1,
    });
    const mark = noticesTo('matcher').length;
    const del = await call('DELETE', `/v1/subscriptions/${made.b![0]}`);
    expect(del.json).toEqual({ deleted: made.b![0] });
    expect(noticesTo('matcher').slice(mark)).toEqual([{ type: 'subscriptions.changed', removed: [made.b![0]] }]);
    for (const method of ['GET', 'DELETE']) {
      const gone = await call(method, `/v1/subscriptions/${made.b![0]}`);
      expect(gone.status).toBe(404);
      expect(gone.json.error.code).toBe('ETHHOOK_ERR_SUBSCRIPTION_NOT_FOUND');
    }
    expect(noticesTo('matcher').length).toBe(mark + 1);
  });

  it('answers even when the Matcher is stopped: the write stands, a warning is logged, the notice waits', async () => {
    const { endpoint } = await createEndpoint();
    await system.stopActor('/pipeline/matcher');
    let id = '';
    try {
      const r = await call('POST', '/v1/subscriptions', { body: { endpointId: endpoint.id, chainId: 1 } });
      expect(r.status).toBe(201);
      id = r.json.subscription.id;
      expect(await subscriptions.get(id)).toBeDefined();
      expect(
        logLines.some(
          (l) =>
            l.level === 40 &&
            l.to === '/pipeline/matcher' &&
            l.messageType === 'subscriptions.changed' &&
            l.code === 'ETHHOOK_ERR_ASK_TIMEOUT',
        ),
      ).toBe(true);
      expect(noticesTo('matcher').some((m) => (m.upserted as string[] | undefined)?.includes(id))).toBe(false);
    } finally {
      await system.startActor('/pipeline/matcher');
    }
    // The notice stayed in the mailbox: the started Matcher gets it.
    await waitFor(() => noticesTo('matcher').some((m) => (m.upserted as string[] | undefined)?.includes(id)), 5_000, 'the queued notice');
  });
});

describe('delivery attempts', () => {
  it('lists the attempts of an endpoint newest first, paged without losing records that share a millisecond', async () => {
    const { endpoint } = await createEndpoint();
    const base = Date.now() - 10_000;
    // 7 attempts in 4 distinct milliseconds: pages of 2 must split between milliseconds.
    const ats = [base, base + 1, base + 1, base + 1, base + 2, base + 3, base + 3];
    for (const [i, at] of ats.entries()) {
      await outbox.attempts.record({
        jobId: `msg_${i}`,
        endpointId: endpoint.id,
        at,
        attempt: 1,
        durationMs: 12 + i,
        ...(i % 2 === 0 ? { status: 500, error: 'HTTP 500: upstream sad' } : { error: 'connect ECONNREFUSED' }),
      });
    }
    const first = await call('GET', `/v1/endpoints/${endpoint.id}/attempts`);
    expect(first.status).toBe(200);
    expect(first.json.next).toBeNull();
    expect(first.json.data.map((a: { jobId: string }) => a.jobId)).toEqual(['msg_6', 'msg_5', 'msg_4', 'msg_3', 'msg_2', 'msg_1', 'msg_0']);
    expect(first.json.data[0]).toMatchObject({ endpointId: endpoint.id, at: base + 3, attempt: 1, durationMs: expect.any(Number) });
    expect(first.json.data.find((a: { jobId: string }) => a.jobId === 'msg_0')).toMatchObject({
      status: 500,
      error: 'HTTP 500: upstream sad',
      durationMs: 12,
    });
    const times = first.json.data.map((a: { at: number }) => a.at);
    expect(times).toEqual([...times].sort((x, y) => y - x));

    const pages: string[][] = [];
    let before: number | null = null;
    do {
      const r: Reply<{ data: Row[]; next: number | null }> = await call(
        'GET',
        `/v1/endpoints/${endpoint.id}/attempts?limit=2${before !== null ? `&before=${before}` : ''}`,
      );
      pages.push(r.json.data.map((a: { jobId: string }) => a.jobId));
      before = r.json.next;
    } while (before !== null && pages.length < 10);
    // A page ends between milliseconds; one millisecond alone (base + 1, three records) grows its page.
    expect(pages).toEqual([['msg_6', 'msg_5'], ['msg_4'], ['msg_3', 'msg_2', 'msg_1'], ['msg_0']]);
    // `before` also takes an ISO time.
    const iso = await call('GET', `/v1/endpoints/${endpoint.id}/attempts?before=${encodeURIComponent(new Date(base + 1).toISOString())}`);
    expect(iso.json.data.map((a: { jobId: string }) => a.jobId)).toEqual(['msg_0']);
    badField(await call('GET', `/v1/endpoints/${endpoint.id}/attempts?before=yesterday`), 'before');
  });
});

describe('dead letters', () => {
  const job = (id: string, endpointId: string): NewJob => ({
    id,
    endpointId,
    subscriptionId: 'sub_dl',
    type: 'log.created',
    eventSeenAt: Date.now(),
    payload: {
      type: 'log.created',
      timestamp: new Date().toISOString(),
      data: {
        chainId: 1,
        blockNumber: 7,
        blockHash: '0x01',
        transactionHash: '0x02',
        logIndex: 0,
        address: ADDRESS,
        topics: [T0],
        data: '0x',
        subscriptionId: 'sub_dl',
      },
    },
  });
  const park = async (id: string, endpointId: string) => {
    await outbox.enqueueBatch([job(id, endpointId)]);
    expect(
      await outbox.deadLetter({ id }, 'retries exhausted', {
        jobId: id,
        endpointId,
        at: Date.now(),
        attempt: 8,
        status: 503,
        durationMs: 5,
      }),
    ).toBe(true);
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('lists dead letters by endpoint and time, and replays one', async () => {
    const a = (await createEndpoint()).endpoint.id;
    const b = (await createEndpoint()).endpoint.id;
    await park('msg_dl_a1', a);
    await park('msg_dl_b1', b);
    await sleep(5);
    const cut = Date.now();
    await sleep(5);
    await park('msg_dl_a2', a);

    const all = await call('GET', '/v1/dead-letters?limit=1000');
    expect(all.status).toBe(200);
    const ids = all.json.data.map((d: { id: string }) => d.id);
    expect(ids).toEqual(expect.arrayContaining(['msg_dl_a1', 'msg_dl_b1', 'msg_dl_a2']));
    expect(all.json.data.find((d: { id: string }) => d.id === 'msg_dl_a1')).toMatchObject({
      endpointId: a,
      subscriptionId: 'sub_dl',
      type: 'log.created',
      reason: 'retries exhausted',
      attempts: 1,
      deadAt: expect.any(Number),
      payload: { type: 'log.created', data: { blockNumber: 7 } },
    });
    const ofA = await call('GET', `/v1/dead-letters?endpointId=${a}`);
    expect(ofA.json.data.map((d: { id: string }) => d.id)).toEqual(['msg_dl_a1', 'msg_dl_a2']);
    const sinceMs = await call('GET', `/v1/dead-letters?endpointId=${a}&since=${cut}`);
    expect(sinceMs.json.data.map((d: { id: string }) => d.id)).toEqual(['msg_dl_a2']);
    const sinceIso = await call('GET', `/v1/dead-letters?since=${encodeURIComponent(new Date(cut).toISOString())}`);
    expect(sinceIso.json.data.map((d: { id: string }) => d.id)).toContain('msg_dl_a2');
    expect(sinceIso.json.data.map((d: { id: string }) => d.id)).not.toContain('msg_dl_a1');
    expect((await call('GET', `/v1/dead-letters?endpointId=${a}&limit=1`)).json.data).toHaveLength(1);
    badField(await call('GET', '/v1/dead-letters?since=last-week'), 'since');
    badField(await call('GET', '/v1/dead-letters?limit=-3'), 'limit');

    const r = await call('POST', '/v1/dead-letters/msg_dl_b1/replay');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ replayed: 1, job: { id: 'msg_dl_b1', endpointId: b } });
    expect(await outbox.getDeadLetter('msg_dl_b1')).toBeUndefined();
    expect(await outbox.get('msg_dl_b1')).toMatchObject({ id: 'msg_dl_b1', attempt: 0 });
    const again = await call('POST', '/v1/dead-letters/msg_dl_b1/replay');
    expect(again.status).toBe(404);
    expect(again.json.error.code).toBe('ETHHOOK_ERR_DEAD_LETTER_NOT_FOUND');
  });

  it('replays every dead letter of an endpoint since a time', async () => {
    const a = (await createEndpoint()).endpoint.id;
    await park('msg_rp_1', a);
    await sleep(5);
    const cut = new Date(Date.now()).toISOString();
    await sleep(5);
    await park('msg_rp_2', a);
    await park('msg_rp_3', a);
    const since = await call('POST', '/v1/dead-letters/replay', { body: { endpointId: a, since: cut } });
    expect(since.json).toEqual({ replayed: 2 });
    expect(await outbox.get('msg_rp_2')).toBeDefined();
    expect(await outbox.getDeadLetter('msg_rp_1')).toBeDefined();
    expect((await call('POST', '/v1/dead-letters/replay', { body: { endpointId: a } })).json).toEqual({ replayed: 1 });
    expect((await call('POST', '/v1/dead-letters/replay', { body: { endpointId: a } })).json).toEqual({ replayed: 0 });
    expect((await call('GET', `/v1/dead-letters?endpointId=${a}`)).json.data).toEqual([]);
    badField(await call('POST', '/v1/dead-letters/replay', { body: {} }), 'endpointId');
    badField(await call('POST', '/v1/dead-letters/replay', { body: { endpointId: a, since: 'soon' } }), 'since');
    const unknown = await call('POST', '/v1/dead-letters/replay', { body: { endpointId: 'ep_gone' } });
    expect(unknown.status).toBe(404);
    expect(unknown.json.error).toMatchObject({ code: 'ETHHOOK_ERR_ENDPOINT_NOT_FOUND', field: 'endpointId' });
  });

  it('refuses to replay for an endpoint that was deleted', async () => {
    const a = (await createEndpoint()).endpoint.id;
    await park('msg_orphan', a);
    await call('DELETE', `/v1/endpoints/${a}`);
    const r = await call('POST', '/v1/dead-letters/msg_orphan/replay');
    expect(r.status).toBe(404);
    expect(r.json.error.code).toBe('ETHHOOK_ERR_ENDPOINT_NOT_FOUND');
    expect(await outbox.getDeadLetter('msg_orphan')).toBeDefined();
  });
});

describe('audit and secrecy', () => {
  it('audits every write: who, action, target, outcome', () => {
    const audits = logLines.filter((l) => l.audit === true);
    const ok = new Set(audits.filter((l) => l.outcome === 'ok').map((l) => l.action));
    for (const action of [
      'endpoint.create',
      'endpoint.update',
      'endpoint.delete',
      'endpoint.rotate-secret',
      'endpoint.pause',
      'endpoint.resume',
      'endpoint.enable',
      'subscription.create',
      'subscription.delete',
      'dead-letter.replay',
      'dead-letter.replay-all',
    ]) {
      expect(ok.has(action), action).toBe(true);
    }
    expect(audits.find((l) => l.action === 'endpoint.pause' && l.outcome === 'ok')).toMatchObject({
      who: { role: 'operate', fingerprint: expect.any(String) },
      status: 200,
      target: expect.stringMatching(/^ep_/),
    });
    expect(audits.find((l) => l.action === 'endpoint.create' && l.outcome === 'ok')).toMatchObject({ target: 'http://127.0.0.1:9' });
    expect(
      audits.some((l) => l.action === 'endpoint.create' && l.outcome === 'denied' && (l.who as { role: string } | null)?.role === 'read'),
    ).toBe(true);
    expect(audits.some((l) => l.action === 'endpoint.create' && l.outcome === 'rejected' && l.code === 'ETHHOOK_ERR_TARGET_REFUSED')).toBe(
      true,
    );
  });

  it('never logs a secret, a token or a full target URL, and logs no error', () => {
    expect(secretsSeen.length).toBeGreaterThan(10);
    const log = rawLog.join('');
    for (const secret of secretsSeen) expect(log).not.toContain(secret);
    expect(log).not.toContain('whsec_');
    expect(log).not.toContain(OPERATE);
    expect(log).not.toContain('token=t0p');
    expect(logLines.filter((l) => (l.level as number) >= 50)).toEqual([]);
  });
});
