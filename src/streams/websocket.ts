/**
 * `GET /v1/ws/events`: the WebSocket transport (`ws`, `noServer`, on the admin server's `upgrade`).
 *
 * - Admission (admission.ts) runs on the upgrade request; a refusal is a plain HTTP answer
 *   (401/403/400/503 with the admin API's JSON error body) and the socket is closed, never upgraded.
 * - Each event is one text message: the event's JSON (events.ts). Messages from the client are ignored
 *   (`maxPayload` 4 KiB: anything bigger closes the connection).
 * - Events bypass `ws.send`: the frames, built once per event (frame.ts), go to the upgraded socket in
 *   one write per batch. This is safe because compression is off, so `ws` writes its own frames (pings,
 *   close) whole and at once, never interleaved with ours.
 * - Every `heartbeatMs` the server pings; a client that has not answered the previous ping is
 *   terminated (dead peer, or one too stuck to read its socket).
 * - Close codes: 4008 slow consumer (reason `slow consumer: buffer full (N events)`), 1001 when the
 *   admin API stops. The close frame queues behind what the client has not read yet; a client that does
 *   not read it within `closeGraceMs` is terminated.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { Logger } from '../runtime/log.ts';
import { admit, refusal, refuseUpgrade, type AdmissionPolicy } from './admission.ts';
import type { StreamClient, StreamSink } from './client.ts';
import type { StreamErrorCode } from './errors.ts';
import type { StreamFilter } from './filter.ts';
import type { EventFrame } from './frame.ts';
import type { StreamHub } from './hub.ts';

export const WS_CLOSE_SLOW_CONSUMER = 4008;
export const WS_CLOSE_GOING_AWAY = 1001;
const WS_CLOSE_POLICY = 1008;
/** Close reasons are limited to 123 bytes by the protocol. */
const MAX_REASON_BYTES = 123;

export interface WebSocketTransportOptions {
  hub: StreamHub;
  policy: AdmissionPolicy;
  maxConnections: number;
  closeGraceMs: number;
  log: Logger;
}

interface Connection {
  ws: WebSocket;
  client: StreamClient;
  /** Answered the last ping. */
  alive: boolean;
}

export class WebSocketTransport {
  private readonly server = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 4096, clientTracking: false });
  private readonly connections = new Set<Connection>();
  private closing = false;

  constructor(private readonly options: WebSocketTransportOptions) {}

  get size(): number {
    return this.connections.size;
  }

  /** Admits or refuses an upgrade request for this endpoint. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, search: string): void {
    const { hub, policy, maxConnections } = this.options;
    if (this.closing) return refuseUpgrade(socket, refusal('ETHHOOK_ERR_STREAM_CLOSING', 'the admin API is stopping'));
    const admission = admit(req, search, policy, { open: hub.connectionCount('websocket'), max: maxConnections, label: 'WebSocket' });
    if (!admission.ok) return refuseUpgrade(socket, admission.refusal);
    this.server.handleUpgrade(req, socket, head, (ws) => this.accept(ws, socket, req, admission.filter));
  }

  /** Pings every client; terminates those that did not answer the previous ping. */
  heartbeat(): void {
    for (const conn of this.connections) {
      if (!conn.alive) {
        this.options.log.info({ client: conn.client.id }, 'stream WebSocket client missed a heartbeat; terminated');
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      conn.ws.ping();
    }
  }

  /** Refuses new clients and closes the open ones with 1001; resolves when they are gone. */
  async close(): Promise<void> {
    this.closing = true;
    const gone = [...this.connections].map((conn) => new Promise<void>((resolve) => conn.ws.once('close', () => resolve())));
    for (const conn of this.connections) this.options.hub.end(conn.client, 'ETHHOOK_ERR_STREAM_CLOSING', 'the admin API is stopping');
    await Promise.all(gone);
  }

  private accept(ws: WebSocket, socket: Duplex, req: IncomingMessage, filter: StreamFilter): void {
    const { hub, closeGraceMs, log } = this.options;
    const client = hub.subscribe(new WebSocketSink(ws, socket, closeGraceMs), filter, { remote: req.socket.remoteAddress });
    const conn: Connection = { ws, client, alive: true };
    this.connections.add(conn);
    ws.on('pong', () => (conn.alive = true));
    ws.on('error', (err) => log.debug({ client: client.id, err: err.message }, 'stream WebSocket error'));
    ws.once('close', () => {
      this.connections.delete(conn);
      hub.release(client);
    });
  }
}

class WebSocketSink implements StreamSink {
  readonly transport = 'websocket';

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Duplex,
    private readonly closeGraceMs: number,
  ) {}

  write(frames: readonly EventFrame[], written: () => void): number {
    if (this.ws.readyState !== WebSocket.OPEN) {
      // Closing: the peer will not read these any more.
      process.nextTick(written);
      return 0;
    }
    const chunk = frames.length === 1 ? frames[0]!.websocket : Buffer.concat(frames.map((f) => f.websocket));
    this.socket.write(chunk, written);
    return chunk.length;
  }

  close(code: StreamErrorCode, message: string): void {
    const closeCode =
      code === 'ETHHOOK_ERR_STREAM_SLOW_CONSUMER'
        ? WS_CLOSE_SLOW_CONSUMER
        : code === 'ETHHOOK_ERR_STREAM_CLOSING'
          ? WS_CLOSE_GOING_AWAY
          : WS_CLOSE_POLICY;
    this.ws.close(closeCode, Buffer.from(message).subarray(0, MAX_REASON_BYTES).toString());
    const timer = setTimeout(() => this.ws.terminate(), this.closeGraceMs);
    timer.unref();
    this.ws.once('close', () => clearTimeout(timer));
  }
}
