// The JSON-RPC clients against small real servers on 127.0.0.1: id routing, batches, subscriptions,
// timeouts, errors, closes and oversize frames, for the WebSocket client; status, size and id checks for
// the HTTP client.
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { waitFor } from '../support/kernel.ts';
import { wsText } from '../support/ws-text.ts';
import { HttpRpcClient } from '../../src/actors/chain-listener/http-rpc.ts';
import type { RpcErrorKind } from '../../src/actors/chain-listener/metrics.ts';
import { WsRpcClient } from '../../src/actors/chain-listener/ws-rpc.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Req {
  id: number;
  method: string;
  params: unknown[];
}

async function wsServer(onRequest: (ws: WebSocket, req: Req | Req[]) => void): Promise<string> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  wss.on('connection', (ws) => ws.on('message', (d) => onRequest(ws, JSON.parse(wsText(d)) as Req | Req[])));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  );
  return `ws://127.0.0.1:${(wss.address() as { port: number }).port}`;
}

async function connect(url: string, extra: Partial<{ requestTimeoutMs: number; maxFrameBytes: number }> = {}) {
  const problems: RpcErrorKind[] = [];
  const client = await WsRpcClient.connect({
    url,
    requestTimeoutMs: extra.requestTimeoutMs ?? 2_000,
    maxFrameBytes: extra.maxFrameBytes ?? 1 << 20,
    onProblem: (kind) => problems.push(kind),
  });
  cleanups.push(() => client.close());
  return { client, problems };
}

const reply = (id: number, result: unknown) => ({ jsonrpc: '2.0', id, result });

describe('WsRpcClient', () => {
  it('routes replies by id, answers batches in call order, and rejects node errors with their code', async () => {
    const url = await wsServer((ws, req) => {
      if (Array.isArray(req)) ws.send(JSON.stringify(req.map((r) => reply(r.id, r.params[0])).reverse()));
      else if (req.method === 'fail') ws.send(JSON.stringify({ jsonrpc: '2.0', id: req.id, error: { code: -32005, message: 'limit' } }));
      else setTimeout(() => ws.send(JSON.stringify(reply(req.id, req.params[0]))), req.params[0] as number);
    });
    const { client } = await connect(url);
    expect(await Promise.all([client.request('echo', [30]), client.request('echo', [1])])).toEqual([30, 1]);
    expect(await client.batch([1, 2, 3].map((n) => ({ method: 'echo', params: [n] })))).toEqual([1, 2, 3]);
    await expect(client.request('fail', [])).rejects.toMatchObject({
      code: 'ETHHOOK_ERR_RPC_ERROR',
      context: { method: 'fail', rpcCode: -32005 },
    });
  });

  it('delivers a push that arrives in the same chunk as the subscribe reply', async () => {
    const url = await wsServer((ws, req) => {
      const r = req as Req;
      const push = { jsonrpc: '2.0', method: 'eth_subscription', params: { subscription: '0x9', result: 'first' } };
      ws.send(JSON.stringify(reply(r.id, '0x9')));
      ws.send(JSON.stringify(push)); // written back to back: one TCP chunk in practice
    });
    const { client } = await connect(url);
    const pushes: unknown[] = [];
    await client.subscribe(['newHeads'], (result) => pushes.push(result));
    await new Promise((r) => setTimeout(r, 50));
    expect(pushes).toEqual(['first']);
  });

  it('acknowledges inbound frames at once with unsolicited pongs', async () => {
    let pongs = 0;
    let frames = 0;
    const url = await wsServer((ws, req) => {
      if (frames === 0) ws.on('pong', () => pongs++);
      const r = req as Req;
      for (let i = 0; i < (r.params[0] as number); i++, frames++) {
        ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'eth_subscription', params: { subscription: '0x9', result: i } }));
      }
      ws.send(JSON.stringify(reply(r.id, 'done')));
      frames++;
    });
    const { client, problems } = await connect(url);
    expect(await client.request('push', [0])).toBe('done');
    await waitFor(() => pongs === 1, 5_000, 'a pong after the reply');
    expect(await client.request('push', [20])).toBe('done');
    await waitFor(() => pongs > 1, 5_000, 'a pong after the second reply');
    expect(problems.filter((p) => p !== 'unknown-id')).toEqual([]);
  });

  it('counts garbage, unknown ids and unknown subscriptions, and keeps working', async () => {
    const url = await wsServer((ws, req) => {
      const r = req as Req;
      ws.send('}{');
      ws.send(JSON.stringify(reply(r.id + 1000, 'stray')));
      ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'eth_subscription', params: { subscription: '0xdead', result: 1 } }));
      ws.send(JSON.stringify(reply(r.id, 'ok')));
    });
    const { client, problems } = await connect(url);
    expect(await client.request('x', [])).toBe('ok');
    expect(problems).toEqual(['malformed', 'unknown-id', 'unknown-id']);
  });

  it('times a silent call out, and fails pending calls when the socket closes', async () => {
    let sockets: WebSocket[] = [];
    const url = await wsServer((ws) => void sockets.push(ws));
    const { client } = await connect(url, { requestTimeoutMs: 100 });
    await expect(client.request('slow', [])).rejects.toMatchObject({ code: 'ETHHOOK_ERR_RPC_TIMEOUT' });
    const pending = client.request('never', []);
    await new Promise((r) => setTimeout(r, 20));
    for (const s of sockets) s.terminate();
    sockets = [];
    await expect(pending).rejects.toMatchObject({ code: 'ETHHOOK_ERR_RPC_CLOSED' });
    await client.closed;
    expect(client.isOpen).toBe(false);
    await expect(client.request('after', [])).rejects.toMatchObject({ code: 'ETHHOOK_ERR_RPC_CLOSED' });
  });

  it('drops the connection on a frame above maxFrameBytes, as a malformed frame', async () => {
    const url = await wsServer((ws, req) => ws.send(JSON.stringify(reply((req as Req).id, 'x'.repeat(10_000)))));
    const { client, problems } = await connect(url, { maxFrameBytes: 2_048 });
    await expect(client.request('big', [])).rejects.toMatchObject({
      code: 'ETHHOOK_ERR_RPC_MALFORMED',
      context: { reason: 'frame-too-large' },
    });
    expect(problems).toEqual(['malformed']);
    expect(client.isOpen).toBe(false);
  });

  it('rejects a refused upgrade with ETHHOOK_ERR_RPC_CLOSED', async () => {
    const server = createServer((_q, res) => res.writeHead(403).end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as { port: number }).port;
    await expect(connect(`ws://127.0.0.1:${port}`)).rejects.toMatchObject({ code: 'ETHHOOK_ERR_RPC_CLOSED' });
  });
});

