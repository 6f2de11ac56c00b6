/**
 * Named chaos scenarios: a default duration, a traffic pattern, and lanes of faults. A lane is one
 * fault kind repeating every `everyMs` (a range), counted from the end of the previous occurrence's
 * hold, so a lane never overlaps itself; lanes run concurrently, so in `everything` a kill can land
 * during a reorg while the receiver fails and an actor is stopped.
 *
 * `schedule(scenario, seed, seconds)` draws the whole plan up front from the seed: which faults, when
 * (ms from the start), with which parameters. Each lane has its own RNG (seed and lane index), and
 * the first occurrence of every lane falls within the first 40% of the run, so even a short run sees
 * every kind of fault of its scenario. Only occurrences that start before `seconds` run.
 *
 * A run on PostgreSQL (`store: 'postgres'`) adds the scenario's `postgresLanes` after its lanes (the
 * database's own faults: `store-outage`), and a cluster run (`--cluster N`, on PostgreSQL) its
 * `clusterLanes` after those (kill-holder, pause, resize); the plan of the other lanes is the same
 * either way. `lanesOf(scenario, store, cluster)` is the lanes a run has.
 */
import { mulberry32 } from '../test/support/receiver.ts';
import { FAULTS, type Fault, type FaultKind } from './faults.ts';
import type { TrafficPattern } from './traffic.ts';

export interface Lane {
  kind: FaultKind;
  everyMs: readonly [number, number];
}

export interface Scenario {
  name: string;
  summary: string;
  seconds: number;
  traffic: TrafficPattern;
  lanes: readonly Lane[];
  /** Lanes added when the node runs on PostgreSQL. */
  postgresLanes?: readonly Lane[];
  /** Lanes added when a cluster runs (after the PostgreSQL lanes). */
  clusterLanes?: readonly Lane[];
}

export type ChaosStore = 'level' | 'postgres';

export interface ScheduledFault {
  atMs: number;
  fault: Fault;
}

const TRAFFIC: TrafficPattern = { ticksPerSecond: 5, logsPerTick: [1, 4] };

export const SCENARIOS: Readonly<Record<string, Scenario>> = {
  'kill-storm': {
    name: 'kill-storm',
    summary: 'kill -9 of the node every 2-5 s (down up to 1.5 s, some kills while it starts), restarted on the same data dir',
    seconds: 30,
    traffic: TRAFFIC,
    lanes: [{ kind: 'kill', everyMs: [2_000, 5_000] }],
  },
  'flaky-network': {
    name: 'flaky-network',
    summary: "the node's chain connections cut for 0.5-3 s every 1.5-4 s (WebSocket and HTTP fallback alike)",
    seconds: 30,
    traffic: TRAFFIC,
    lanes: [{ kind: 'net-cut', everyMs: [1_500, 4_000] }],
  },
  reorgs: {
    name: 'reorgs',
    summary: 'a reorg of depth 1-3 every 1.5-3.5 s, the new branch carrying other logs',
    seconds: 30,
    traffic: TRAFFIC,
    lanes: [{ kind: 'reorg', everyMs: [1_500, 3_500] }],
  },
  'broken-receiver': {
    name: 'broken-receiver',
    summary: 'the receiver fails 30-100% of requests (500s and hangs) for 2-5 s, every 1-3 s',
    seconds: 30,
    traffic: TRAFFIC,
    lanes: [{ kind: 'receiver-fail', everyMs: [1_000, 3_000] }],
  },
  'actor-restarts': {
    name: 'actor-restarts',
    summary: 'admin API restarts of a random pipeline actor every 1-3 s, and stops of 0.5-3 s every 2-4 s',
    seconds: 30,
    traffic: TRAFFIC,
    lanes: [
      { kind: 'actor-restart', everyMs: [1_000, 3_000] },
      { kind: 'actor-stop', everyMs: [2_000, 4_000] },
    ],
  },
  'mailbox-flood': {
    name: 'mailbox-flood',
    summary: 'bursts of blocks full of logs, empty blocks and subscription changes every 4-8 s',
    seconds: 30,
    traffic: TRAFFIC,
    lanes: [{ kind: 'flood', everyMs: [4_000, 8_000] }],
  },
  everything: {
    name: 'everything',
    summary: 'every fault at once, each kind on its own lane: kills, cuts, reorgs, a failing receiver, actor restarts and stops, floods',
    seconds: 45,
    traffic: TRAFFIC,
    lanes: [
      { kind: 'kill', everyMs: [4_000, 8_000] },
      { kind: 'net-cut', everyMs: [3_000, 6_000] },
      { kind: 'reorg', everyMs: [2_000, 5_000] },
      { kind: 'receiver-fail', everyMs: [3_000, 6_000] },
      { kind: 'actor-restart', everyMs: [2_000, 5_000] },
      { kind: 'actor-stop', everyMs: [3_000, 6_000] },
      { kind: 'flood', everyMs: [8_000, 12_000] },
    ],
    postgresLanes: [{ kind: 'store-outage', everyMs: [6_000, 10_000] }],
    clusterLanes: [
      { kind: 'kill-holder', everyMs: [5_000, 9_000] },
      { kind: 'pause', everyMs: [6_000, 10_000] },
      { kind: 'resize', everyMs: [5_000, 9_000] },
    ],
  },
};

export function lanesOf(scenario: Scenario, store: ChaosStore, cluster = false): readonly Lane[] {
  if (store !== 'postgres') return scenario.lanes;
  return [...scenario.lanes, ...(scenario.postgresLanes ?? []), ...(cluster ? (scenario.clusterLanes ?? []) : [])];
}

/** The plan of a run: for each lane, its occurrences in time order. */
export function schedule(
  scenario: Scenario,
  seed: number,
  seconds: number,
  store: ChaosStore = 'level',
  cluster = false,
): ScheduledFault[][] {
  const durationMs = seconds * 1_000;
  return lanesOf(scenario, store, cluster).map((lane, i) => {
    const random = mulberry32((seed * 0x9e3779b1 + i * 0x85ebca6b) >>> 0);
    const drawGap = () => lane.everyMs[0] + random() * (lane.everyMs[1] - lane.everyMs[0]);
    const plan: ScheduledFault[] = [];
    let atMs = random() * Math.min(lane.everyMs[1], 0.4 * durationMs);
    while (atMs < durationMs) {
      const fault = FAULTS[lane.kind](random);
      plan.push({ atMs: Math.round(atMs), fault });
      atMs += fault.holdMs + drawGap();
    }
    return plan;
  });
}
