// The webhook HTTP client against real receivers on 127.0.0.1: outcomes for every failure mode,
// keep-alive, the global concurrency limit, bounded reads, the total deadline, no redirects, the SSRF
// connector.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebhookHttpClient, type HttpClientOptions } from '../../src/actors/deliverer/http-client.ts';
import { signPayload } from '../../src/webhook-signing.ts';
import { ok, sequence, startReceiver, type Receiver } from '../support/receiver.ts';

const secret = `whsec_${randomBytes(32).toString('base64')}`;
const dev = { allowPrivate: true };
let receiver: Receiver;
const clients: WebhookHttpClient[] = [];

function client(options: Partial<HttpClientOptions> = {}): WebhookHttpClient {
  const c = new WebhookHttpClient({ policy: dev, concurrency: 16, ...options });
  clients.push(c);
  return c;
}

function signed(id: string, body = JSON.stringify({ type: 'log.created', id })) {
  return { headers: { ...signPayload({ id, timestamp: Math.floor(Date.now() / 1000), body, secrets: [secret] }) }, body };
}

beforeAll(async () => {
  receiver = await startReceiver({ secrets: [secret] });
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  receiver.setBehaviour(ok);
});

afterAll(async () => {
  await receiver.close();
});

/** A bare node:http server for answers the shared receiver cannot give (a dripping body, a 1xx). */
async function rawServer(listener: RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createHttpServer(listener);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/`,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('responses', () => {
  it('posts a signed webhook that the receiver verifies', async () => {
    const { headers, body } = signed('evt_ok');
    const result = await client().post(`${receiver.url}/hook?x=1`, headers, body);
    expect(result).toMatchObject({ status: 200, bodySnippet: 'ok' });
    expect(result.error).toBeUndefined();
    expect(result.durationMs).toBeGreaterThan(0);
    const got = receiver.requests.at(-1)!;
    expect(got).toMatchObject({ method: 'POST', path: '/hook?x=1', webhookId: 'evt_ok', verified: true, body });
    expect(got.headers['content-type']).toBe('application/json');
  });

  it('returns 4xx, 5xx and Retry-After without throwing', async () => {
    const c = client();
    receiver.setBehaviour(sequence([{ status: 404 }, { status: 503 }, { status: 429, headers: { 'retry-after': '7' } }]));
    const results = [];
    for (const id of ['a', 'b', 'c']) results.push(await c.post(receiver.url, signed(id).headers, signed(id).body));
    expect(results.map((r) => r.status)).toEqual([404, 503, 429]);
    expect(results[2]!.retryAfter).toBe('7');
  });

  it('does not follow redirects: a 302 comes back as 302 and the target is never asked', async () => {
    const before = receiver.count;
    receiver.setBehaviour(sequence([{ status: 302, headers: { location: `${receiver.url}/elsewhere` } }]));
    const result = await client().post(receiver.url, signed('r').headers, signed('r').body);
    expect(result.status).toBe(302);
    await new Promise((r) => setTimeout(r, 50));
    expect(receiver.count - before).toBe(1);
  });

  it('reads at most maxResponseBytes of a large body', async () => {
    receiver.setBehaviour(() => ({ status: 200, body: 'x'.repeat(1_000_000) }));
    const result = await client({ maxResponseBytes: 4_096 }).post(receiver.url, {}, '{}');
    expect(result.status).toBe(200);
    expect(result.bodySnippet).toHaveLength(4_096);
  });

  it('a body of exactly maxResponseBytes is read whole and its connection kept; one byte more closes it', async () => {
    const c = client({ concurrency: 1, maxResponseBytes: 4_096 });
    const portsOf = async (size: number) => {
      receiver.setBehaviour(() => ({ status: 200, body: 'y'.repeat(size) }));
      const before = receiver.requests.length;
      for (let i = 0; i < 3; i++) expect((await c.post(receiver.url, {}, '{}')).bodySnippet).toHaveLength(4_096);
      return new Set(receiver.requests.slice(before).map((r) => r.remotePort)).size;
    };
    expect(await portsOf(4_096)).toBe(1);
    expect(await portsOf(4_097)).toBe(3);
  });

  it('keeps exactly the first min(length, maxResponseBytes) bytes, whatever the body and its chunking', async () => {
    let reply = { body: '', chunks: 1 };
    const server = await rawServer((req, res) => {
      req.resume();
      const { body, chunks } = reply;
      const step = Math.ceil(body.length / chunks) || 1;
      res.writeHead(200, { 'content-type': 'text/plain' });
      const parts: string[] = [];
      for (let i = 0; i < body.length; i += step) parts.push(body.slice(i, i + step));
      const next = () => (parts.length === 0 ? res.end() : res.write(parts.shift(), () => setImmediate(next)));
      next();
    });
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 0, max: 12_000 }),
          fc.integer({ min: 1, max: 8 }),
          fc.integer({ min: 1, max: 5_000 }),
          async (length, chunks, max) => {
            reply = { body: Array.from({ length }, (_, i) => String.fromCharCode(97 + (i % 26))).join(''), chunks };
            const result = await client({ maxResponseBytes: max }).post(server.url, {}, '{}');
            expect(result.status).toBe(200);
            expect(result.error).toBeUndefined();
            expect(result.bodySnippet).toBe(reply.body.slice(0, max));
          },
        ),
        { numRuns: 40 },
      );
    } finally {
      await server.close();
    }
  });

  it('skips 1xx informational answers and reports the final one', async () => {
    const server = await rawServer((req, res) => {
      req.resume();
      res.writeProcessing();
      req.on('end', () => res.writeHead(201, { 'retry-after': '3' }).end('made'));
    });
    try {
      expect(await client().post(server.url, {}, '{}')).toMatchObject({ status: 201, bodySnippet: 'made', retryAfter: '3' });
    } finally {
      await server.close();
    }
  });
});

describe('the total deadline', () => {
  it('bounds a receiver dripping its body: the status is kept, the attempt is a timeout', async () => {
    const server = await rawServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-length': '1000' });
      const drip = setInterval(() => res.write('x'), 20);
      res.on('close', () => clearInterval(drip));
    });
    try {
      const result = await client({ requestTimeoutMs: 300 }).post(server.url, {}, '{}');
      expect(result).toMatchObject({ status: 200, error: { kind: 'timeout', message: 'no complete response within 300 ms' } });
      expect(result.bodySnippet.length).toBeGreaterThan(0);
      expect(result.durationMs).toBeGreaterThanOrEqual(290);
      expect(result.durationMs).toBeLessThan(3_000);
    } finally {
      await server.close();
    }
  });

  it("counts from each attempt's own start, and leaves attempts answered in time alone", async () => {
    const own = await startReceiver({
      behaviour: (req) => (req.path === '/hang' ? { hang: true } : { status: 200, body: 'ok', delayMs: 50 }),
    });
    try {
      // A deadline a loaded machine cannot miss for an answer 50 ms away.
      const c = client({ requestTimeoutMs: 1_500 });
      const first = c.post(`${own.url}/hang`, {}, '{}');
      await new Promise((r) => setTimeout(r, 500));
      const second = c.post(`${own.url}/hang`, {}, '{}');
      const quick = await Promise.all(Array.from({ length: 20 }, () => c.post(own.url, {}, '{}')));
      expect(quick.map((r) => r.error?.message ?? r.status)).toEqual(Array.from({ length: 20 }, () => 200));
      const [a, b] = await Promise.all([first, second]);
      for (const r of [a, b]) expect(r).toMatchObject({ status: null, error: { kind: 'timeout' } });
      expect(a.durationMs).toBeGreaterThanOrEqual(1_490);
      expect(b.durationMs).toBeGreaterThanOrEqual(1_490);
      expect(c.load).toEqual({ active: 0, waiting: 0 });
    } finally {
      await own.close();
    }
  });

  it('does not keep the process alive once the attempts are done', async () => {
    const clientModule = fileURLToPath(new URL('../../src/actors/deliverer/http-client.ts', import.meta.url));
    const script = `
      import { createServer } from 'node:http';
      import { WebhookHttpClient } from ${JSON.stringify(clientModule)};
      const server = createServer((req, res) => { req.resume(); req.on('end', () => res.end('ok')); });
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      const client = new WebhookHttpClient({ policy: { allowPrivate: true }, concurrency: 1, requestTimeoutMs: 60000 });
      const result = await client.post('http://127.0.0.1:' + server.address().port + '/', {}, '{}');
      process.stdout.write(String(result.status));
      await client.close();
      server.close();`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const started = Date.now();
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    try {
      const code = await new Promise((r) => child.once('exit', r));
      expect({ code, out }).toEqual({ code: 0, out: '200' });
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      clearTimeout(timer);
      child.kill('SIGKILL');
    }
  }, 30_000);
});

describe('failures', () => {
  it('a receiver that never answers is a timeout (headers timeout)', async () => {
    receiver.setBehaviour(() => ({ hang: true }));
    const result = await client({ headersTimeoutMs: 200 }).post(receiver.url, {}, '{}');
    expect(result).toMatchObject({ status: null, error: { kind: 'timeout' } });
    expect(result.error!.message).toContain('UND_ERR_HEADERS_TIMEOUT');
    expect(result.durationMs).toBeLessThan(5_000);
  });

  it('the total deadline bounds an attempt even when the phase timeouts are long', async () => {
    receiver.setBehaviour(() => ({ hang: true }));
    const result = await client({ requestTimeoutMs: 200 }).post(receiver.url, {}, '{}');
    expect(result).toMatchObject({ status: null, error: { kind: 'timeout', message: 'no complete response within 200 ms' } });
  });

  it('a reset connection and a closed port are network errors', async () => {
    receiver.setBehaviour(() => ({ destroy: true }));
    expect(await client().post(receiver.url, {}, '{}')).toMatchObject({ status: null, error: { kind: 'network' } });

    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const refused = await client().post(`http://127.0.0.1:${port}/`, {}, '{}');
    expect(refused).toMatchObject({ status: null, error: { kind: 'network' } });
    expect(refused.error!.message).toContain('ECONNREFUSED');
  });

  it('a private target under a strict policy is refused before any byte is sent', async () => {
    const before = receiver.count;
    const result = await client({ policy: { allowPrivate: false } }).post(receiver.url, {}, '{}');
    expect(result).toMatchObject({ status: null, error: { kind: 'refused', message: '127.0.0.1 is loopback (127.0.0.0/8)' } });
    expect(receiver.count).toBe(before);
  });

  it('a URL that does not parse is an outcome too, not a throw', async () => {
    expect(await client().post('not a url', {}, '{}')).toMatchObject({ status: null, error: { kind: 'network' } });
  });

  it('a DNS failure is a network error (retryable), not a refusal', async () => {
    const lookup = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
    };
    const result = await client({ policy: { allowPrivate: false, lookup } }).post('http://hooks.invalid/', {}, '{}');
    expect(result).toMatchObject({ status: null, error: { kind: 'network' } });
    expect(result.error!.message).toContain('ENOTFOUND');
  });
});

