/**
 * JSON-RPC 2.0 over one WebSocket (`ws`). `WsRpcClient.connect` resolves once the socket is open.
 *
 * - Requests get increasing integer ids and a timeout each (`requestTimeoutMs`); a batch is one frame.
 * - Every inbound frame goes through `parseFrame`. A frame that fails it, a reply to an id that is not
 *   pending, or a push for an unknown subscription is reported to `onProblem` and dropped: it never
 *   throws out of the socket's event handler.
 * - Frames above `maxFrameBytes` make `ws` close the socket (1009): reported as `malformed`, and the
 *   calls then pending fail with ETHHOOK_ERR_RPC_MALFORMED, reason `frame-too-large` (one of them was
 *   answered with that frame; a log range is then split rather than asked again).
 * - Subscriptions: `subscribe` routes each `eth_subscription` push to its handler with the frame's
 *   arrival time (ms since the epoch, sub-ms). The route is set in the same turn as the subscribe reply,
 *   so a push that arrives in the same TCP chunk is not lost.
 * - `closed` resolves with the reason when the socket closes; every pending call then rejects with
 *   ETHHOOK_ERR_RPC_CLOSED.
 * - Inbound frames are acknowledged at once: after a turn that received any, one unsolicited pong (RFC
 *   6455 5.5.3: no answer expected) carries the TCP ACK back. Without it the ACK of a reply waits for the
 *   kernel's delayed-ACK timer (40 ms on Linux), and a server that sends with Nagle's algorithm on (anvil
 *   does) holds its next small frame, a head pushed just after it answered a call, until that ACK: the
 *   head then arrives 40 ms late (bench/ws-ack.bench.ts).
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { EthhookError } from '../../runtime/errors.ts';
import { parseFrame, type RpcReply } from './frames.ts';
import { frameTooLarge, rpcClosed, rpcError, rpcTimeout, type ProblemHandler, type RpcCall, type RpcTransport } from './transport.ts';

export interface WsRpcOptions {
  url: string;
  requestTimeoutMs: number;
  maxFrameBytes: number;
  onProblem: ProblemHandler;
}

type Settle = (reply: RpcReply) => void;

interface Pending {
  method: string;
  settle: Settle;
  fail(err: Error): void;
}

export type PushHandler = (result: unknown, receivedAt: number) => void;

export const nowMs = (): number => performance.timeOrigin + performance.now();

export class WsRpcClient implements RpcTransport {
  readonly kind = 'ws';
  readonly closed: Promise<Error>;
  private readonly pending = new Map<number, Pending>();
  private readonly subscriptions = new Map<string, PushHandler>();
  private nextId = 1;
  private closeReason: Error | null = null;
  /** The socket died on a frame above maxFrameBytes: pending calls fail as `frame-too-large`. */
  private oversize = false;
  private markClosed!: (reason: Error) => void;
  /** A pong is scheduled for this turn's inbound frames. */
  private acking = false;
  private readonly ack = (): void => {
    this.acking = false;
    if (this.closeReason === null && this.socket.readyState === WebSocket.OPEN) this.socket.pong();
  };

  private constructor(
    private readonly socket: WebSocket,
    private readonly options: WsRpcOptions,
  ) {
    this.closed = new Promise((resolve) => {
      this.markClosed = resolve;
    });
    socket.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    socket.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        this.oversize = true;
        this.options.onProblem('malformed', frameTooLarge('inbound frame', options.maxFrameBytes));
      }
      this.shutdown(err);
    });
    socket.on('close', (code, reason) => this.shutdown(new Error(`socket closed (${code} ${reason.toString().slice(0, 80)})`)));
  }

  static connect(options: WsRpcOptions): Promise<WsRpcClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(options.url, {
        maxPayload: options.maxFrameBytes,
        handshakeTimeout: options.requestTimeoutMs,
        perMessageDeflate: false,
      });
      const fail = (err: Error) => {
        socket.removeAllListeners();
        socket.on('error', () => {});
        socket.terminate();
        reject(new EthhookError('ETHHOOK_ERR_RPC_CLOSED', `WebSocket connect failed: ${err.message}`, { why: err.message }));
      };
      socket.once('error', fail);
      socket.once('close', (code) => fail(new Error(`closed during handshake (${code})`)));
      socket.once('unexpected-response', (_req, res) => fail(new Error(`HTTP ${res.statusCode} on upgrade`)));
      socket.once('open', () => {
        socket.removeAllListeners();
        resolve(new WsRpcClient(socket, options));
      });
    });
  }

  get isOpen(): boolean {
    return this.closeReason === null;
  }

  request(method: string, params: unknown[]): Promise<unknown> {
    return this.call([{ method, params }]).then((results) => results[0]);
  }

  batch(calls: RpcCall[]): Promise<unknown[]> {
    return calls.length === 0 ? Promise.resolve([]) : this.call(calls);
  }

  /** Sends `eth_subscribe(params)`; resolves with the subscription id once the route is in place. */
  subscribe(params: unknown[], onPush: PushHandler): Promise<string> {
    return this.call([{ method: 'eth_subscribe', params }], (result) => {
      if (typeof result === 'string' && result.length > 0 && result.length <= 256) this.subscriptions.set(result, onPush);
    }).then(([id]) => {
      if (typeof id !== 'string' || !this.subscriptions.has(id)) {
        throw new EthhookError('ETHHOOK_ERR_RPC_MALFORMED', 'eth_subscribe returned no subscription id', {
          method: 'eth_subscribe',
        });
      }
      return id;
    });
  }

  close(): void {
    this.shutdown(new Error('closed by the listener'));
    this.socket.terminate();
  }

  /** Sends calls as one frame (a batch when several); `onFirst` runs synchronously on the first result. */
  private call(calls: RpcCall[], onFirst?: (result: unknown) => void): Promise<unknown[]> {
    const method = calls.length === 1 ? calls[0]!.method : `batch(${calls[0]!.method} x${calls.length})`;
    if (this.closeReason) return Promise.reject(rpcClosed(method, this.closeReason.message));
    return new Promise((resolve, reject) => {
      const ids = calls.map(() => this.nextId++);
      const results: unknown[] = new Array(calls.length);
      let remaining = calls.length;
      const finish = (err: Error | null) => {
        clearTimeout(timer);
        for (const id of ids) this.pending.delete(id);
        if (err) reject(err);
        else resolve(results);
      };
      const timer = setTimeout(() => finish(rpcTimeout(method, this.options.requestTimeoutMs)), this.options.requestTimeoutMs);
      ids.forEach((id, i) => {
        const callMethod = calls[i]!.method;
        this.pending.set(id, {
          method: callMethod,
          settle: (reply) => {
            if (reply.kind === 'error') return finish(rpcError(callMethod, reply.error));
            if (i === 0) onFirst?.(reply.result);
            results[i] = reply.result;
            if (--remaining === 0) finish(null);
          },
          fail: finish,
        });
      });
      const frames = calls.map((c, i) => ({ jsonrpc: '2.0', id: ids[i], method: c.method, params: c.params }));
      this.socket.send(JSON.stringify(frames.length === 1 ? frames[0] : frames), (err) => {
        if (err) finish(rpcClosed(method, err.message));
      });
    });
  }

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    const receivedAt = nowMs();
    if (!this.acking) {
      this.acking = true;
      setImmediate(this.ack);
    }
    const raw = Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8');
    let frame;
    try {
      if (isBinary) throw new EthhookError('ETHHOOK_ERR_RPC_MALFORMED', 'binary frame', { reason: 'binary frame' });
      frame = parseFrame(raw);
    } catch (err) {
      this.options.onProblem('malformed', err as EthhookError);
      return;
    }
    if (frame.kind === 'notification') {
      const handler = this.subscriptions.get(frame.subscription);
      if (handler) handler(frame.result, receivedAt);
      else this.unknown('subscription', frame.subscription);
      return;
    }
    for (const reply of frame.kind === 'batch' ? frame.items : [frame]) {
      const pending = typeof reply.id === 'number' ? this.pending.get(reply.id) : undefined;
      if (pending) pending.settle(reply);
      else if (reply.kind === 'error' && reply.id === null) this.options.onProblem('rpc', rpcError('unknown', reply.error));
      else this.unknown('id', String(reply.id));
    }
  }

  private unknown(what: string, id: string): void {
    this.options.onProblem(
      'unknown-id',
      new EthhookError('ETHHOOK_ERR_RPC_MALFORMED', `frame for an unknown ${what}`, { [what]: id.slice(0, 80) }),
    );
  }

  private shutdown(reason: Error): void {
    if (this.closeReason) return;
    this.closeReason = reason;
    this.subscriptions.clear();
    for (const p of this.pending.values()) {
      p.fail(this.oversize ? frameTooLarge(p.method, this.options.maxFrameBytes) : rpcClosed(p.method, reason.message));
    }
    this.markClosed(reason);
  }
}
