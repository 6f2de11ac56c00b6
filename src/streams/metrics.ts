/**
 * The live streams' Prometheus metrics. Names are fixed (alerts, dashboards and runbooks use them):
 *
 *   events_emitted_total                    counter  events published to the hub
 *   websocket_connections                   gauge    open /v1/ws/events connections
 *   sse_connections                         gauge    open /v1/sse/events connections
 *   stream_messages_sent_total{transport}   counter  events written to clients; transport ∈ websocket, sse
 *
 * The hot path only bumps plain numbers (`StreamCounters`); prom-client reads them at scrape time.
 * Created once per registry (memoized), so several hubs or admin incarnations in one process share them.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export const STREAM_METRIC_NAMES = [
  'events_emitted_total',
  'websocket_connections',
  'sse_connections',
  'stream_messages_sent_total',
] as const;

export const TRANSPORTS = ['websocket', 'sse'] as const;
export type Transport = (typeof TRANSPORTS)[number];

export interface StreamCounters {
  emitted: number;
  sent: Record<Transport, number>;
  connections: Record<Transport, number>;
}

const byRegistry = new WeakMap<Registry, StreamCounters>();

export function newStreamCounters(): StreamCounters {
  return { emitted: 0, sent: { websocket: 0, sse: 0 }, connections: { websocket: 0, sse: 0 } };
}

export function streamCounters(registry: Registry): StreamCounters {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const counters = newStreamCounters();
  const registers = [registry];
  let emittedReported = 0;
  const sentReported: Record<Transport, number> = { websocket: 0, sse: 0 };
  new Counter({
    name: 'events_emitted_total',
    help: 'Events published to the live stream hub',
    registers,
    collect() {
      this.inc(counters.emitted - emittedReported);
      emittedReported = counters.emitted;
    },
  });
  new Gauge({
    name: 'websocket_connections',
    help: 'Open /v1/ws/events connections',
    registers,
    collect() {
      this.set(counters.connections.websocket);
    },
  });
  new Gauge({
    name: 'sse_connections',
    help: 'Open /v1/sse/events connections',
    registers,
    collect() {
      this.set(counters.connections.sse);
    },
  });
  new Counter({
    name: 'stream_messages_sent_total',
    help: 'Events written to live stream clients, by transport',
    labelNames: ['transport'] as const,
    registers,
    collect() {
      for (const transport of TRANSPORTS) {
        this.inc({ transport }, counters.sent[transport] - sentReported[transport]);
        sentReported[transport] = counters.sent[transport];
      }
    },
  });
  byRegistry.set(registry, counters);
  return counters;
}
