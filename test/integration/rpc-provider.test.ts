// The misbehaving JSON-RPC provider of test/support/rpc-provider.ts, in front of a real anvil: it relays
// single and batch requests over HTTP and WebSocket, pushes every head in order, each fault has its
// described effect, and setting `fault = 'none'` makes it honest again. Negative claims about pushes ("no
// head pushed while stalled") are checked against an honest sibling provider on the same anvil: once the
// sibling pushed a head, the faulty one had the same chance to.
import { createHash } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { tickCalldata } from '../../src/dev-chain/contract.ts';
import { deployTickContract, devAccount, sendTicks, waitForReceipt } from '../../src/dev-chain/tick-contract.ts';
import { startAnvil, type TestAnvil } from '../support/anvil.ts';
import { forkedHash, startRpcProvider, type RpcProvider } from '../support/rpc-provider.ts';
import { wsText } from '../support/ws-text.ts';

interface Block {
  number: string;
  hash: string;
  parentHash: string;
  logsBloom: string;
}
interface Log {
  blockNumber: string;
  blockHash: string;
  logIndex: string;
}
interface RpcError {
  code: number;
  message: string;
}
interface Reply {
  jsonrpc?: string;
  id?: unknown;
  result?: unknown;
  error?: RpcError;
}

let anvil: TestAnvil;
let from: string;
let contract: string;
const rpc = (m: string, p: unknown[]) => anvil.rpc(m, p);
const hex = (n: number) => `0x${n.toString(16)}`;
const num = (q: string) => Number.parseInt(q, 16);
const anvilHead = async () => num(await anvil.rpc<string>('eth_blockNumber'));
const anvilBlock = (n: number) => anvil.rpc<Block>('eth_getBlockByNumber', [hex(n), false]);
const anvilLogs = (filter: Record<string, unknown>) => anvil.rpc<Log[]>('eth_getLogs', [filter]);
/** One block (automine) whose transaction emits `n` Tick logs; resolves with its number. */
const tick = async (n: number): Promise<number> => num((await waitForReceipt(rpc, await sendTicks(rpc, from, contract, n))).blockNumber);

async function waitFor(cond: () => boolean | Promise<boolean>, what: string | (() => string), timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// --- clients ----------------------------------------------------------------------------------------

let nextId = 0;

async function post(
  url: string,
  body: unknown,
  init: { signal?: AbortSignal } = {},
): Promise<{ status: number; retryAfter: string | null; json: unknown }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), json: await res.json() };
}
const call = async (url: string, method: string, params: unknown[] = []): Promise<Reply> =>
  (await post(url, { jsonrpc: '2.0', id: ++nextId, method, params })).json as Reply;
async function result<T>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const reply = await call(url, method, params);
  if (reply.error) throw new Error(`${method}: ${reply.error.code} ${reply.error.message}`);
  return reply.result as T;
}

const opened: { stop(): Promise<void> }[] = [];

