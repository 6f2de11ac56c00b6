/**
 * The live event streams on the admin port: what `createAdminBehaviour({ …, streams })` takes.
 *
 *   GET /v1/ws/events         WebSocket (websocket.ts); without an upgrade: 426
 *   GET /v1/sse/events        Server-Sent Events (sse.ts)
 *   GET /v1/health/streaming  read role: { websocket: { connections, max }, sse: { connections, max },
 *                                          totals: { sent, dropped, published } }
 *
 * Both streams take the filters of filter.ts and the admission of admission.ts (read role, token in
 * the header or `access_token`, Origin in `admin.corsOrigins`, `streams.maxWebsocketConnections` /
 * `maxSseConnections`). The hub outlives the admin API's incarnations; each incarnation gets its own
 * transports, and stopping it ends their clients (WebSocket 1001, SSE `event: error`
 * ETHHOOK_ERR_STREAM_CLOSING) so its port is free for the next one.
 *
 * One heartbeat timer per incarnation (`streams.heartbeatMs`) serves both transports; it runs only
 * while a client is connected.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AdminStreams, AdminStreamsContext } from '../actors/admin/behaviour.ts';
import { defineRoute, type Route } from '../actors/admin/router.ts';
import type { NodeConfig } from '../config/schema.ts';
import { refusal, refuseUpgrade, sendRefusal } from './admission.ts';
import type { StreamHub } from './hub.ts';
import { SseTransport } from './sse.ts';
import { WebSocketTransport } from './websocket.ts';

export type StreamsConfig = NodeConfig['streams'];

export const WS_EVENTS_PATH = '/v1/ws/events';
export const SSE_EVENTS_PATH = '/v1/sse/events';
export const STREAMING_HEALTH_PATH = '/v1/health/streaming';

export interface StreamTransportsOptions {
  /** How long a closed client gets to read its close notice before it is cut. Default 2000 ms. */
  closeGraceMs?: number;
}

export interface StreamingHealth {
  websocket: { connections: number; max: number };
  sse: { connections: number; max: number };
  totals: { sent: number; dropped: number; published: number };
}

/** The `streams` option of the admin behaviour, serving `hub` with the limits of `config`. */
export function streamTransports(
  hub: StreamHub,
  config: StreamsConfig,
  options: StreamTransportsOptions = {},
): (context: AdminStreamsContext) => AdminStreams {
  return (context) => new AdminStreamTransports(hub, config, options.closeGraceMs ?? 2000, context);
}

class AdminStreamTransports implements AdminStreams {
  readonly routes: readonly Route[];
  private readonly ws: WebSocketTransport;
  private readonly sse: SseTransport;
  private heartbeatTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly hub: StreamHub,
    private readonly config: StreamsConfig,
    closeGraceMs: number,
    { tokens, corsOrigins, log }: AdminStreamsContext,
  ) {
    const policy = { tokens, corsOrigins };
    this.ws = new WebSocketTransport({ hub, policy, maxConnections: config.maxWebsocketConnections, closeGraceMs, log });
    this.sse = new SseTransport({ hub, policy, maxConnections: config.maxSseConnections, closeGraceMs, log });
    this.routes = [
      defineRoute({
        method: 'GET',
        path: SSE_EVENTS_PATH,
        // Authenticated by admission.ts, which also accepts ?access_token= (EventSource sends no headers).
        auth: 'public',
        handle: ({ req, res }) => {
          this.sse.open(req, res, searchOf(req.url));
          this.startHeartbeat();
        },
      }),
      defineRoute({
        method: 'GET',
        path: WS_EVENTS_PATH,
        auth: 'public',
        handle: ({ res }) =>
          sendRefusal(
            res,
            refusal('ETHHOOK_ERR_STREAM_UPGRADE_REQUIRED', `${WS_EVENTS_PATH} is a WebSocket endpoint; connect with Upgrade: websocket`, {
              headers: { Upgrade: 'websocket' },
            }),
          ),
      }),
      defineRoute({ method: 'GET', path: STREAMING_HEALTH_PATH, auth: 'read', handle: () => ({ json: this.health() }) }),
    ];
  }

  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const pathname = queryAt < 0 ? url : url.slice(0, queryAt);
    if (pathname.replace(/\/+$/, '') !== WS_EVENTS_PATH) {
      return refuseUpgrade(
        socket,
        refusal('ETHHOOK_ERR_ADMIN_ROUTE_NOT_FOUND', `no WebSocket endpoint at ${pathname}; the event stream is ${WS_EVENTS_PATH}`),
      );
    }
    this.ws.upgrade(req, socket, head, searchOf(url));
    this.startHeartbeat();
  }

  async close(): Promise<void> {
    this.stopHeartbeat();
    await Promise.all([this.ws.close(), this.sse.close()]);
  }

  private health(): StreamingHealth {
    const stats = this.hub.stats();
    return {
      websocket: { connections: stats.connections.websocket, max: this.config.maxWebsocketConnections },
      sse: { connections: stats.connections.sse, max: this.config.maxSseConnections },
      totals: { sent: stats.sent, dropped: stats.dropped, published: stats.published },
    };
  }

  private startHeartbeat(): void {
    if (this.heartbeatTimer !== undefined || this.ws.size + this.sse.size === 0) return;
    this.heartbeatTimer = setInterval(() => {
      if (this.ws.size + this.sse.size === 0) return this.stopHeartbeat();
      this.ws.heartbeat();
      this.sse.heartbeat();
    }, this.config.heartbeatMs);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }
}

function searchOf(url: string | undefined): string {
  const queryAt = url?.indexOf('?') ?? -1;
  return queryAt < 0 ? '' : url!.slice(queryAt + 1);
}
