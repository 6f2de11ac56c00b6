/**
 * The live event streams: the hub publishers call, and the transports the admin API serves.
 *
 *   const hub = new StreamHub({ registry, log });
 *   createAdminBehaviour({ …, streams: streamTransports(hub, config.streams) });
 *   hub.publish(logStreamEvent(chainId, log, seenAt));                       // the Matcher
 *   hub.publish({ kind: 'governance', seq, type, at: Date.now() });          // the GovernanceStream
 */
export { StreamHub, DEFAULT_CLIENT_BUFFER_EVENTS, type StreamHubOptions, type StreamHubStats } from './hub.ts';
export {
  streamTransports,
  WS_EVENTS_PATH,
  SSE_EVENTS_PATH,
  STREAMING_HEALTH_PATH,
  type StreamsConfig,
  type StreamTransportsOptions,
  type StreamingHealth,
} from './transports.ts';
export {
  STREAM_EVENT_KINDS,
  logStreamEvent,
  streamEventSchema,
  logStreamEventSchema,
  governanceStreamEventSchema,
  streamMessageSchema,
  type StreamEvent,
  type StreamEventKind,
  type LogStreamEvent,
  type GovernanceStreamEvent,
  type StreamMessage,
} from './events.ts';
export { parseStreamQuery, streamQuerySchema, type StreamFilter } from './filter.ts';
export { streamErrorCodes, type StreamErrorCode } from './errors.ts';
export { STREAM_METRIC_NAMES } from './metrics.ts';
export { WS_CLOSE_SLOW_CONSUMER, WS_CLOSE_GOING_AWAY } from './websocket.ts';
