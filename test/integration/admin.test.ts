// The admin API over real HTTP on 127.0.0.1, driving a real ActorSystem.
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createAdminBehaviour } from '../../src/actors/admin/behaviour.ts';
import { defineRoute } from '../../src/actors/admin/router.ts';
import { defaultConfig, type AdminConfig } from '../../src/config/schema.ts';
import { createLogger } from '../../src/runtime/log.ts';
import type { ActorRef, ActorSnapshot, Behaviour } from '../../src/runtime/types.ts';
import type { ActorSystem } from '../../src/runtime/system.ts';
import { startSystem } from '../../src/supervision/index.ts';

const READ = 'read-token-aaaaaaaaaaaaaaaa';
const OPERATE = 'operate-token-bbbbbbbbbbbbbbbb';

const logLines: Record<string, unknown>[] = [];
const rawLog: string[] = [];
const logger = createLogger({
  level: 'debug',
  destination: { write: (line: string) => void (rawLog.push(line), logLines.push(JSON.parse(line) as Record<string, unknown>)) },
});

const adminConfig: AdminConfig = {
  ...defaultConfig().admin,
  port: 0,
  tokens: [
    { token: READ, role: 'read' },
    { token: OPERATE, role: 'operate' },
  ],
  corsOrigins: ['https://ops.example'],
  maxBodyBytes: 1024,
};

/** Replies with its incarnation: a restart is visible as a new number. */
const incarnationEcho = (): Behaviour => ({ receive: (_msg, ctx) => ctx.incarnation });

// A route another module would contribute: query parsed by zod, read role.
const pingRoute = defineRoute<undefined, { n: number }>({
  method: 'GET',
  path: '/v1/ping/:who',
  auth: 'read',
  query: z.strictObject({ n: z.coerce.number().int().positive() }),
  handle: ({ params, query }) => ({ json: { pong: params.who, n: query.n } }),
});

let system: ActorSystem;
const registry = new Registry();
let base = '';

async function adminAddress(): Promise<string> {
  const admin = system.lookup('admin') as ActorRef<{ type: 'address' }>;
  const address = await admin.ask<AddressInfo | null>({ type: 'address' });
  if (address === null) throw new Error('admin is not listening');
  return `http://127.0.0.1:${address.port}`;
}

beforeAll(async () => {
  system = await startSystem(
    {
      kind: 'supervisor',
      name: 'root',
      strategy: 'one-for-one',
      intensity: { maxRestarts: 50, withinMs: 60_000 },
      children: [
        { kind: 'worker', name: 'echo', behaviour: incarnationEcho },
        { kind: 'worker', name: 'sidekick', behaviour: () => ({ receive: () => 'ok' }) },
        {
          kind: 'worker',
          name: 'admin',
          behaviour: () => createAdminBehaviour({ system: () => system, config: adminConfig, registry, routes: [pingRoute] }),
        },
      ],
    },
    { logger, registry },
  );
  base = await adminAddress();
});

afterAll(async () => {
  await system?.shutdown('test over', 5_000);
  // Nothing above answered 500 or logged an error.
  expect(logLines.filter((l) => (l.level as number) >= 50)).toEqual([]);
});

/** An admin answer's JSON as the assertions read it: each answer carries some of these fields. */
interface AdminBody {
  error: { code: string; field?: string; message: string };
  actor: ActorSnapshot;
  tree: ActorSnapshot;
}

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: AdminBody;
}

async function call(
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined = opts.raw;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(`${base}${path}`, { method, headers, body });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json: json as AdminBody };
}

