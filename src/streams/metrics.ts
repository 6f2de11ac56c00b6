/**
 * The live streams' Prometheus metrics. Names are fixed (alerts, dashboards and runbooks use them):
 *
 *   events_emitted_total                    counter  events published to the hub
 *   websocket_connections                   gauge    open /v1/ws/events connections
 *   sse_connections                         gauge    open /v1/sse/events connections
 *   stream_messages_sent_total{transport}   counter  events written to clients; transport ∈ websocket, sse
 *
 * and, on a PostgreSQL store, the relay that carries log events between a cluster's instances (relay.ts):
 *
 *   stream_relay_events_total{direction}    counter  log events handed to the other instances (`out`) or
 *                                                    taken from them and published here (`in`)
 *   stream_relay_dropped_total{reason}      counter  log events the relay gave up: `buffer_full` (the store
 *                                                    was slower than the chain), `write_failed`, `closed`
 *                                                    (still buffered at shutdown), `invalid` (unreadable rows)
 *   stream_relay_lag_seconds                gauge    for the last batch taken from another instance: its
 *                                                    age when read, by the database's clock
 *   stream_relay_listening                  gauge    1 while the relay listens for the others' batches
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

export const RELAY_DIRECTIONS = ['out', 'in'] as const;
export type RelayDirection = (typeof RELAY_DIRECTIONS)[number];
export const RELAY_DROP_REASONS = ['buffer_full', 'write_failed', 'closed', 'invalid'] as const;
export type RelayDropReason = (typeof RELAY_DROP_REASONS)[number];

export interface StreamRelayCounters {
  events: Record<RelayDirection, number>;
  dropped: Record<RelayDropReason, number>;
  lagSeconds: number;
  listening: boolean;
}

const relayByRegistry = new WeakMap<Registry, StreamRelayCounters>();

export function newStreamRelayCounters(): StreamRelayCounters {
  return {
    events: { out: 0, in: 0 },
    dropped: { buffer_full: 0, write_failed: 0, closed: 0, invalid: 0 },
    lagSeconds: 0,
    listening: false,
  };
}

export function streamRelayCounters(registry: Registry): StreamRelayCounters {
  const existing = relayByRegistry.get(registry);
  if (existing) return existing;
  const counters = newStreamRelayCounters();
  const registers = [registry];
  const eventsReported: Record<RelayDirection, number> = { out: 0, in: 0 };
  const droppedReported: Record<RelayDropReason, number> = { buffer_full: 0, write_failed: 0, closed: 0, invalid: 0 };
  new Counter({
    name: 'stream_relay_events_total',
    help: 'Log events the stream relay handed to the other instances (out) or took from them (in)',
    labelNames: ['direction'] as const,
    registers,
    collect() {
      for (const direction of RELAY_DIRECTIONS) {
        this.inc({ direction }, counters.events[direction] - eventsReported[direction]);
        eventsReported[direction] = counters.events[direction];
      }
    },
  });
  new Counter({
    name: 'stream_relay_dropped_total',
    help: 'Log events the stream relay gave up, by reason',
    labelNames: ['reason'] as const,
    registers,
    collect() {
      for (const reason of RELAY_DROP_REASONS) {
        this.inc({ reason }, counters.dropped[reason] - droppedReported[reason]);
        droppedReported[reason] = counters.dropped[reason];
      }
    },
  });
  new Gauge({
    name: 'stream_relay_lag_seconds',
    help: "Age of the last batch the stream relay took from another instance, when read (the database's clock)",
    registers,
    collect() {
      this.set(counters.lagSeconds);
    },
  });
  new Gauge({
    name: 'stream_relay_listening',
    help: "1 while the stream relay listens for the other instances' batches",
    registers,
    collect() {
      this.set(counters.listening ? 1 : 0);
    },
  });
  relayByRegistry.set(registry, counters);
  return counters;
}
