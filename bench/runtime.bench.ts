/**
 * bench:runtime — the kernel's hot paths, with peers measured in the same run:
 *   tell throughput through one actor (metrics on and off), ask round-trip p50/p99, restart latency
 *   (panic to next handled message), forked-placement ask p50, and the same tell workload on nact and on
 *   comedy's in-memory actors.
 *
 * Tell throughput is a contest with the same rules for everyone (bench/peers/workload.ts): four
 * contestants (ethhook with metrics, ethhook without, nact, comedy), each first given one warm-up pass
 * of WARM_UP_MESSAGES, then ROUNDS rounds of MESSAGES tells each. A pass starts the contestant's runtime,
 * makes a fresh actor, times the tells until the last is handled, and stops the runtime; a full GC runs
 * before every pass (untimed), so no pass pays for the previous one's garbage. The rounds interleave the
 * contestants, each round starting one contestant later, so a burst of load from other work on the
 * machine, or the order, favours nobody. Each contestant's figures are the median and the best of its
 * rounds; the ratios divide ethhook's by each peer's, median by median and best by best.
 * MESSAGES is the same for all and sized so that the slowest peers' rounds keep the whole run near a
 * minute and a half. Absolute numbers drift on shared machines: read the ratios.
 * Env: BENCH_MESSAGES (500000), BENCH_WARM_UP (50000), BENCH_ROUNDS (7).
 * Last line: one JSON object.
 */
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createLogger } from '../src/runtime/log.ts';
import type { ActorSystem } from '../src/runtime/system.ts';
import { startSystem } from '../src/supervision/index.ts';
import { comedyTellPerSecond } from './peers/comedy.ts';
import { forkedAskLatencies } from './peers/forked.ts';
import { nactTellPerSecond } from './peers/nact.ts';
import { countdown, tellsPerSecond, type TellRunner } from './peers/workload.ts';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 500_000);
const WARM_UP_MESSAGES = Number(process.env.BENCH_WARM_UP ?? 50_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const quiet = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

async function counterSystem(metrics: boolean, capacity: number, count: () => void): Promise<ActorSystem> {
  return startSystem(
    {
      kind: 'supervisor',
      name: 'root',
      strategy: 'one-for-one',
      children: [
        {
          kind: 'worker',
          name: 'counter',
          mailbox: { capacity },
          behaviour: () => ({ receive: () => count() }),
        },
      ],
    },
    { logger: quiet, metrics },
  );
}

/** ethhook's runner for the tell workload: a system with one counting worker whose mailbox holds every tell. */
function ethhookTells(metrics: boolean): TellRunner {
  return async (messages) => {
    const counter = countdown();
    const system = await counterSystem(metrics, messages, counter.count);
    try {
      const ref = system.lookup<{ i: number }>('counter')!;
      const tell = (msg: { i: number }) => {
        if (!ref.tell(msg)) throw new Error('bench:runtime: a tell was refused');
      };
      return await tellsPerSecond({ tell, handled: counter.handled }, messages);
    } finally {
      await system.shutdown('bench');
    }
  };
}

async function askLatencies(n: number): Promise<number[]> {
  const system = await counterSystem(true, 1_000, () => {});
  const ref = system.lookup('counter')!;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await ref.ask({ i });
    out.push((performance.now() - t0) * 1000);
  }
  await system.shutdown('bench');
  return out.slice(n / 10).sort((a, b) => a - b);
}

async function restartLatencies(n: number): Promise<number[]> {
  let handled: (() => void) | null = null;
  const system = await startSystem(
    {
      kind: 'supervisor',
      name: 'root',
      strategy: 'one-for-one',
      intensity: { maxRestarts: n * 2, withinMs: 60_000 },
      backoff: { minMs: 0, maxMs: 0, jitter: 0 },
      children: [
        {
          kind: 'worker',
          name: 'w',
          maxConsecutivePanics: 1,
          behaviour: () => ({
            receive: (m: string) => {
              if (m === 'panic') throw new Error('bench panic');
              handled?.();
            },
          }),
        },
      ],
    },
    { logger: quiet },
  );
  const ref = system.lookup<string>('w')!;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const done = new Promise<void>((r) => (handled = r));
    const t0 = performance.now();
    ref.tell('panic');
    ref.tell('next');
    await done;
    out.push(performance.now() - t0);
  }
  await system.shutdown('bench');
  return out.sort((a, b) => a - b);
}

