/**
 * Live event stream error codes. Refusals answer with the admin API's body
 * `{ "error": { "code", "message", "field"? } }` (before a WebSocket upgrade too); a client dropped
 * after it was admitted gets the code in its close notice (WebSocket close reason, SSE `event: error`).
 * Authentication and bad filters use the admin API's own codes (ETHHOOK_ERR_ADMIN_UNAUTHORIZED,
 * ETHHOOK_ERR_ADMIN_FORBIDDEN, ETHHOOK_ERR_ADMIN_INVALID_REQUEST).
 */
import { defineErrorCodes } from '../runtime/errors.ts';

export const streamErrorCodes = defineErrorCodes({
  ETHHOOK_ERR_STREAM_LIMIT: {
    summary: 'the transport is at streams.maxWebsocketConnections / maxSseConnections; retry later',
    httpStatus: 503,
  },
  ETHHOOK_ERR_STREAM_ORIGIN_FORBIDDEN: { summary: "the request's Origin is not in admin.corsOrigins", httpStatus: 403 },
  ETHHOOK_ERR_STREAM_UPGRADE_REQUIRED: {
    summary: '/v1/ws/events is a WebSocket endpoint; send an Upgrade: websocket request',
    httpStatus: 426,
  },
  ETHHOOK_ERR_STREAM_SLOW_CONSUMER: {
    summary: 'a stream client did not read fast enough, its buffer filled and it was dropped',
    httpStatus: 429,
  },
  ETHHOOK_ERR_STREAM_CLOSING: {
    summary: 'the admin API is stopping; stream clients are disconnected and should reconnect',
    httpStatus: 503,
  },
});

export type StreamErrorCode = keyof typeof streamErrorCodes;
