/**
 * A loopback JSON-RPC provider for tests: one node:http server on 127.0.0.1 (HTTP POST and, on the same
 * port, WebSocket) in front of one real anvil, that a test can make misbehave the way hosted providers and
 * load-balanced nodes do. Several of them in front of the same anvil are the backends of a multi-provider
 * chain listener.
 *
 * Relaying. Every request, single or batch (a JSON array in, a JSON array out, ids preserved, faults
 * applied item by item), is relayed to anvil over HTTP and the fault is applied to the answer.
 * `eth_subscribe` ['newHeads'] is its own (WebSocket only): it polls anvil's head every `headPollMs`
 * (default 50) and pushes `eth_subscription` notifications carrying the header exactly as anvil answers
 * `eth_getBlockByNumber(n, false)`. When anvil moved several blocks between two polls every intermediate
 * header is pushed, in order; when anvil's chain changed under the heads already pushed (`anvil_reorg`,
 * `evm_revert`) the new branch is pushed from the common ancestor up, as geth does. A subscription
 * receives the heads that come after its answer, never history. `eth_unsubscribe` answers true. Other
 * subscription kinds are refused (-32602), `eth_subscribe` over HTTP too (-32601).
 *
 * Its head. The head it knows is anvil's as of its last poll, or a fresher one it relayed (an
 * `eth_blockNumber` or a 'latest' block). Its visible head is that head, except under 'stall' (frozen)
 * and 'lag' (`lagBlocks` below anvil's, read fresh on every request). Heads are pushed up to the visible
 * head and never twice: after 'lag' or 'stall' it pushes from the last head it pushed + 1 up.
 *
 * Faults (`fault`, settable at any time; read when a request arrives, and when a head is pushed):
 * - 'none': honest.
 * - 'stall': frozen at the visible head it had when the fault was set: newHeads stop, 'latest'/'pending'
 *   and `eth_blockNumber` answer the frozen head, blocks above it are null (by number and by hash),
 *   `eth_getLogs` clamps its range to it, and by `blockHash` of a block above it answers
 *   -32000 'unknown block' (as geth). Back to 'none', it pushes frozen+1 up to anvil's head in order.
 * - 'lag': the same as 'stall', at `lagBlocks` (default 5) below anvil's head as it moves.
 * - 'cut': every open connection (HTTP keep-alive and WebSocket, tracked from the server's 'connection'
 *   events) destroyed at once, new ones destroyed as they come, until the fault changes. Heads pushed
 *   meanwhile go to nobody.
 * - 'rate-limit': every request answered as rate-limited: HTTP 429 with `retry-after: 0` (the body holds
 *   the JSON-RPC error, an array for a batch), over WebSocket the JSON-RPC error -32005 'rate limit
 *   exceeded: too many requests' for each item. A request (one HTTP request or one WebSocket message,
 *   batch or not) is one limited answer; after `rateLimitCount` (default Infinity) of them since the fault
 *   was set, the fault goes back to 'none' by itself. `rateLimited` counts them all. Heads still pushed.
 * - 'slow': every answer, and every push, delayed by `delayMs` (default 200); the answer is computed
 *   when the request arrives.
 * - 'silent': requests accepted and never answered (not even after the fault changes), nothing pushed;
 *   back to 'none' it pushes the heads it held back, in order, as a hung node that catches up.
 * - 'empty-logs': `eth_getLogs` answers [] (blocks stay honest, logsBloom included).
 * - 'foreign-logs': `eth_getLogs` by `blockHash` answers the block's logs with `blockHash` replaced by
 *   the block's parentHash (another block's); range queries stay honest.
 * - 'fork': a lie about a fork from `forkFrom`: blocks >= forkFrom (newHeads, `eth_getBlockByNumber`,
 *   `eth_getBlockByHash` of the fake hash) carry `forkedHash(n)` (sha256 of 'fork:'+n) as hash, and as
 *   parentHash the fake of n-1 (forkFrom's parentHash stays the real one); transactions objects carry the
 *   fake blockHash and an empty `logsBloom` (the lie holds together: no logs, and a bloom that says so).
 *   `eth_getLogs` answers [] by a fake hash and drops those blocks' logs from ranges. The
 *   real blocks >= forkFrom are unknown to it: null by hash, -32000 'unknown block' for `eth_getLogs`.
 *   Blocks below forkFrom stay honest.
 * - 'syncing': `eth_syncing` answers a sync in progress (an object) instead of false; all else honest.
 * - 'wrong-block': `eth_getBlockByNumber` of a number n > 0 answers block n - 1 (a wrong block); all
 *   else honest.
 * - 'ahead': claims a head `aheadBlocks` (default 1000) above anvil's: `eth_blockNumber` answers it and
 *   'latest' a made-up header at that height (hash `forkedHash(n)`); newHeads and every block it
 *   actually has stay honest, blocks above anvil's head are null as anvil answers them.
 *
 * Only `eth_blockNumber`, `eth_getBlockByNumber`, `eth_getBlockByHash`, `eth_getLogs` and the
 * subscriptions are shaped by faults; every other method is relayed as is. `calls` counts requests by
 * method (batch items one by one). Malformed input gets JSON-RPC errors (-32700, -32600), never a crash.
 * `stop()` closes the server, every connection and the polling.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export type ProviderFault =
  | 'none'
  | 'stall'
  | 'lag'
  | 'cut'
  | 'rate-limit'
  | 'slow'
  | 'silent'
  | 'empty-logs'
  | 'foreign-logs'
  | 'fork'
  | 'syncing'
  | 'ahead'
  | 'wrong-block';

export interface RpcProvider {
  name: string;
  /** ws://127.0.0.1:<port> */
  wsUrl: string;
  /** http://127.0.0.1:<port>, the same port as wsUrl. */
  httpUrl: string;
  fault: ProviderFault;
  /** For 'lag' (default 5). */
  lagBlocks: number;
  /** For 'slow' (default 200). */
  delayMs: number;
  /** For 'fork' (default 0). */
  forkFrom: number;
  /** For 'rate-limit' (default Infinity). */
  rateLimitCount: number;
  /** For 'ahead' (default 1000). */
  aheadBlocks: number;
  /** Requests received, by method (batch items counted one by one). */
  readonly calls: Map<string, number>;
  /** Rate-limited answers given so far. */
  readonly rateLimited: number;
  stop(): Promise<void>;
}

