/**
 * JSON-RPC 2.0 over HTTP POST (undici), the fallback transport when the WebSocket keeps failing.
 * Same contract as the WebSocket client: per-request timeout, replies checked with `parseFrame` and
 * matched by id, bodies above `maxFrameBytes` refused (ETHHOOK_ERR_RPC_MALFORMED, reason `frame-too-large`), non-2xx statuses
 * turned into ETHHOOK_ERR_RPC_ERROR (rpcCode = -status), a 429 into ETHHOOK_ERR_RPC_RATE_LIMITED (with the
 * Retry-After it gave, in seconds or as a date). `close` aborts the calls in flight.
 */
import type { Dispatcher } from 'undici';
import { EthhookError } from '../../runtime/errors.ts';
import { parseFrame, type RpcReply } from './frames.ts';
import { Agent, requestOn } from '../../undici-parts.ts';
import { frameTooLarge, rpcClosed, rpcError, rpcRateLimited, rpcTimeout, type RpcCall, type RpcTransport } from './transport.ts';

export interface HttpRpcOptions {
  url: string;
  requestTimeoutMs: number;
  maxFrameBytes: number;
}

/** The keep-alive connections of every HTTP JSON-RPC client: a pool per provider origin, made at first use. */
let providers: Dispatcher | undefined;

export class HttpRpcClient implements RpcTransport {
  readonly kind = 'http';
  private readonly abort = new AbortController();
  private nextId = 1;
  private readonly target: { origin: string; path: string };

  constructor(private readonly options: HttpRpcOptions) {
    const url = new URL(options.url);
    this.target = { origin: url.origin, path: `${url.pathname}${url.search}` };
  }

  async request(method: string, params: unknown[]): Promise<unknown> {
    const [result] = await this.post([{ method, params }]);
    return result;
  }

  batch(calls: RpcCall[]): Promise<unknown[]> {
    return calls.length === 0 ? Promise.resolve([]) : this.post(calls);
  }

  close(): void {
    this.abort.abort();
  }

  private async post(calls: RpcCall[]): Promise<unknown[]> {
    const method = calls.length === 1 ? calls[0]!.method : `batch(${calls[0]!.method} x${calls.length})`;
    if (this.abort.signal.aborted) throw rpcClosed(method, 'closed by the listener');
    const ids = calls.map(() => this.nextId++);
    const frames = calls.map((c, i) => ({ jsonrpc: '2.0', id: ids[i], method: c.method, params: c.params }));
    const timeout = AbortSignal.timeout(this.options.requestTimeoutMs);
    let raw: string;
    try {
      const res = await requestOn((providers ??= new Agent()), {
        ...this.target,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(frames.length === 1 ? frames[0] : frames),
        signal: AbortSignal.any([this.abort.signal, timeout]),
      });
      raw = await readCapped(res.body, this.options.maxFrameBytes, method);
      if (res.statusCode === 429) throw rpcRateLimited(method, `HTTP 429: ${raw.slice(0, 120)}`, retryAfterMs(res.headers['retry-after']));
      if (res.statusCode < 200 || res.statusCode > 299) {
        throw rpcError(method, { code: -res.statusCode, message: `HTTP ${res.statusCode}: ${raw.slice(0, 120)}` });
      }
    } catch (err) {
      if (err instanceof EthhookError) throw err;
      if (timeout.aborted) throw rpcTimeout(method, this.options.requestTimeoutMs);
      throw rpcClosed(method, (err as Error).message);
    }
    const frame = parseFrame(raw);
    const replies: RpcReply[] = frame.kind === 'batch' ? frame.items : frame.kind === 'notification' ? [] : [frame];
    return ids.map((id, i) => {
      const reply = replies.find((r) => r.id === id) ?? replies.find((r) => r.kind === 'error' && r.id === null);
      if (!reply) {
        throw new EthhookError('ETHHOOK_ERR_RPC_MALFORMED', `${method}: no reply for request id ${id}`, { method, id });
      }
      if (reply.kind === 'error') throw rpcError(calls[i]!.method, reply.error);
      return reply.result;
    });
  }
}

/** Retry-After as milliseconds (seconds, or an HTTP date), capped at a minute; undefined when absent or unreadable. */
function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return undefined;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) ? Math.min(60_000, Math.max(0, ms)) : undefined;
}

async function readCapped(body: AsyncIterable<Buffer>, maxBytes: number, method: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > maxBytes) throw frameTooLarge(method, maxBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
