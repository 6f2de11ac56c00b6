/**
 * `GET /v1/sse/events`: the Server-Sent Events transport, served as an admin route that answers on
 * `res` itself.
 *
 * - Admission (admission.ts) first; a refusal is the admin API's JSON error with its status.
 * - `200 text/event-stream`, headers flushed at once (the client is subscribed from then on), then one
 *   block per event: `id: <event id>\nevent: <kind>\ndata: <json>\n\n`. `Last-Event-ID` is not used:
 *   the hub keeps no history (see hub.ts).
 * - Every `heartbeatMs` a comment line `: heartbeat` keeps proxies from closing an idle stream.
 * - A dropped client gets a last block `event: error\ndata: {"code":"ETHHOOK_ERR_STREAM_SLOW_CONSUMER",
 *   "message":"slow consumer: buffer full (N events)"}`, then the response ends (the connection is
 *   not reused: `Connection: close`); one that has not read to the end within `closeGraceMs` is cut.
 *   When the admin API stops, the same with ETHHOOK_ERR_STREAM_CLOSING.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../runtime/log.ts';
import { admit, refusal, sendRefusal, type AdmissionPolicy } from './admission.ts';
import type { StreamClient, StreamSink } from './client.ts';
import type { StreamErrorCode } from './errors.ts';
import type { EventFrame } from './frame.ts';
import type { StreamHub } from './hub.ts';

const HEARTBEAT = Buffer.from(': heartbeat\n\n');

const SSE_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-store',
  Connection: 'close',
  // nginx and similar proxies would otherwise buffer the stream.
  'X-Accel-Buffering': 'no',
};

export interface SseTransportOptions {
  hub: StreamHub;
  policy: AdmissionPolicy;
  maxConnections: number;
  closeGraceMs: number;
  log: Logger;
}

interface Connection {
  res: ServerResponse;
  client: StreamClient;
}

export class SseTransport {
  private readonly connections = new Set<Connection>();
  private closing = false;

  constructor(private readonly options: SseTransportOptions) {}

  get size(): number {
    return this.connections.size;
  }

  /** Admits or refuses the request; on admission the response becomes the client's stream. */
  open(req: IncomingMessage, res: ServerResponse, search: string): void {
    const { hub, policy, maxConnections, closeGraceMs } = this.options;
    if (this.closing) return sendRefusal(res, refusal('ETHHOOK_ERR_STREAM_CLOSING', 'the admin API is stopping'));
    const admission = admit(req, search, policy, { open: hub.connectionCount('sse'), max: maxConnections, label: 'SSE' });
    if (!admission.ok) return sendRefusal(res, admission.refusal);
    if (req.method === 'HEAD') return void res.writeHead(200, SSE_HEADERS).end();
    req.socket.setNoDelay(true);
    res.writeHead(200, SSE_HEADERS);
    res.flushHeaders();
    const client = hub.subscribe(new SseSink(res, closeGraceMs), admission.filter, { remote: req.socket.remoteAddress });
    const conn: Connection = { res, client };
    this.connections.add(conn);
    res.on('error', (err) => this.options.log.debug({ client: client.id, err: err.message }, 'stream SSE error'));
    res.once('close', () => {
      this.connections.delete(conn);
      hub.release(client);
    });
  }

  /** A comment line to every open client. */
  heartbeat(): void {
    for (const conn of this.connections) if (conn.client.open) conn.res.write(HEARTBEAT);
  }

  /** Refuses new clients and ends the open streams; resolves when they are gone. */
  async close(): Promise<void> {
    this.closing = true;
    const gone = [...this.connections].map((conn) => new Promise<void>((resolve) => conn.res.once('close', () => resolve())));
    for (const conn of this.connections) this.options.hub.end(conn.client, 'ETHHOOK_ERR_STREAM_CLOSING', 'the admin API is stopping');
    await Promise.all(gone);
  }
}

class SseSink implements StreamSink {
  readonly transport = 'sse';

  constructor(
    private readonly res: ServerResponse,
    private readonly closeGraceMs: number,
  ) {}

  write(frames: readonly EventFrame[], written: () => void): number {
    if (this.res.destroyed || this.res.writableEnded) {
      process.nextTick(written);
      return 0;
    }
    const chunk = frames.length === 1 ? frames[0]!.sse : Buffer.concat(frames.map((f) => f.sse));
    this.res.write(chunk, written);
    return chunk.length;
  }

  close(code: StreamErrorCode, message: string): void {
    this.res.end(`event: error\ndata: ${JSON.stringify({ code, message })}\n\n`);
    const timer = setTimeout(() => this.res.destroy(), this.closeGraceMs);
    timer.unref();
    this.res.once('close', () => clearTimeout(timer));
  }
}