function restartsOf(metrics: string, actor: string, reason: string): number {
  const line = metrics
    .split('\n')
    .find((l) => l.startsWith('actor_restarts_total{') && l.includes(`actor="${actor}"`) && l.includes(`reason="${reason}"`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

describe('probes', () => {
  // Liveness and readiness need no token (load balancers and kubelets do not carry one).
  it('GET /health answers 200 without a token', async () => {
    const r = await call('GET', '/health');
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ status: 'ok' });
    expect(r.headers.get('cache-control')).toBe('no-store');
  });

  it('GET /ready is 200 when every permanent actor runs, and stays 200 naming an actor an operator stopped', async () => {
    expect(await call('GET', '/ready')).toMatchObject({ status: 200, json: { ready: true, reasons: [], manuallyStopped: [] } });
    const stopped = await call('POST', '/admin/actors/stop', { token: OPERATE, body: { actor: '/sidekick' } });
    expect(stopped.status).toBe(200);
    expect(stopped.json.actor).toMatchObject({ path: '/sidekick', state: 'stopped' });
    expect(await call('GET', '/ready')).toMatchObject({ status: 200, json: { ready: true, reasons: [], manuallyStopped: ['/sidekick'] } });
    const started = await call('POST', '/admin/actors/start', { token: OPERATE, body: { actor: 'sidekick' } });
    expect(started.json.actor).toMatchObject({ path: '/sidekick', state: 'running' });
    expect(await call('GET', '/ready')).toMatchObject({ status: 200, json: { ready: true, reasons: [], manuallyStopped: [] } });
  });
});

describe('observation', () => {
  it('GET /metrics serves the kernel metrics to a read token', async () => {
    const r = await call('GET', '/metrics', { token: READ });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('text/plain');
    expect(r.text).toContain('actor_mailbox_size{actor="/echo"}');
    expect(r.text).toContain('actor_restarts_total');
  });

  it('GET /actors/health returns the tree with mailboxes, states and counters', async () => {
    const r = await call('GET', '/actors/health', { token: READ });
    expect(r.status).toBe(200);
    const tree = r.json.tree;
    expect(tree.kind).toBe('supervisor');
    const echo = tree.children?.find((c) => c.path === '/echo');
    expect(echo).toMatchObject({ name: 'echo', kind: 'worker', state: 'running', placement: 'local', mailbox: { capacity: 1024 } });
    expect(echo).toHaveProperty('restarts');
    expect(echo).toHaveProperty('panics');
    expect(echo).toHaveProperty('pid');
  });
});

describe('authentication and roles', () => {
  it('401 without a token or with an unknown one, with WWW-Authenticate: Bearer', async () => {
    const none = await call('GET', '/metrics');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(none.json.error.code).toBe('ETHHOOK_ERR_ADMIN_UNAUTHORIZED');
    const unknown = await call('GET', '/actors/health', { token: 'not-a-configured-token-000' });
    expect(unknown.status).toBe(401);
    expect(unknown.headers.get('www-authenticate')).toContain('invalid_token');
    const malformed = await call('GET', '/metrics', { headers: { authorization: `Basic ${OPERATE}` } });
    expect(malformed.status).toBe(401);
  });

  it('403 when a read token asks for an operate action; the actor is untouched', async () => {
    const echo = system.lookup('echo')!;
    const before = await echo.ask<number>('who');
    const r = await call('POST', '/admin/actors/restart', { token: READ, body: { actor: 'echo' } });
    expect(r.status).toBe(403);
    expect(r.json.error.code).toBe('ETHHOOK_ERR_ADMIN_FORBIDDEN');
    expect(await echo.ask<number>('who')).toBe(before);
  });

  it('no log line ever contains a token', () => {
    expect(rawLog.length).toBeGreaterThan(0);
    for (const line of rawLog) {
      expect(line).not.toContain(READ);
      expect(line).not.toContain(OPERATE);
    }
  });
});

describe('input validation', () => {
  // Every bad input is a 400 naming the field, never a crash.
  it('400 with the field for a missing, mistyped or unknown field', async () => {
    const missing = await call('POST', '/admin/actors/restart', { token: OPERATE, body: {} });
    expect(missing.status).toBe(400);
    expect(missing.json.error).toMatchObject({ code: 'ETHHOOK_ERR_ADMIN_INVALID_REQUEST', field: 'actor' });
    const mistyped = await call('POST', '/admin/actors/restart', { token: OPERATE, body: { actor: 42 } });
    expect(mistyped.json.error.field).toBe('actor');
    const extra = await call('POST', '/admin/actors/stop', { token: OPERATE, body: { actor: 'echo', force: true } });
    expect(extra.status).toBe(400);
    expect(extra.json.error.field).toBe('force');
    const blank = await call('POST', '/admin/actors/stop', { token: OPERATE, body: { actor: '   ' } });
    expect(blank.json.error.field).toBe('actor');
  });

  it('400 for bad JSON or an empty body, 415 for a non-JSON content type', async () => {
    const bad = await call('POST', '/admin/actors/restart', {
      token: OPERATE,
      raw: '{"actor":',
      headers: { 'content-type': 'application/json' },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('ETHHOOK_ERR_ADMIN_INVALID_REQUEST');
    const empty = await call('POST', '/admin/actors/restart', { token: OPERATE, raw: '', headers: { 'content-type': 'application/json' } });
    expect(empty.status).toBe(400);
    const form = await call('POST', '/admin/actors/restart', {
      token: OPERATE,
      raw: 'actor=echo',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(form.status).toBe(415);
    // A byte body: fetch adds no Content-Type of its own.
    const untyped = await fetch(`${base}/admin/actors/restart`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATE}` },
      body: new TextEncoder().encode('{"actor":"echo"}'),
    });
    expect(untyped.status).toBe(415);
    expect(((await untyped.json()) as { error: { message: string } }).error.message).toContain('no Content-Type');
  });

  it('a body the client abandons half-way is a client error: no 500, no error line', async () => {
    const { port } = new URL(base);
    const errorsBefore = logLines.filter((l) => (l.level as number) >= 50).length;
    const auditsBefore = logLines.filter((l) => l.code === 'ETHHOOK_ERR_ADMIN_REQUEST_ABORTED').length;
    await new Promise<void>((resolve) => {
      const req = request({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/admin/actors/restart',
        headers: { authorization: `Bearer ${OPERATE}`, 'content-type': 'application/json', 'content-length': '100' },
      });
      req.on('error', () => resolve());
      req.write('{"actor":', () => setImmediate(() => req.destroy()));
    });
    await expect.poll(() => logLines.filter((l) => l.code === 'ETHHOOK_ERR_ADMIN_REQUEST_ABORTED').length).toBeGreaterThan(auditsBefore);
    expect(logLines.filter((l) => (l.level as number) >= 50).length).toBe(errorsBefore);
  });

  it('413 for a body over admin.maxBodyBytes, declared or streamed', async () => {
    const big = await call('POST', '/admin/actors/restart', { token: OPERATE, body: { actor: 'x'.repeat(2000) } });
    expect(big.status).toBe(413);
    expect(big.json.error.code).toBe('ETHHOOK_ERR_ADMIN_BODY_TOO_LARGE');
    const { port } = new URL(base);
    const streamed = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/admin/actors/restart',
          headers: { authorization: `Bearer ${OPERATE}`, 'content-type': 'application/json' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.write(`{"actor":"${'y'.repeat(700)}`);
      req.end(`${'y'.repeat(700)}"}`);
    });
    expect(streamed).toBe(413);
  });

  it('404 with ETHHOOK_ERR_ACTOR_NOT_FOUND for an unknown actor; 404/405 for unknown routes and methods', async () => {
    const r = await call('POST', '/admin/actors/restart', { token: OPERATE, body: { actor: 'no-such-actor' } });
    expect(r.status).toBe(404);
    expect(r.json.error).toMatchObject({ code: 'ETHHOOK_ERR_ACTOR_NOT_FOUND', field: 'actor' });
    expect((await call('GET', '/nope', { token: READ })).json.error.code).toBe('ETHHOOK_ERR_ADMIN_ROUTE_NOT_FOUND');
    const wrongMethod = await call('GET', '/admin/actors/restart', { token: OPERATE });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
  });
});

describe('manual restart', () => {
  it('POST /admin/actors/restart replaces the actor and counts a manual restart', async () => {
    const echo = system.lookup('echo')!;
    const before = await echo.ask<number>('who');
    const restartsBefore = restartsOf((await call('GET', '/metrics', { token: READ })).text, '/echo', 'manual');
    const r = await call('POST', '/admin/actors/restart', { token: OPERATE, body: { actor: '/echo' } });
    expect(r.status).toBe(200);
    expect(r.json.actor).toMatchObject({ path: '/echo', state: 'running' });
    expect(await echo.ask<number>('who')).toBe(before + 1);
    const restartsAfter = restartsOf((await call('GET', '/metrics', { token: READ })).text, '/echo', 'manual');
    expect(restartsAfter).toBe(restartsBefore + 1);
  });

  it('every admin action leaves an audit line: who, action, target, outcome', async () => {
    await call('POST', '/admin/actors/restart', { token: OPERATE, body: { actor: 'echo' } });
    await call('POST', '/admin/actors/restart', { token: READ, body: { actor: 'echo' } });
    const audits = logLines.filter((l) => l.audit === true && l.action === 'actor.restart');
    const ok = audits.filter((l) => l.outcome === 'ok');
    expect(ok.at(-1)).toMatchObject({
      target: 'echo',
      status: 200,
      who: { role: 'operate', fingerprint: expect.stringMatching(/^[0-9a-f]{8}$/) },
    });
    expect(audits.filter((l) => l.outcome === 'denied').at(-1)).toMatchObject({
      status: 403,
      who: { role: 'read' },
      code: 'ETHHOOK_ERR_ADMIN_FORBIDDEN',
    });
    expect(audits.some((l) => l.outcome === 'rejected' && l.code === 'ETHHOOK_ERR_ACTOR_NOT_FOUND')).toBe(true);
  });

  it('stopping the Admin actor or root is refused with 409 naming the actor, and both keep running', async () => {
    for (const actor of ['admin', '/admin', 'root', '/']) {
      const r = await call('POST', '/admin/actors/stop', { token: OPERATE, body: { actor } });
      expect(r.status, actor).toBe(409);
      expect(r.json.error).toMatchObject({
        code: 'ETHHOOK_ERR_ADMIN_STOP_REFUSED',
        field: 'actor',
        message: expect.stringContaining('SIGTERM'),
      });
    }
    expect(
      logLines.filter((l) => l.audit === true && l.action === 'actor.stop' && l.code === 'ETHHOOK_ERR_ADMIN_STOP_REFUSED'),
    ).toHaveLength(4);
    expect(
      logLines.filter((l) => l.audit === true && l.action === 'actor.stop' && l.outcome === 'rejected' && l.status === 409),
    ).toHaveLength(4);
    expect((await call('GET', '/actors/health', { token: READ })).json.tree).toMatchObject({
      state: 'running',
      children: expect.arrayContaining([expect.objectContaining({ name: 'admin', state: 'running' })]),
    });
  });

  it('restarting the Admin actor itself is accepted with 202, audited twice with 202, and it comes back', async () => {
    const admin = system.lookup('admin')!;
    const r = await call('POST', '/admin/actors/restart', { token: OPERATE, body: { actor: 'admin' } });
    expect(r.status).toBe(202);
    expect(r.json).toEqual({ accepted: true, action: 'restart', actor: '/admin' });
    const deadline = Date.now() + 10_000;
    while (!logLines.some((l) => l.audit === true && l.target === '/admin' && l.outcome === 'ok')) {
      if (Date.now() > deadline) throw new Error('the admin restart was not audited');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const audits = logLines.filter(
      (l) => l.audit === true && l.action === 'actor.restart' && (l.target === 'admin' || l.target === '/admin'),
    );
    expect(audits.map((l) => [l.outcome, l.status])).toEqual([
      ['accepted', 202],
      ['ok', 202],
    ]);
    expect(admin).toBe(system.lookup('admin'));
    base = await adminAddress();
    expect((await call('GET', '/health')).status).toBe(200);
  });
});

describe('extension and CORS', () => {
  it('routes from other modules get params, zod-checked queries and the same auth', async () => {
    expect(await call('GET', '/v1/ping/alice?n=3', { token: READ })).toMatchObject({ status: 200, json: { pong: 'alice', n: 3 } });
    const bad = await call('GET', '/v1/ping/alice?n=-1', { token: READ });
    expect(bad.status).toBe(400);
    expect(bad.json.error.field).toBe('n');
    expect((await call('GET', '/v1/ping/alice?n=1')).status).toBe(401);
  });

  it('allowed origins get CORS headers and preflights; others get none', async () => {
    const allowed = await call('GET', '/health', { headers: { origin: 'https://ops.example' } });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://ops.example');
    const other = await call('GET', '/health', { headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await call('OPTIONS', '/admin/actors/restart', {
      headers: { origin: 'https://ops.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-methods')).toBe('POST');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization');
  });
});