describe('connections', () => {
  it('keeps connections alive across sequential attempts', async () => {
    const c = client();
    const before = receiver.requests.length;
    for (let i = 0; i < 20; i++) expect((await c.post(receiver.url, {}, '{}')).status).toBe(200);
    // The next attempt may start before undici has put the previous socket back, so two may alternate.
    const ports = new Set(receiver.requests.slice(before).map((r) => r.remotePort));
    expect(ports.size).toBeLessThanOrEqual(2);
  });

  it('never runs more than `concurrency` attempts at once, across origins', async () => {
    const other = await startReceiver({ behaviour: () => ({ status: 200, delayMs: 30 }) });
    try {
      receiver.setBehaviour(() => ({ status: 200, delayMs: 30 }));
      const c = client({ concurrency: 4 });
      let maxActive = 0;
      const posts = Array.from({ length: 40 }, (_, i) => {
        const p = c.post(i % 2 ? receiver.url : other.url, {}, '{}');
        maxActive = Math.max(maxActive, c.load.active);
        return p;
      });
      const results = await Promise.all(posts);
      expect(results.every((r) => r.status === 200)).toBe(true);
      expect(maxActive).toBeLessThanOrEqual(4);
      expect(receiver.maxInFlight + other.maxInFlight).toBeLessThanOrEqual(8);
      expect(Math.max(receiver.maxInFlight, other.maxInFlight)).toBeLessThanOrEqual(4);
      expect(c.load).toEqual({ active: 0, waiting: 0 });
    } finally {
      await other.close();
    }
  });
});