interface Contestant {
  name: string;
  run: TellRunner;
  rates: number[];
}
const contestant = (name: string, run: TellRunner): Contestant => ({ name, run, rates: [] });
const ours = contestant('ethhook', ethhookTells(true));
const oursNoMetrics = contestant('ethhook (metrics off)', ethhookTells(false));
const nact = contestant('nact', nactTellPerSecond);
const comedy = contestant('comedy', comedyTellPerSecond);
const contestants = [ours, oursNoMetrics, nact, comedy];
const pass = (c: Contestant, messages: number) => {
  gc();
  return c.run(messages);
};
process.stdout.write(
  `tell workload: ${MESSAGES.toLocaleString()} tells per round, ${ROUNDS} rounds, after one warm-up pass of ${WARM_UP_MESSAGES.toLocaleString()}, for every contestant\n`,
);
for (const c of contestants) await pass(c, WARM_UP_MESSAGES);
for (let r = 0; r < ROUNDS; r++) {
  for (let k = 0; k < contestants.length; k++) {
    const c = contestants[(r + k) % contestants.length]!;
    c.rates.push(await pass(c, MESSAGES));
  }
}
const mid = (c: Contestant) => median(c.rates);
const best = (c: Contestant) => Math.max(...c.rates);
const asks = await askLatencies(50_000);
const restarts = await restartLatencies(2000);
const forked = (await forkedAskLatencies(2000)).sort((a, b) => a - b);

const ratio = (a: number, b: number) => Number((a / b).toFixed(1));
const result = {
  tell_per_s: Math.round(mid(ours)),
  tell_per_s_best: Math.round(best(ours)),
  tell_per_s_no_metrics: Math.round(mid(oursNoMetrics)),
  tell_per_s_no_metrics_best: Math.round(best(oursNoMetrics)),
  metrics_cost_pct: Number((((mid(oursNoMetrics) - mid(ours)) / mid(oursNoMetrics)) * 100).toFixed(1)),
  ask_p50_us: Number(percentile(asks, 0.5).toFixed(2)),
  ask_p99_us: Number(percentile(asks, 0.99).toFixed(2)),
  restart_p50_ms: Number(percentile(restarts, 0.5).toFixed(3)),
  forked_ask_p50_us: Number(percentile(forked, 0.5).toFixed(1)),
  nact_tell_per_s: Math.round(mid(nact)),
  nact_tell_per_s_best: Math.round(best(nact)),
  comedy_tell_per_s: Math.round(mid(comedy)),
  comedy_tell_per_s_best: Math.round(best(comedy)),
  vs_nact: ratio(mid(ours), mid(nact)),
  vs_nact_best: ratio(best(ours), best(nact)),
  vs_comedy: ratio(mid(ours), mid(comedy)),
  vs_comedy_best: ratio(best(ours), best(comedy)),
  messages: MESSAGES,
  warm_up: WARM_UP_MESSAGES,
  rounds: ROUNDS,
};
for (const c of contestants) {
  process.stdout.write(
    `${c.name.padEnd(22)} tell/s median ${Math.round(mid(c)).toLocaleString()}, best ${Math.round(best(c)).toLocaleString()} (rounds: ${c.rates.map(Math.round).join(', ')})\n`,
  );
}
process.stdout.write(`metrics cost ${result.metrics_cost_pct}% (medians)\n`);
process.stdout.write(`ask p50 ${result.ask_p50_us} us, p99 ${result.ask_p99_us} us\n`);
process.stdout.write(`restart p50 ${result.restart_p50_ms} ms; forked ask p50 ${result.forked_ask_p50_us} us\n`);
process.stdout.write(
  `ethhook vs nact x${result.vs_nact} (median) x${result.vs_nact_best} (best); vs comedy x${result.vs_comedy} (median) x${result.vs_comedy_best} (best)\n`,
);
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
