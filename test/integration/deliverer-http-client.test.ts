// The webhook HTTP client against real receivers on 127.0.0.1: outcomes for every failure mode,
// keep-alive, the global concurrency limit, bounded reads, no redirects, the SSRF connector.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebhookHttpClient, type HttpClientOptions } from '../../src/actors/deliverer/http-client.ts';
import { signPayload } from '../../src/actors/deliverer/signing.ts';
import { ok, sequence, startReceiver, type Receiver } from '../support/receiver.ts';

const secret = `whsec_${randomBytes(32).toString('base64')}`;
const dev = { allowPrivate: true };
let receiver: Receiver;
const clients: WebhookHttpClient[] = [];

function client(options: Partial<HttpClientOptions> = {}): WebhookHttpClient {
  const c = new WebhookHttpClient({ policy: dev, ...options });
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