const FAULTS: readonly ProviderFault[] = [
  'none',
  'stall',
  'lag',
  'cut',
  'rate-limit',
  'slow',
  'silent',
  'empty-logs',
  'foreign-logs',
  'fork',
  'syncing',
  'ahead',
  'wrong-block',
];
const UNKNOWN_BLOCK = { code: -32000, message: 'unknown block' };
const RATE_LIMITED = { code: -32005, message: 'rate limit exceeded: too many requests' };
const MAX_BODY_BYTES = 16 << 20;
/** After a jump of more blocks than this, only the newest ones are pushed. */
const MAX_PUSH_RUN = 1024;
/** Hashes of pushed heads kept to find the common ancestor after a reorg. */
const HASH_MEMORY = 256;

/** The fake hash of block `n` under 'fork': sha256('fork:' + n) as 0x + 64 hex. */
export function forkedHash(n: number): string {
  return `0x${createHash('sha256').update(`fork:${n}`).digest('hex')}`;
}

interface Header {
  number: string;
  hash: string;
  parentHash: string;
  transactions?: unknown;
  [key: string]: unknown;
}

interface RpcError {
  code: number;
  message: string;
  data?: unknown;
}

type Outcome = { result: unknown } | { error: RpcError };

interface Item {
  id?: unknown;
  method: string;
  params: unknown[];
}

/** What a message gets: nothing, its connection dropped, a rate-limited answer, or its answer. */
type Disposal =
  { kind: 'silent' } | { kind: 'cut' } | { kind: 'limited'; body: unknown } | { kind: 'answer'; body: unknown; after: (() => void)[] };

const hex = (n: number): string => `0x${n.toString(16)}`;
const quantity = (v: unknown): number | null => (typeof v === 'string' && /^0x[0-9a-f]{1,13}$/i.test(v) ? Number.parseInt(v, 16) : null);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isHeader = (v: unknown): v is Header =>
  isObject(v) && quantity(v.number) !== null && typeof v.hash === 'string' && typeof v.parentHash === 'string';
