// The pinned connector against a real server on 127.0.0.1: it connects to the address it checked, and a
// DNS answer that changes after checkTarget (rebinding) cannot reach a private address.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkTarget, pinnedConnector, type LookupAll } from '../../src/target-policy/ssrf.ts';

let server: Server;
let port: number;
const seen: IncomingHttpHeaders[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req.headers);
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function post(agent: Agent, url: string) {
  try {
    const res = await request(url, { method: 'POST', body: '{}', dispatcher: agent });
    return { status: res.statusCode, text: await res.body.text() };
  } finally {
    await agent.close();
  }
}

describe('pinnedConnector', () => {
  it('connects to the address the lookup gave, keeping the URL host in the Host header', async () => {
    const lookup: LookupAll = async (host) => (host === 'hook.test' ? [{ address: '127.0.0.1', family: 4 }] : []);
    const agent = new Agent({ connect: pinnedConnector({ allowPrivate: true, lookup }) });
    const before = seen.length;
    expect(await post(agent, `http://hook.test:${port}/in`)).toEqual({ status: 200, text: 'ok' });
    expect(seen.slice(before).map((h) => h.host)).toEqual([`hook.test:${port}`]);
  });

  it('refuses a literal loopback target without connecting', async () => {
    const agent = new Agent({ connect: pinnedConnector({ allowPrivate: false }) });
    const before = seen.length;
    await expect(post(agent, `http://127.0.0.1:${port}/`)).rejects.toMatchObject({
      code: 'ETHHOOK_ERR_TARGET_REFUSED',
      context: { host: '127.0.0.1', kind: 'address' },
    });
    expect(seen.length).toBe(before);
  });

  it('a rebinding DNS answer after the check is caught at connect time', async () => {
    let calls = 0;
    const rebinding: LookupAll = async () => [{ address: calls++ === 0 ? '93.184.216.34' : '127.0.0.1', family: 4 }];
    const policy = { allowPrivate: false, lookup: rebinding };
    expect(await checkTarget(`http://rebind.test:${port}/`, policy)).toMatchObject({ ok: true, address: '93.184.216.34' });

    const agent = new Agent({ connect: pinnedConnector(policy) });
    const before = seen.length;
    await expect(post(agent, `http://rebind.test:${port}/`)).rejects.toMatchObject({
      code: 'ETHHOOK_ERR_TARGET_REFUSED',
      message: 'rebind.test: 127.0.0.1 is loopback (127.0.0.0/8)',
    });
    expect(calls).toBe(2);
    expect(seen.length).toBe(before);
  });

  it('a lookup that never answers fails within the connect timeout', async () => {
    const hanging: LookupAll = () => new Promise(() => {});
    const agent = new Agent({ connect: pinnedConnector({ allowPrivate: true, lookup: hanging }, { timeout: 200 }) });
    const started = Date.now();
    await expect(post(agent, `http://slow-dns.test:${port}/`)).rejects.toMatchObject({ code: 'ETIMEOUT' });
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
