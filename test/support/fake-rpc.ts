/**
 * A hostile JSON-RPC WebSocket server on 127.0.0.1 for tests. In mode `behave` it relays every request
 * to a real node over HTTP (`upstreamHttpUrl`) and pushes `newHeads` from its own polling of that node.
 * Other modes misbehave on every request (and push):
 *
 * - `garbage`: frames that are not JSON-RPC (broken JSON, scalars, binary, wrong version);
 * - `wrong-ids`: well-formed replies to ids nobody asked for, pushes for unknown subscriptions;
 * - `huge`: a frame of `hugeBytes` bytes;
 * - `errors`: JSON-RPC errors (-32000) for every call;
 * - `bad-results`: replies whose results have the wrong shape (a block with a non-hex number);
 * - `silent`: no answer at all.
 *
 * `maxLogsPerRange` makes it refuse, in every mode, an `eth_getLogs` over a block range whose answer
 * would hold more logs, with the error Infura and Alchemy give (-32005, "query returned more than ...").
 */
import { createServer } from 'node:http';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { wsText } from './ws-text.ts';

export type FakeRpcMode = 'behave' | 'garbage' | 'wrong-ids' | 'huge' | 'errors' | 'bad-results' | 'silent';

export interface FakeRpc {
  wsUrl: string;
  mode: FakeRpcMode;
  /** Requests received, by method. */
  readonly calls: Map<string, number>;
  stop(): Promise<void>;
}

interface Request {
  id: unknown;
  method: string;
  params: unknown[];
}

const GARBAGE = [
  '}{ not json',
  'null',
  '42',
  '"text"',
  '[]',
  '{"jsonrpc":"1.0","id":1,"result":1}',
  '{"jsonrpc":"2.0"}',
  '{"jsonrpc":"2.0","method":"eth_subscription","params":{}}',
];

export async function startFakeRpc(opts: {
  upstreamHttpUrl: string;
  hugeBytes?: number;
  headPollMs?: number;
  maxLogsPerRange?: number;
}): Promise<FakeRpc> {
  const http = createServer((_req, res) => res.writeHead(426).end());
  const wss = new WebSocketServer({ server: http });
  const subscribers = new Map<WebSocket, string>();
  const calls = new Map<string, number>();
  let n = 0;
  const state = { mode: 'behave' as FakeRpcMode };

  const upstream = async (body: unknown): Promise<unknown> => {
    const res = await fetch(opts.upstreamHttpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return res.json();
  };

  const misbehave = (ws: WebSocket, req: Request): boolean => {
    const send = (v: unknown) => ws.send(typeof v === 'string' ? v : JSON.stringify(v));
    switch (state.mode) {
      case 'behave':
        return false;
      case 'silent':
        return true;
      case 'garbage':
        if (n % 5 === 0) ws.send(Buffer.from([0xff, 0x00, 0x13]), { binary: true });
        else send(GARBAGE[n % GARBAGE.length]!);
        return true;
      case 'wrong-ids':
        send({ jsonrpc: '2.0', id: typeof req.id === 'number' ? req.id + 1_000_000 : 'nope', result: '0x1' });
        return true;
      case 'huge':
        send({ jsonrpc: '2.0', id: req.id, result: `0x${'ab'.repeat(opts.hugeBytes ?? 1 << 20)}` });
        return true;
      case 'errors':
        send({ jsonrpc: '2.0', id: req.id, error: { code: -32000, message: 'internal error' } });
        return true;
      case 'bad-results':
        send({ jsonrpc: '2.0', id: req.id, result: req.method === 'eth_getLogs' ? [{ address: 'nope' }] : { number: 'zz', hash: 1 } });
        return true;
    }
  };

  const answer = async (ws: WebSocket, data: RawData): Promise<void> => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(wsText(data));
    } catch {
      return;
    }
    const batch = Array.isArray(parsed);
    const reqs = (batch ? parsed : [parsed]) as Request[];
    for (const r of reqs) calls.set(r.method, (calls.get(r.method) ?? 0) + 1);
    n++;
    if (misbehave(ws, reqs[0]!)) return;
    if (reqs.length === 1 && reqs[0]!.method === 'eth_subscribe') {
      const id = `0x${(n + 0xabc).toString(16)}`;
      subscribers.set(ws, id);
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: reqs[0]!.id, result: id }));
      return;
    }
    try {
      const reply = (await upstream(batch ? reqs : reqs[0])) as { id: unknown; result?: unknown };
      const req = reqs[0]!;
      const rangeQuery = req.method === 'eth_getLogs' && !(req.params[0] as { blockHash?: string }).blockHash;
      if (!batch && rangeQuery && Array.isArray(reply.result) && reply.result.length > (opts.maxLogsPerRange ?? Infinity)) {
        const error = { code: -32005, message: `query returned more than ${opts.maxLogsPerRange} results` };
        ws.send(JSON.stringify({ jsonrpc: '2.0', id: req.id, error }));
        return;
      }
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(reply));
    } catch {
      ws.terminate();
    }
  };

  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    // A request the fake cannot answer ends the connection, as an upstream failure does.
    ws.on('message', (data) => {
      answer(ws, data).catch(() => ws.terminate());
    });
    ws.on('close', () => subscribers.delete(ws));
  });

  let lastHead: string | null = null;
  const pushHead = async (): Promise<void> => {
    try {
      const reply = (await upstream({ jsonrpc: '2.0', id: 1, method: 'eth_getBlockByNumber', params: ['latest', false] })) as {
        result: { hash: string };
      };
      if (reply.result.hash === lastHead) return;
      lastHead = reply.result.hash;
      for (const [ws, sub] of subscribers) {
        if (state.mode === 'silent' || ws.readyState !== ws.OPEN) continue;
        const subscription = state.mode === 'wrong-ids' ? '0xdead' : sub;
        const result = state.mode === 'bad-results' ? { number: 'zz' } : reply.result;
        ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'eth_subscription', params: { subscription, result } }));
      }
    } catch {
      // upstream briefly unavailable: next poll
    }
  };
  const poll = setInterval(() => void pushHead(), opts.headPollMs ?? 100);

  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const address = http.address() as { port: number };
  return {
    wsUrl: `ws://127.0.0.1:${address.port}`,
    get mode() {
      return state.mode;
    },
    set mode(m: FakeRpcMode) {
      state.mode = m;
    },
    calls,
    stop: async () => {
      clearInterval(poll);
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