const isItem = (v: unknown): v is Item => isObject(v) && typeof v.method === 'string';
const idOf = (v: unknown): unknown => (isObject(v) && v.id !== undefined ? v.id : null);
const failed = (o: Outcome): o is { error: RpcError } => 'error' in o;

export async function startRpcProvider(opts: { name: string; anvilHttpUrl: string; headPollMs?: number }): Promise<RpcProvider> {
  const headPollMs = opts.headPollMs ?? 50;
  const calls = new Map<string, number>();
  const sockets = new Set<Socket>();
  const subscriptions = new Map<WebSocket, Set<string>>();
  const timers = new Set<NodeJS.Timeout>();
  const state = {
    fault: 'none' as ProviderFault,
    lagBlocks: 5,
    delayMs: 200,
    forkFrom: 0,
    rateLimitCount: Infinity,
    aheadBlocks: 1000,
    rateLimited: 0,
    limitedSinceSet: 0,
    frozen: 0,
    stopped: false,
  };

  // --- anvil ---------------------------------------------------------------------------------------

  let upstreamId = 0;
  const upstream = async (items: { method: string; params: unknown[] }[]): Promise<Outcome[]> => {
    const body = items.map((it) => ({ jsonrpc: '2.0', id: ++upstreamId, method: it.method, params: it.params }));
    const res = await fetch(opts.anvilHttpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body.length === 1 ? body[0] : body),
    });
    const json: unknown = await res.json();
    const replies = Array.isArray(json) ? json : [json];
    return body.map((b): Outcome => {
      const r: unknown = replies.find((x) => isObject(x) && x.id === b.id);
      if (!isObject(r)) return { error: { code: -32603, message: 'upstream gave no answer' } };
      return isObject(r.error) ? { error: r.error as unknown as RpcError } : { result: r.result ?? null };
    });
  };
  const relay = async (method: string, params: unknown[]): Promise<Outcome> => (await upstream([{ method, params }]))[0]!;
  const header = async (n: number): Promise<Header | null> => {
    const o = await relay('eth_getBlockByNumber', [hex(n), false]);
    return !failed(o) && isHeader(o.result) ? o.result : null;
  };

  // --- its head --------------------------------------------------------------------------------------

  // anvil's head as last observed; an observation counts only if its request started after the one that
  // set the head (a slow poll never takes the head back below a fresher relayed answer).
  let head = 0;
  let headSeq = 0;
  let appliedSeq = 0;
  const observe = (seq: number, n: number) => {
    if (seq > appliedSeq) {
      appliedSeq = seq;
      head = n;
    }
  };
  const visibleHead = (h: number, f: ProviderFault): number => {
    if (f === 'stall') return Math.min(state.frozen, h);
    if (f === 'lag') return Math.max(0, h - state.lagBlocks);
    return h;
  };
  /** anvil's head read now (and observed), and the visible head under `f`. */
  const freshHead = async (f: ProviderFault): Promise<{ outcome: Outcome; visible: number }> => {
    const seq = ++headSeq;
    const outcome = await relay('eth_blockNumber', []);
    const n = failed(outcome) ? null : quantity(outcome.result);
    if (n === null) return { outcome, visible: visibleHead(head, f) };
    observe(seq, n);
    return { outcome, visible: visibleHead(n, f) };
  };

  // --- fork ------------------------------------------------------------------------------------------

  // Fake hashes by block number, computed up to the highest head seen (a lookup by a fake hash a client
  // computed itself must work too).
  const fakes = new Map<string, number>();
  let fakesUpTo = -1;
  /** The block number >= forkFrom whose fake hash `hash` is, or null. */
  const fakeNumber = (hash: string): number | null => {
    for (let n = fakesUpTo + 1; n <= head; n++) fakes.set(forkedHash(n), n);
    fakesUpTo = Math.max(fakesUpTo, head);
    const n = fakes.get(hash);
    return n !== undefined && n >= state.forkFrom ? n : null;
  };
  const forked = (h: Header): Header => {
    const n = quantity(h.number)!;
    if (n < state.forkFrom) return h;
    const hash = forkedHash(n);
    fakes.set(hash, n);
    const parentHash = n === state.forkFrom ? h.parentHash : forkedHash(n - 1);
    const transactions = Array.isArray(h.transactions)
      ? (h.transactions as unknown[]).map((tx) => (isObject(tx) ? { ...tx, blockHash: hash } : tx))
      : h.transactions;
    // Its fake blocks have no logs, and their blooms say so (a lie that holds together).
    const logsBloom = typeof h.logsBloom === 'string' ? `0x${'0'.repeat(512)}` : h.logsBloom;
    return { ...h, hash, parentHash, logsBloom, ...(transactions === undefined ? {} : { transactions }) };
  };

  // --- methods ---------------------------------------------------------------------------------------

  /** The made-up header 'ahead' answers for 'latest'. */
  const aheadHeader = async (): Promise<Outcome> => {
    const { outcome } = await freshHead('none');
    const real = failed(outcome) ? null : quantity(outcome.result);
    if (real === null) return outcome;
    const top = await relay('eth_getBlockByNumber', [hex(real), false]);
    if (failed(top) || !isHeader(top.result)) return top;
    const n = real + state.aheadBlocks;
    return { result: { ...top.result, number: hex(n), hash: forkedHash(n), parentHash: forkedHash(n - 1) } };
  };

  const blockNumber = async (f: ProviderFault): Promise<Outcome> => {
    if (f === 'ahead') {
      const { outcome } = await freshHead('none');
      const real = failed(outcome) ? null : quantity(outcome.result);
      return real === null ? outcome : { result: hex(real + state.aheadBlocks) };
    }
    const { outcome, visible } = await freshHead(f);
    if (failed(outcome) || (f !== 'stall' && f !== 'lag')) return outcome;
    return { result: hex(visible) };
  };

  const blockByNumber = async (params: unknown[], f: ProviderFault): Promise<Outcome> => {
    const [tag, ...rest] = params;
    if (f === 'ahead' && (tag === 'latest' || tag === 'pending')) return aheadHeader();
    if (f === 'wrong-block' && (quantity(tag) ?? 0) > 0) return relay('eth_getBlockByNumber', [hex(quantity(tag)! - 1), ...rest]);
    if (f === 'stall' || f === 'lag') {
      const { visible } = await freshHead(f);
      const n = quantity(tag);
      if (n !== null) return n > visible ? { result: null } : relay('eth_getBlockByNumber', params);
      if (tag === undefined || tag === 'latest' || tag === 'pending') return relay('eth_getBlockByNumber', [hex(visible), ...rest]);
      const o = await relay('eth_getBlockByNumber', params);
      if (!failed(o) && isHeader(o.result) && quantity(o.result.number)! > visible)
        return relay('eth_getBlockByNumber', [hex(visible), ...rest]);
      return o;
    }
    const seq = ++headSeq;
    const o = await relay('eth_getBlockByNumber', params);
    if (failed(o) || !isHeader(o.result)) return o;
    if (tag === 'latest') observe(seq, quantity(o.result.number)!);
    return f === 'fork' ? { result: forked(o.result) } : o;
  };

  const blockByHash = async (params: unknown[], f: ProviderFault): Promise<Outcome> => {
    const [hash, ...rest] = params;
    if (f === 'fork' && typeof hash === 'string') {
      const n = fakeNumber(hash.toLowerCase());
      if (n !== null) {
        const o = await relay('eth_getBlockByNumber', [hex(n), ...rest]);
        return failed(o) || !isHeader(o.result) ? o : { result: forked(o.result) };
      }
    }
    const o = await relay('eth_getBlockByHash', params);
    if (failed(o) || !isHeader(o.result)) return o;
    const n = quantity(o.result.number)!;
    if (f === 'fork') return n >= state.forkFrom ? { result: null } : o;
    if (f === 'stall' || f === 'lag') return n > (await freshHead(f)).visible ? { result: null } : o;
    return o;
  };

  const logs = async (params: unknown[], f: ProviderFault): Promise<Outcome> => {
    const filter = params[0];
    if (!isObject(filter)) return relay('eth_getLogs', params);
    if (f === 'empty-logs') return { result: [] };
    const clamp = f === 'stall' || f === 'lag';
    if (typeof filter.blockHash === 'string') {
      if (f === 'fork' && fakeNumber(filter.blockHash.toLowerCase()) !== null) return { result: [] };
      if (f !== 'fork' && !clamp && f !== 'foreign-logs') return relay('eth_getLogs', params);
      const both = await upstream([
        { method: 'eth_getBlockByHash', params: [filter.blockHash, false] },
        { method: 'eth_getLogs', params },
      ]);
      const block = both[0]!;
      const found = both[1]!;
      if (failed(found) || failed(block) || !isHeader(block.result)) return found;
      const n = quantity(block.result.number)!;
      if (f === 'fork' && n >= state.forkFrom) return { error: UNKNOWN_BLOCK };
      if (clamp && n > (await freshHead(f)).visible) return { error: UNKNOWN_BLOCK };
      if (f === 'foreign-logs' && Array.isArray(found.result)) {
        const other = block.result.parentHash;
        return { result: found.result.map((l: unknown) => (isObject(l) ? { ...l, blockHash: other } : l)) };
      }
      return found;
    }
    if (clamp) {
      const { visible } = await freshHead(f);
      const bound = (tag: unknown): number | null => {
        if (tag === undefined || tag === 'latest' || tag === 'pending' || tag === 'safe' || tag === 'finalized') return visible;
        if (tag === 'earliest') return 0;
        return quantity(tag);
      };
      const fromBlock = bound(filter.fromBlock);
      const toBlock = bound(filter.toBlock);
      if (fromBlock === null || toBlock === null) return relay('eth_getLogs', params); // anvil says what is wrong
      const to = Math.min(toBlock, visible);
      if (fromBlock > to) return { result: [] };
      return relay('eth_getLogs', [{ ...filter, fromBlock: hex(fromBlock), toBlock: hex(to) }, ...params.slice(1)]);
    }
    const o = await relay('eth_getLogs', params);
    if (f === 'fork' && !failed(o) && Array.isArray(o.result)) {
      return { result: o.result.filter((l: unknown) => !isObject(l) || (quantity(l.blockNumber) ?? 0) < state.forkFrom) };
    }
    return o;
  };

  const subscribe = (params: unknown[], ws: WebSocket | null, after: (() => void)[]): Outcome => {
    if (!ws) return { error: { code: -32601, message: 'notifications not supported' } };
    if (params[0] !== 'newHeads') return { error: { code: -32602, message: `unsupported subscription: ${String(params[0])}` } };
    const id = `0x${randomBytes(16).toString('hex')}`;
    // Active once its answer is sent: no push ever comes before the subscription id.
    after.push(() => {
      if (ws.readyState === ws.OPEN) subscriptions.get(ws)?.add(id);
    });
    return { result: id };
  };

  const shaped = async (item: Item, f: ProviderFault, ws: WebSocket | null, after: (() => void)[]): Promise<Outcome> => {
    const params = Array.isArray(item.params) ? item.params : [];
    switch (item.method) {
      case 'eth_subscribe':
        return subscribe(params, ws, after);
      case 'eth_unsubscribe':
        if (ws && typeof params[0] === 'string') subscriptions.get(ws)?.delete(params[0]);
        return { result: true };
      case 'eth_blockNumber':
        return blockNumber(f);
      case 'eth_getBlockByNumber':
        return blockByNumber(params, f);
      case 'eth_getBlockByHash':
        return blockByHash(params, f);
      case 'eth_getLogs':
        return logs(params, f);
      case 'eth_syncing':
        return f === 'syncing'
          ? { result: { startingBlock: '0x0', currentBlock: '0x1', highestBlock: '0xffffff' } }
          : relay(item.method, params);
      default:
        return relay(item.method, params);
    }
  };

  const answer = async (raw: unknown, f: ProviderFault, ws: WebSocket | null, after: (() => void)[]): Promise<unknown> => {
    if (!isItem(raw)) return { jsonrpc: '2.0', id: idOf(raw), error: { code: -32600, message: 'invalid request' } };
    let outcome: Outcome;
    try {
      outcome = await shaped(raw, f, ws, after);
    } catch (err) {
      outcome = { error: { code: -32603, message: `upstream unavailable: ${err instanceof Error ? err.message : String(err)}` } };
    }
    return { jsonrpc: '2.0', id: raw.id ?? null, ...outcome };
  };

  const later = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  /** What one HTTP body or WebSocket message gets. */
  const dispose = async (text: string, ws: WebSocket | null): Promise<Disposal> => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return { kind: 'answer', body: { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error' } }, after: [] };
    }
    const batch = Array.isArray(parsed);
    const items: unknown[] = Array.isArray(parsed) ? parsed : [parsed];
    if (batch && items.length === 0) {
      return { kind: 'answer', body: { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'empty batch' } }, after: [] };
    }
    for (const it of items) if (isItem(it)) calls.set(it.method, (calls.get(it.method) ?? 0) + 1);
    const f = state.fault;
    if (f === 'cut') return { kind: 'cut' };
    if (f === 'silent') return { kind: 'silent' };
    if (f === 'rate-limit' && state.limitedSinceSet < state.rateLimitCount) {
      state.rateLimited++;
      state.limitedSinceSet++;
      if (state.limitedSinceSet >= state.rateLimitCount) state.fault = 'none';
      const errors = items.map((it) => ({ jsonrpc: '2.0', id: idOf(it), error: RATE_LIMITED }));
      return { kind: 'limited', body: batch ? errors : errors[0] };
    }
    const after: (() => void)[] = [];
    const answers = await Promise.all(items.map((it) => answer(it, f, ws, after)));
    if (f === 'slow') await later(state.delayMs);
    return { kind: 'answer', body: batch ? answers : answers[0], after };
  };

  // --- newHeads --------------------------------------------------------------------------------------

  // The heads pushed: the highest one (`cursor`) and the hashes of the last HASH_MEMORY ones.
  let cursor = 0;
  const pushed = new Map<number, string>();

  const push = (h: Header, f: ProviderFault) => {
    const result = f === 'fork' ? forked(h) : h;
    // The subscriptions of the moment the head is pushed: a 'slow' push reaches them late, never a
    // connection made since (a later test's listener would get heads from before it subscribed).
    const to = [...subscriptions].map(([ws, subs]) => [ws, [...subs]] as const);
    const send = () => {
      for (const [ws, subs] of to) {
        if (ws.readyState !== ws.OPEN) continue;
        for (const subscription of subs) {
          if (!subscriptions.get(ws)?.has(subscription)) continue;
          ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'eth_subscription', params: { subscription, result } }));
        }
      }
    };
    if (f === 'slow') void later(state.delayMs).then(send);
    else send();
  };

  const poll = async () => {
    const seq = ++headSeq;
    const latest = await relay('eth_getBlockByNumber', ['latest', false]);
    if (failed(latest) || !isHeader(latest.result)) return;
    const latestNumber = quantity(latest.result.number)!;
    observe(seq, latestNumber);
    const f = state.fault;
    if (f === 'silent') return; // held back: pushed once it answers again
    const target = visibleHead(latestNumber, f);
    const top = target === latestNumber ? latest.result : await header(target);
    if (!top) return;
    if (target <= cursor && (pushed.get(target) ?? top.hash) === top.hash) return; // nothing new
    // The run to push: from the head after the last one pushed (or after the common ancestor) to target.
    let lo = Math.max(Math.min(cursor + 1, target), target - MAX_PUSH_RUN + 1, 0);
    const below =
      lo < target
        ? await upstream(Array.from({ length: target - lo }, (_, i) => ({ method: 'eth_getBlockByNumber', params: [hex(lo + i), false] })))
        : [];
    const run: Header[] = [];
    for (const o of below) {
      if (failed(o) || !isHeader(o.result)) return; // anvil moved meanwhile: next poll
      run.push(o.result);
    }
    run.push(top);
    for (let i = 1; i < run.length; i++) if (run[i]!.parentHash !== run[i - 1]!.hash) return;
    while (lo > 0 && pushed.has(lo - 1) && pushed.get(lo - 1) !== run[0]!.parentHash) {
      const parent = await header(lo - 1);
      if (!parent || parent.hash !== run[0]!.parentHash) return;
      run.unshift(parent);
      lo--;
    }
    if (state.stopped) return;
    for (const h of run) {
      pushed.set(quantity(h.number)!, h.hash);
      push(h, f);
    }
    for (const n of pushed.keys()) if (n > target || n <= target - HASH_MEMORY) pushed.delete(n);
    cursor = target;
  };

  let pollTimer: NodeJS.Timeout | null = null;
  let polling: Promise<void> = Promise.resolve();
  const schedule = () => {
    if (state.stopped) return;
    pollTimer = setTimeout(() => {
      polling = poll()
        .catch(() => {}) // anvil briefly unavailable: next poll
        .then(schedule);
    }, headPollMs);
  };

  // --- transport -------------------------------------------------------------------------------------

  const cutAll = () => {
    for (const ws of subscriptions.keys()) ws.terminate();
    for (const s of sockets) s.destroy();
  };

  const http = createServer((req, res) => {
    req.on('error', () => {});
    res.on('error', () => {});
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        if (!res.headersSent) res.writeHead(413, { connection: 'close' }).end();
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) return;
      void dispose(Buffer.concat(chunks).toString('utf8'), null).then((d) => replyHttp(res, d));
    });
  });
  const replyHttp = (res: ServerResponse, d: Disposal) => {
    if (d.kind === 'silent' || res.destroyed || res.writableEnded) return;
    if (d.kind === 'cut') {
      res.socket?.destroy();
      return;
    }
    const status = d.kind === 'limited' ? 429 : 200;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (d.kind === 'limited') headers['retry-after'] = '0';
    res.writeHead(status, headers).end(JSON.stringify(d.body));
  };
  http.on('connection', (socket: Socket) => {
    if (state.fault === 'cut' || state.stopped) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  http.on('clientError', (_err, socket) => socket.destroy());

  const wss = new WebSocketServer({ server: http });
  wss.on('error', () => {});
  wss.on('connection', (ws) => {
    subscriptions.set(ws, new Set());
    ws.on('error', () => {});
    ws.on('close', () => subscriptions.delete(ws));
    ws.on('message', (data) => {
      const text = Buffer.isBuffer(data)
        ? data.toString('utf8')
        : Array.isArray(data)
          ? Buffer.concat(data).toString('utf8')
          : Buffer.from(data).toString('utf8');
      void dispose(text, ws).then((d) => {
        if (d.kind === 'silent' || ws.readyState !== ws.OPEN) return;
        if (d.kind === 'cut') {
          ws.terminate();
          return;
        }
        ws.send(JSON.stringify(d.body));
        if (d.kind === 'answer') for (const fn of d.after) fn();
      });
    });
  });

  // --- start -----------------------------------------------------------------------------------------

  const first = await relay('eth_getBlockByNumber', ['latest', false]);
  if (failed(first) || !isHeader(first.result)) throw new Error(`rpc provider ${opts.name}: anvil at ${opts.anvilHttpUrl} has no head`);
  head = cursor = quantity(first.result.number)!;
  pushed.set(cursor, first.result.hash);
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, '127.0.0.1', () => {
      http.off('error', reject);
      resolve();
    });
  });
  schedule();
  const { port } = http.address() as { port: number };

  return {
    name: opts.name,
    wsUrl: `ws://127.0.0.1:${port}`,
    httpUrl: `http://127.0.0.1:${port}`,
    get aheadBlocks() {
      return state.aheadBlocks;
    },
    set aheadBlocks(n: number) {
      state.aheadBlocks = n;
    },
    get fault() {
      return state.fault;
    },
    set fault(f: ProviderFault) {
      if (!FAULTS.includes(f)) throw new Error(`unknown provider fault: ${String(f)}`);
      if (f === 'stall' && state.fault !== 'stall') state.frozen = visibleHead(head, state.fault);
      if (f === 'rate-limit') state.limitedSinceSet = 0;
      state.fault = f;
      if (f === 'cut') cutAll();
    },
    get lagBlocks() {
      return state.lagBlocks;
    },
    set lagBlocks(n: number) {
      state.lagBlocks = n;
    },
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(ms: number) {
      state.delayMs = ms;
    },
    get forkFrom() {
      return state.forkFrom;
    },
    set forkFrom(n: number) {
      state.forkFrom = n;
    },
    get rateLimitCount() {
      return state.rateLimitCount;
    },
    set rateLimitCount(n: number) {
      state.rateLimitCount = n;
    },
    calls,
    get rateLimited() {
      return state.rateLimited;
    },
    stop: async () => {
      state.stopped = true;
      if (pollTimer) clearTimeout(pollTimer);
      await polling;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const ws of wss.clients) ws.terminate();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