class WsClient {
  readonly heads: Block[] = [];
  closed = false;
  private readonly waiting = new Map<unknown, (frame: unknown) => void>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      let frame: unknown;
      try {
        frame = JSON.parse(wsText(data));
      } catch {
        return;
      }
      const first = (Array.isArray(frame) ? frame[0] : frame) as Reply & { method?: string; params?: { result: Block } };
      if (first?.method === 'eth_subscription' && first.params) this.heads.push(first.params.result);
      else this.waiting.get(first?.id ?? null)?.(frame);
    });
    ws.on('close', () => {
      this.closed = true;
    });
  }

  static open(url: string): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const client = new WsClient(ws);
      opened.push({ stop: async () => ws.terminate() });
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
      ws.once('close', () => reject(new Error('closed before open')));
    });
  }

  get numbers(): number[] {
    return this.heads.map((h) => num(h.number));
  }

  /** Sends `payload` (text as is, or JSON) and resolves with the frame answering `key` (an id, or the first id of a batch). */
  send(payload: unknown, key: unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to ${JSON.stringify(key)}`)), 10_000);
      this.waiting.set(key, (frame) => {
        clearTimeout(timer);
        this.waiting.delete(key);
        resolve(frame);
      });
      this.ws.send(typeof payload === 'string' ? payload : JSON.stringify(payload));
    });
  }

  async call(method: string, params: unknown[] = []): Promise<Reply> {
    const id = ++nextId;
    return (await this.send({ jsonrpc: '2.0', id, method, params }, id)) as Reply;
  }

  async subscribeHeads(): Promise<string> {
    const reply = await this.call('eth_subscribe', ['newHeads']);
    expect(reply.result).toMatch(/^0x[0-9a-f]+$/);
    return reply.result as string;
  }
}

async function provider(name: string): Promise<RpcProvider> {
  const p = await startRpcProvider({ name, anvilHttpUrl: anvil.httpUrl });
  opened.push(p);
  return p;
}

/** A provider with a newHeads subscriber. */
async function subscribed(name: string): Promise<{ p: RpcProvider; sub: WsClient }> {
  const p = await provider(name);
  const sub = await WsClient.open(p.wsUrl);
  await sub.subscribeHeads();
  return { p, sub };
}

/** Heads follow each other: numbers +1, each parentHash the previous hash. */
function expectChain(heads: readonly Block[]): void {
  for (let i = 1; i < heads.length; i++) {
    expect(num(heads[i]!.number)).toBe(num(heads[i - 1]!.number) + 1);
    expect(heads[i]!.parentHash).toBe(heads[i - 1]!.hash);
  }
}

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

beforeAll(async () => {
  anvil = await startAnvil();
  from = await devAccount(rpc);
  contract = await deployTickContract(rpc, from);
  await anvil.mine(10); // room below the head for 'lag'
});
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.stop();
});
afterAll(async () => {
  await anvil?.stop();
});

describe('rpc provider, honest', () => {
  it('relays single and batch requests over HTTP and WebSocket (ids kept, calls counted), answers malformed input and keeps working', async () => {
    const p = await provider('honest');
    const head = await anvilHead();
    expect(p.httpUrl).toBe(p.wsUrl.replace('ws://', 'http://'));
    expect(await result(p.httpUrl, 'eth_chainId')).toBe('0x7a69');
    expect(num(await result<string>(p.httpUrl, 'eth_blockNumber'))).toBe(head);

    const batch = [
      { jsonrpc: '2.0', id: 'a', method: 'eth_chainId', params: [] },
      { jsonrpc: '2.0', id: 7, method: 'eth_blockNumber', params: [] },
      { jsonrpc: '2.0', id: 8, method: 'eth_getBlockByNumber', params: [hex(head), false] },
    ];
    const overHttp = (await post(p.httpUrl, batch)).json as Reply[];
    expect(overHttp.map((r) => r.id)).toEqual(['a', 7, 8]);
    expect(overHttp[2]!.result).toEqual(await anvilBlock(head));
    const ws = await WsClient.open(p.wsUrl);
    const overWs = (await ws.send(batch, 'a')) as Reply[];
    expect(overWs).toEqual(overHttp);
    expect(p.calls.get('eth_chainId')).toBe(3);
    expect(p.calls.get('eth_getBlockByNumber')).toBe(2);

    // Faults apply item by item within a batch.
    p.lagBlocks = 2;
    p.fault = 'lag';
    const lagged = (await post(p.httpUrl, batch)).json as Reply[];
    expect(lagged.map((r) => r.result)).toEqual(['0x7a69', hex(head - 2), null]);
    p.fault = 'none';

    // Malformed input: JSON-RPC errors, never a crash.
    expect(((await post(p.httpUrl, '}{ not json')).json as Reply).error?.code).toBe(-32700);
    expect(((await post(p.httpUrl, [])).json as Reply).error?.code).toBe(-32600);
    const invalid = (await post(p.httpUrl, [1, { id: 9 }, { jsonrpc: '2.0', id: 10, method: 'eth_chainId' }])).json as Reply[];
    expect(invalid.map((r) => [r.id, r.error?.code ?? r.result])).toEqual([
      [null, -32600],
      [9, -32600],
      [10, '0x7a69'],
    ]);
    expect(((await ws.send('not json', null)) as Reply).error?.code).toBe(-32700);
    expect((await fetch(p.httpUrl)).status).toBe(405);
    expect((await ws.call('eth_subscribe', ['logs', {}])).error?.code).toBe(-32602);
    expect((await call(p.httpUrl, 'eth_subscribe', ['newHeads'])).error?.code).toBe(-32601);
    expect(await ws.call('eth_chainId')).toMatchObject({ result: '0x7a69' });
  });

  it('pushes every head in order, as anvil answers it, when 5 blocks are mined at once', async () => {
    const { p, sub } = await subscribed('heads');
    const head = await anvilHead();
    await anvil.mine(5);
    await waitFor(
      () => sub.numbers.includes(head + 5),
      () => `head ${head + 5}, got ${sub.numbers.join(',')}`,
    );
    expect(sub.numbers).toEqual(range(head + 1, head + 5));
    for (const h of sub.heads) expect(h).toEqual(await anvilBlock(num(h.number)));
    expectChain(sub.heads);
    expect((await sub.call('eth_unsubscribe', ['0x1'])).result).toBe(true);
    expect(p.calls.get('eth_subscribe')).toBe(1);
  });

  it('pushes the new branch from the common ancestor when anvil reorgs under the heads it pushed', async () => {
    const { sub } = await subscribed('reorged');
    await tick(1);
    await tick(1);
    const h = await tick(1);
    await waitFor(() => sub.numbers.includes(h), `head ${h}`);
    const orphaned = sub.heads.at(-1)!;
    await anvil.rpc('anvil_reorg', [2, [[{ from, to: contract, data: tickCalldata(1) }, 0]]]);
    const replaced = await anvilBlock(h);
    expect(replaced.hash).not.toBe(orphaned.hash);
    await waitFor(() => sub.heads.some((b) => b.hash === replaced.hash), `the new head ${h}`);
    const branch = sub.heads.slice(sub.heads.indexOf(orphaned) + 1);
    expect(branch).toEqual([await anvilBlock(h - 1), replaced]);
    expect(branch[0]!.parentHash).toBe((await anvilBlock(h - 2)).hash);
  });
});

describe('rpc provider faults', () => {
  it("'stall': frozen head (newHeads, latest, eth_blockNumber, blocks above null, logs clamped, unknown block); 'none' resumes pushing from the frozen head", async () => {
    const { p, sub } = await subscribed('stalled');
    const { sub: witness } = await subscribed('witness');
    const frozen = await tick(1);
    await waitFor(() => sub.numbers.includes(frozen), `head ${frozen}`);
    p.fault = 'stall';
    await tick(1);
    await tick(1);
    const head = await tick(1);
    expect(head).toBe(frozen + 3);

    expect(num(await result<string>(p.httpUrl, 'eth_blockNumber'))).toBe(frozen);
    expect(await result(p.httpUrl, 'eth_getBlockByNumber', ['latest', false])).toEqual(await anvilBlock(frozen));
    expect(await result(p.httpUrl, 'eth_getBlockByNumber', [hex(frozen + 1), false])).toBeNull();
    expect(await result(p.httpUrl, 'eth_getBlockByHash', [(await anvilBlock(frozen + 1)).hash, false])).toBeNull();
    expect(await result(p.httpUrl, 'eth_getLogs', [{ fromBlock: hex(frozen), toBlock: hex(head) }])).toEqual(
      await anvilLogs({ fromBlock: hex(frozen), toBlock: hex(frozen) }),
    );
    expect(await result(p.httpUrl, 'eth_getLogs', [{ fromBlock: hex(frozen + 1), toBlock: 'latest' }])).toEqual([]);
    expect((await call(p.httpUrl, 'eth_getLogs', [{ blockHash: (await anvilBlock(frozen + 2)).hash }])).error).toEqual({
      code: -32000,
      message: 'unknown block',
    });
    expect((await sub.call('eth_blockNumber')).result).toBe(hex(frozen));
    await waitFor(() => witness.numbers.includes(head), `the witness's head ${head}`);
    expect(Math.max(...sub.numbers)).toBe(frozen);

    p.fault = 'none';
    await waitFor(() => sub.numbers.includes(head), `head ${head} after the stall`);
    expect(sub.numbers.slice(-4)).toEqual(range(frozen, head));
    expectChain(sub.heads);
    expect(num(await result<string>(p.httpUrl, 'eth_blockNumber'))).toBe(head);
    expect(await result(p.httpUrl, 'eth_getBlockByNumber', [hex(frozen + 1), false])).toEqual(await anvilBlock(frozen + 1));
    expect(await result(p.httpUrl, 'eth_getLogs', [{ blockHash: (await anvilBlock(frozen + 2)).hash }])).toHaveLength(1);
  });

  it("'lag': its head lagBlocks below anvil's (newHeads, latest, blocks above null, logs clamped, unknown block); 'none' catches up", async () => {
    const { p, sub } = await subscribed('lagging');
    const { sub: witness } = await subscribed('witness');
    const start = await tick(1);
    await waitFor(() => sub.numbers.includes(start), `head ${start}`);
    p.lagBlocks = 3;
    p.fault = 'lag';
    expect(num(await result<string>(p.httpUrl, 'eth_blockNumber'))).toBe(start - 3);
    expect(await result(p.httpUrl, 'eth_getBlockByNumber', [hex(start), false])).toBeNull();
    for (let i = 0; i < 4; i++) await tick(1);
    const head = start + 4;
    const visible = head - 3;
    expect(await anvilHead()).toBe(head);

    expect(num(await result<string>(p.httpUrl, 'eth_blockNumber'))).toBe(visible);
    expect((await sub.call('eth_blockNumber')).result).toBe(hex(visible));
    expect(await result(p.httpUrl, 'eth_getBlockByNumber', ['latest', false])).toEqual(await anvilBlock(visible));
    expect(await result(p.httpUrl, 'eth_getBlockByNumber', [hex(visible), false])).toEqual(await anvilBlock(visible));
    expect(await result(p.httpUrl, 'eth_getBlockByNumber', [hex(visible + 1), false])).toBeNull();
    expect(await result(p.httpUrl, 'eth_getBlockByHash', [(await anvilBlock(head)).hash, false])).toBeNull();
    const logs = await result<Log[]>(p.httpUrl, 'eth_getLogs', [{ fromBlock: hex(start), toBlock: hex(head) }]);
    expect(logs).toEqual(await anvilLogs({ fromBlock: hex(start), toBlock: hex(visible) }));
    expect(logs).toHaveLength(2);
    expect(await result(p.httpUrl, 'eth_getLogs', [{ blockHash: (await anvilBlock(visible)).hash }])).toHaveLength(1);
    expect((await call(p.httpUrl, 'eth_getLogs', [{ blockHash: (await anvilBlock(visible + 1)).hash }])).error?.code).toBe(-32000);

    await waitFor(() => sub.numbers.includes(visible), `the lagging head ${visible}`);
    await waitFor(() => witness.numbers.includes(head), `the witness's head ${head}`);
    expect(Math.max(...sub.numbers)).toBe(visible);

    p.fault = 'none';
    await waitFor(() => sub.numbers.includes(head), `head ${head} after the lag`);
    expect(sub.numbers).toEqual(range(start, head));
    expectChain(sub.heads);
    expect(num(await result<string>(p.httpUrl, 'eth_blockNumber'))).toBe(head);
    expect(await result(p.httpUrl, 'eth_getLogs', [{ fromBlock: hex(start), toBlock: hex(head) }])).toHaveLength(5);
  });

  it("'cut': open HTTP keep-alive and WebSocket connections dropped, new ones refused; 'none' accepts them again", async () => {
    const { p, sub } = await subscribed('cut');
    // An HTTP keep-alive connection, idle in the agent's pool after one request.
    const agent = new Agent({ keepAlive: true });
    opened.push({ stop: async () => agent.destroy() });
    const keepAlive = await new Promise<Socket>((resolve, reject) => {
      const req = httpRequest(p.httpUrl, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(req.socket!));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }));
    });
    let keepAliveClosed = false;
    keepAlive.on('close', () => {
      keepAliveClosed = true;
    });
    expect(keepAlive.destroyed).toBe(false);

    p.fault = 'cut';
    await waitFor(() => sub.closed && keepAliveClosed, 'both connections closed');
    await expect(call(p.httpUrl, 'eth_chainId')).rejects.toThrow();
    await expect(WsClient.open(p.wsUrl)).rejects.toThrow();

    p.fault = 'none';
    expect(await result(p.httpUrl, 'eth_chainId')).toBe('0x7a69');
    const again = await WsClient.open(p.wsUrl);
    await again.subscribeHeads();
    const head = await tick(1);
    await waitFor(() => again.numbers.includes(head), `head ${head} on a new connection`);
  });

  it("'rate-limit': HTTP 429 with retry-after 0, WebSocket -32005 per item; behaves again after rateLimitCount answers, or on 'none'", async () => {
    const p = await provider('limited');
    const ws = await WsClient.open(p.wsUrl);
    p.fault = 'rate-limit';
    const limited = await post(p.httpUrl, { jsonrpc: '2.0', id: 1, method: 'eth_blockNumber', params: [] });
    expect(limited.status).toBe(429);
    expect(limited.retryAfter).toBe('0');
    const error = { code: -32005, message: 'rate limit exceeded: too many requests' };
    expect(limited.json).toEqual({ jsonrpc: '2.0', id: 1, error });
    expect(await ws.call('eth_blockNumber')).toMatchObject({ error });
    const batch = (await ws.send(
      [
        { jsonrpc: '2.0', id: 'x', method: 'eth_chainId', params: [] },
        { jsonrpc: '2.0', id: 'y', method: 'eth_blockNumber', params: [] },
      ],
      'x',
    )) as Reply[];
    expect(batch).toEqual([
      { jsonrpc: '2.0', id: 'x', error },
      { jsonrpc: '2.0', id: 'y', error },
    ]);
    expect(p.rateLimited).toBe(3);
    expect(p.fault).toBe('rate-limit');

    p.fault = 'none';
    const ok = await post(p.httpUrl, { jsonrpc: '2.0', id: 2, method: 'eth_chainId', params: [] });
    expect([ok.status, (ok.json as Reply).result]).toEqual([200, '0x7a69']);
    expect((await ws.call('eth_chainId')).result).toBe('0x7a69');

    p.rateLimitCount = 2;
    p.fault = 'rate-limit';
    expect((await post(p.httpUrl, { jsonrpc: '2.0', id: 3, method: 'eth_chainId', params: [] })).status).toBe(429);
    expect((await ws.call('eth_chainId')).error?.code).toBe(-32005);
    expect(p.fault).toBe('none');
    expect((await post(p.httpUrl, { jsonrpc: '2.0', id: 4, method: 'eth_chainId', params: [] })).status).toBe(200);
    expect((await ws.call('eth_chainId')).result).toBe('0x7a69');
    expect(p.rateLimited).toBe(5);
  });

  it("'slow': every answer delayed by delayMs over HTTP and WebSocket; 'none' answers at once", async () => {
    const p = await provider('slow');
    const ws = await WsClient.open(p.wsUrl);
    const timed = async (f: () => Promise<unknown>) => {
      const t0 = performance.now();
      const r = await f();
      return { ms: performance.now() - t0, r };
    };
    p.delayMs = 500;
    p.fault = 'slow';
    const overHttp = await timed(() => result(p.httpUrl, 'eth_chainId'));
    const overWs = await timed(() => ws.call('eth_chainId'));
    expect(overHttp.r).toBe('0x7a69');
    expect((overWs.r as Reply).result).toBe('0x7a69');
    expect(overHttp.ms).toBeGreaterThanOrEqual(495);
    expect(overWs.ms).toBeGreaterThanOrEqual(495);

    p.fault = 'none';
    const honestHttp = await timed(() => result(p.httpUrl, 'eth_chainId'));
    const honestWs = await timed(() => ws.call('eth_chainId'));
    expect(honestHttp.ms).toBeLessThan(500);
    expect(honestWs.ms).toBeLessThan(500);
  });

  it("'silent': requests accepted and never answered, nothing pushed; 'none' answers new requests and pushes the held-back heads", async () => {
    const { p, sub } = await subscribed('silent');
    const { sub: witness } = await subscribed('witness');
    const start = await anvilHead();
    p.fault = 'silent';
    let wsAnswered = false;
    void sub.call('eth_blockNumber').then(
      () => (wsAnswered = true),
      () => {},
    );
    let httpAnswered = false;
    const abort = new AbortController();
    void post(p.httpUrl, { jsonrpc: '2.0', id: 1, method: 'eth_blockNumber', params: [] }, { signal: abort.signal }).then(
      () => (httpAnswered = true),
      () => {},
    );
    opened.push({ stop: async () => abort.abort() });
    await waitFor(() => p.calls.get('eth_blockNumber') === 2, 'both requests received');
    const head = await tick(1);
    await waitFor(() => witness.numbers.includes(head), `the witness's head ${head}`);
    expect(sub.heads).toEqual([]);

    p.fault = 'none';
    expect((await sub.call('eth_chainId')).result).toBe('0x7a69');
    expect(await result(p.httpUrl, 'eth_chainId')).toBe('0x7a69');
    expect(wsAnswered).toBe(false);
    expect(httpAnswered).toBe(false);
    await waitFor(() => sub.numbers.includes(head), `held-back head ${head}`);
    expect(sub.numbers).toEqual(range(start + 1, head));
  });

  it("'empty-logs': eth_getLogs answers [] by hash and by range while blocks stay honest (logsBloom); 'none' answers the logs", async () => {
    const p = await provider('empty');
    const n = await tick(3);
    const block = await anvilBlock(n);
    expect(block.logsBloom).not.toMatch(/^0x0+$/);
    const canonical = await anvilLogs({ blockHash: block.hash });
    expect(canonical).toHaveLength(3);

    p.fault = 'empty-logs';
    expect(await result(p.httpUrl, 'eth_getLogs', [{ blockHash: block.hash }])).toEqual([]);
    expect(await result(p.httpUrl, 'eth_getLogs', [{ fromBlock: hex(n), toBlock: hex(n) }])).toEqual([]);
    expect(await result(p.httpUrl, 'eth_getBlockByHash', [block.hash, false])).toEqual(block);
    expect(await result(p.httpUrl, 'eth_getBlockByNumber', [hex(n), false])).toEqual(block);

    p.fault = 'none';
    expect(await result(p.httpUrl, 'eth_getLogs', [{ blockHash: block.hash }])).toEqual(canonical);
    expect(await result(p.httpUrl, 'eth_getLogs', [{ fromBlock: hex(n), toBlock: hex(n) }])).toEqual(canonical);
  });

  it("'foreign-logs': eth_getLogs by blockHash answers logs carrying another block's hash; 'none' answers them as they are", async () => {
    const p = await provider('foreign');
    const n = await tick(2);
    const block = await anvilBlock(n);
    const canonical = await anvilLogs({ blockHash: block.hash });
    expect(canonical).toHaveLength(2);

    p.fault = 'foreign-logs';
    const foreign = await result<Log[]>(p.httpUrl, 'eth_getLogs', [{ blockHash: block.hash }]);
    expect(foreign).toHaveLength(2);
    for (const l of foreign) expect(l.blockHash).toBe(block.parentHash);
    expect(foreign).toEqual(canonical.map((l) => ({ ...l, blockHash: block.parentHash })));
    expect(await result(p.httpUrl, 'eth_getLogs', [{ fromBlock: hex(n), toBlock: hex(n) }])).toEqual(canonical);

    p.fault = 'none';
    expect(await result(p.httpUrl, 'eth_getLogs', [{ blockHash: block.hash }])).toEqual(canonical);
  });

  it("'fork': blocks from forkFrom carry fake chained hashes (newHeads, by number, by hash) and no logs, blocks below honest; 'none' is honest again", async () => {
    const { p, sub } = await subscribed('forked');
    const a = await tick(1);
    await tick(1);
    const h = await tick(1);
    expect(h).toBe(a + 2);
    await waitFor(() => sub.numbers.includes(h), `head ${h}`);
    const real = await Promise.all([anvilBlock(a), anvilBlock(a + 1), anvilBlock(a + 2)]);
    const sha = (n: number) => `0x${createHash('sha256').update(`fork:${n}`).digest('hex')}`;
    expect(forkedHash(a + 1)).toBe(sha(a + 1));

    p.forkFrom = a + 1;
    p.fault = 'fork';
    expect(await result(p.httpUrl, 'eth_getBlockByNumber', [hex(a), false])).toEqual(real[0]);
    const f1 = await result<Block>(p.httpUrl, 'eth_getBlockByNumber', [hex(a + 1), false]);
    const noLogs = `0x${'0'.repeat(512)}`;
    expect(f1).toEqual({ ...real[1], hash: sha(a + 1), parentHash: real[0].hash, logsBloom: noLogs });
    const f2 = await result<Block>(p.httpUrl, 'eth_getBlockByNumber', ['latest', false]);
    expect(f2).toEqual({ ...real[2], hash: sha(a + 2), parentHash: sha(a + 1), logsBloom: noLogs });
    expect(await result(p.httpUrl, 'eth_getBlockByHash', [sha(a + 2), false])).toEqual(f2);
    expect(await result(p.httpUrl, 'eth_getBlockByHash', [real[2].hash, false])).toBeNull();
    expect(await result(p.httpUrl, 'eth_getBlockByHash', [real[0].hash, false])).toEqual(real[0]);
    expect(await result(p.httpUrl, 'eth_getLogs', [{ blockHash: sha(a + 1) }])).toEqual([]);
    expect((await call(p.httpUrl, 'eth_getLogs', [{ blockHash: real[1].hash }])).error).toEqual({ code: -32000, message: 'unknown block' });
    expect(await result(p.httpUrl, 'eth_getLogs', [{ blockHash: real[0].hash }])).toEqual(await anvilLogs({ blockHash: real[0].hash }));
    expect(await result(p.httpUrl, 'eth_getLogs', [{ fromBlock: hex(a), toBlock: hex(h) }])).toEqual(
      await anvilLogs({ fromBlock: hex(a), toBlock: hex(a) }),
    );
    const next = h + 1;
    await anvil.mine(1);
    await waitFor(() => sub.numbers.includes(next), `head ${next}`);
    expect(sub.heads.at(-1)).toEqual({ ...(await anvilBlock(next)), hash: sha(next), parentHash: sha(h) });

    p.fault = 'none';
    expect(await result(p.httpUrl, 'eth_getBlockByNumber', [hex(a + 2), false])).toEqual(real[2]);
    expect(await result(p.httpUrl, 'eth_getBlockByHash', [sha(a + 2), false])).toBeNull();
    expect(await result(p.httpUrl, 'eth_getLogs', [{ fromBlock: hex(a), toBlock: hex(h) }])).toHaveLength(3);
    await anvil.mine(1);
    await waitFor(() => sub.numbers.includes(next + 1), `head ${next + 1}`);
    expect(sub.heads.at(-1)).toEqual(await anvilBlock(next + 1));
    expect(sub.heads.at(-1)!.parentHash).toBe((await anvilBlock(next)).hash);
  });
});