describe('HttpRpcClient', () => {
  async function httpServer(handler: (body: Req | Req[], res: import('node:http').ServerResponse) => void): Promise<string> {
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString())).on('end', () => handler(JSON.parse(body) as Req | Req[], res));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  }

  it('reads results and batches, and refuses bad statuses, rate limits (with Retry-After), oversize bodies, wrong ids and silence', async () => {
    const url = await httpServer((body, res) => {
      const first = Array.isArray(body) ? body[0]! : body;
      if (first.method === 'status') return res.writeHead(503).end('down');
      if (first.method === 'limited') return res.writeHead(429, { 'retry-after': '2' }).end('slow down');
      if (first.method === 'big') return res.end(JSON.stringify(reply(first.id, 'x'.repeat(10_000))));
      if (first.method === 'wrong-id') return res.end(JSON.stringify(reply(first.id + 7, 1)));
      if (first.method === 'silent') return;
      res.end(JSON.stringify(Array.isArray(body) ? body.map((r) => reply(r.id, r.params[0])) : reply(first.id, first.params[0])));
    });
    const client = new HttpRpcClient({ url, requestTimeoutMs: 300, maxFrameBytes: 2_048 });
    cleanups.push(() => client.close());
    expect(await client.request('echo', [5])).toBe(5);
    expect(
      await client.batch([
        { method: 'echo', params: [1] },
        { method: 'echo', params: [2] },
      ]),
    ).toEqual([1, 2]);
    await expect(client.request('status', [])).rejects.toMatchObject({ code: 'ETHHOOK_ERR_RPC_ERROR', context: { rpcCode: -503 } });
    await expect(client.request('limited', [])).rejects.toMatchObject({
      code: 'ETHHOOK_ERR_RPC_RATE_LIMITED',
      context: { retryAfterMs: 2_000 },
    });
    await expect(client.request('big', [])).rejects.toMatchObject({
      code: 'ETHHOOK_ERR_RPC_MALFORMED',
      context: { reason: 'frame-too-large' },
    });
    await expect(client.request('wrong-id', [])).rejects.toMatchObject({ code: 'ETHHOOK_ERR_RPC_MALFORMED' });
    await expect(client.request('silent', [])).rejects.toMatchObject({ code: 'ETHHOOK_ERR_RPC_TIMEOUT' });
  });

  // Hosted providers put the key in the path or the query (https://host/v3/<key>, ?apikey=...): the POST
  // goes to the URL as configured, path and query included.
  it("posts to the provider URL's path and query, as configured", async () => {
    const seen: string[] = [];
    const server: Server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      let body = '';
      req
        .on('data', (c: Buffer) => (body += c.toString()))
        .on('end', () => res.end(JSON.stringify(reply((JSON.parse(body) as Req).id, 1))));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    for (const path of ['/v3/0123abcd', '/rpc?apikey=k%20y&chain=1', '/']) {
      const client = new HttpRpcClient({ url: `${origin}${path}`, requestTimeoutMs: 2_000, maxFrameBytes: 2_048 });
      cleanups.push(() => client.close());
      expect(await client.request('eth_blockNumber', [])).toBe(1);
    }
    expect(seen).toEqual(['POST /v3/0123abcd', 'POST /rpc?apikey=k%20y&chain=1', 'POST /']);
  });
});
