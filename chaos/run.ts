/**
 * The chaos runner: `npm run chaos -- <scenario> [--seed N] [--seconds N] [--converge-seconds N]
 * [--store level|postgres] [--cluster N]` (or `runChaos(options)` in process, as
 * test/e2e/chaos.e2e.test.ts does).
 *
 * `--store postgres` runs the node on PostgreSQL, a server the run starts for itself (its own data
 * directory and port) and stops at the end, and adds the scenario's PostgreSQL lanes (the database
 * stopped and started: store-outage). The invariant reads only the chain and the receiver, and the
 * runner reads the node through its admin API, so the check is the same on either store.
 *
 * `--cluster N` (PostgreSQL; `--store postgres` is implied, `--store level` refused) runs N instances
 * on one schema (cluster.ts) instead of one node, and adds the scenario's cluster lanes (the chain's
 * ingesting instance killed or paused past its lease, the cluster grown and shrunk by one). The
 * invariant is the same: the receiver cannot tell which instance sent a webhook. The run is ok only
 * if every instance exits 0 on the final SIGTERM.
 *
 * One run: start anvil, a TCP proxy in front of it, a receiver and one node process following the
 * chain through the proxy (context.ts); create two endpoints and three subscriptions through `/v1`;
 * send traffic (traffic.ts) while the scenario's fault lanes run their seeded plan (scenarios.ts,
 * faults.ts) for `seconds`; let the faults in progress finish, stop the traffic, heal everything,
 * mine the deepest subscription's confirmations, then wait (at most `convergeSeconds`, default 60)
 * until nothing is owed any more (invariant.ts: no pair lost, no retraction missing), and a few more
 * seconds for the outbox to drain so duplicates are counted; check the invariant on what the chain and
 * the receiver say then, and stop the node with SIGTERM. The run is ok when the invariant holds, the
 * node never exited unless a fault killed it (`unexpectedExits`) and its final exit code is 0.
 * Prints a human summary, then exactly one JSON line:
 *   { scenario, seed, seconds, faults: { <kind>: count }, expected, delivered, duplicates, lost, ok, ... }
 * The CLI exits 0 when ok, 1 when not (or on an error), 130 on Ctrl-C. Every process and server the
 * run started is stopped at the end, whatever happened; everything listens on 127.0.0.1 only.
 */
import { setMaxListeners } from 'node:events';
import { pathToFileURL } from 'node:url';
import { readMetric } from '../test/support/node-process.ts';
import { mulberry32 } from '../test/support/receiver.ts';
import { sleep } from '../test/e2e/e2e-chain.ts';
import type { FinalExit, UnexpectedExit } from './cluster.ts';
import { ChaosContext, MAX_CONFIRMATIONS, type TimelineEntry } from './context.ts';
import { FAULT_KINDS, FaultSkipped, type FaultKind } from './faults.ts';
import { checkInvariant, FAILURES, type Observation, type Verdict } from './invariant.ts';
import { lanesOf, SCENARIOS, schedule, type ChaosStore, type ScheduledFault } from './scenarios.ts';
import { startTraffic } from './traffic.ts';

export interface ChaosOptions {
  scenario: string;
  seed?: number;
  /** How long faults are injected; default: the scenario's. */
  seconds?: number;
  /** How long the node gets, once healed, to satisfy the invariant. Default 60. */
  convergeSeconds?: number;
  /** Where the human summary goes, line by line. Default: stdout. */
  print?: (line: string) => void;
  signal?: AbortSignal;
  /** The node's store. Default `level` (`postgres` with `cluster`). */
  store?: ChaosStore;
  /** Instances of a cluster on PostgreSQL; default one node. */
  cluster?: number;
}

export interface ChaosResult {
  scenario: string;
  seed: number;
  seconds: number;
  store: ChaosStore;
  /** Instances the run started with; null for one node. */
  cluster: number | null;
  /** The fault kinds the run's lanes inject. */
  kinds: FaultKind[];
  /** Faults injected, by kind (skipped and failed ones not counted; a doubled kill counts two). */
  faults: Record<FaultKind, number>;
  expected: number;
  delivered: number;
  duplicates: number;
  lost: number;
  /** The invariant holds, every fault got through (injected and healed), no unexpected exit, final exit code 0. */
  ok: boolean;
  verdict: Verdict;
  /** What the verdict was computed on (tests doctor it to prove the check can fail). */
  observation: Observation;
  timeline: TimelineEntry[];
  skipped: number;
  /** Faults that could not be injected or healed; any fails the run (a fault that never happened tests nothing). */
  failed: string[];
  /** From the heal to nothing owed any more; null when it never came. */
  convergeMs: number | null;
  /** Node exits no fault ordered (crashes, starts that timed out); each fails the run. */
  unexpectedExits: UnexpectedExit[];
  /** How the node exited on the run's SIGTERM (in a cluster the first instance that did not exit 0, else code 0); anything but code 0 fails the run. */
  finalExit: FinalExit;
  /** Each instance's exit on the run's SIGTERM, by name. */
  finalExits: Record<string, FinalExit>;
  /** After each kill of the chain's holder, ms until another instance held the chain (null: none within the wait). */
  takeovers: Array<number | null>;
  traffic: { ticks: number; logs: number; errors: number };
  deadLetters: number | undefined;
}

const DEFAULT_SEED = 1;
const DEFAULT_CONVERGE_SECONDS = 60;
const DRAIN_MS = 5_000;

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const scenario = SCENARIOS[options.scenario];
  if (!scenario) throw new Error(`unknown scenario "${options.scenario}"; one of: ${Object.keys(SCENARIOS).join(', ')}`);
  const seed = options.seed ?? DEFAULT_SEED;
  const seconds = options.seconds ?? scenario.seconds;
  const convergeMs = (options.convergeSeconds ?? DEFAULT_CONVERGE_SECONDS) * 1_000;
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const cluster = options.cluster;
  if (cluster !== undefined && (!Number.isInteger(cluster) || cluster < 1))
    throw new Error(`cluster must be a whole number ≥ 1, not ${cluster}`);
  if (cluster !== undefined && options.store === 'level') throw new Error('a cluster runs on PostgreSQL: not with store level');
  const store = options.store ?? (cluster === undefined ? 'level' : 'postgres');
  const plan = schedule(scenario, seed, seconds, store, cluster !== undefined);
  const outcome = { skipped: 0, failed: [] as string[] };

  const ctx = await ChaosContext.create({
    seed: seed + 2,
    store,
    ...(cluster === undefined ? {} : { cluster }),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  try {
    await ctx.setup();
    const nodes = ctx.cluster.instances.map((i) => `${ctx.cluster.label(i)}pid ${i.node!.pid} at ${i.node!.adminUrl}`).join(', ');
    ctx.record(
      'setup',
      `${cluster === undefined ? 'node' : `${cluster} instances:`} ${nodes}, chain through proxy :${ctx.proxy.port}, receiver ${ctx.receiver.url}, ${ctx.subscriptions.length} subscriptions on ${ctx.contract}`,
    );
    const where = cluster === undefined ? (store === 'postgres' ? 'PostgreSQL' : 'LevelDB') : `a cluster of ${cluster} on PostgreSQL`;
    print(`chaos ${scenario.name} on ${where}, seed ${seed}, ${seconds} s: ${scenario.summary}`);
    print(
      `  traffic ${scenario.traffic.ticksPerSecond} tx/s of ${scenario.traffic.logsPerTick.join('-')} logs; ${plan.flat().filter((p) => p.atMs < seconds * 1_000).length} faults planned`,
    );

    const traffic = startTraffic(ctx, scenario.traffic, mulberry32(seed + 1));
    const runStart = Date.now();
    const endAt = runStart + seconds * 1_000;
    const lanes = plan.map((events) => runLane(ctx, events, runStart, endAt, outcome));
    await pause(seconds * 1_000, options.signal);
    await Promise.all(lanes);
    const sent = await traffic.stop();
    if (ctx.aborted) throw new Error('aborted');

    await ctx.healAll();
    await ctx.chainLock.run(() => ctx.chain.anvil.mine(MAX_CONFIRMATIONS));
    ctx.record('heal', `everything healed; ${MAX_CONFIRMATIONS} blocks mined for the deepest subscription`);
    const healedAt = Date.now();
    const chainId = Number.parseInt(await ctx.chain.anvil.rpc<string>('eth_chainId'), 16);
    const canonical = await ctx.contractLogs();
    const observe = (): Observation => ({
      chainId,
      canonical,
      orphaned: [...ctx.orphaned],
      subscriptions: ctx.subscriptions,
      requests: [...ctx.receiver.requests],
    });
    let verdict = checkInvariant(observe());
    while (verdict.owed > 0 && Date.now() - healedAt < convergeMs && !ctx.aborted) {
      await sleep(250);
      verdict = checkInvariant(observe());
    }
    const converged = verdict.owed === 0 ? Date.now() - healedAt : null;
    if (ctx.aborted) throw new Error('aborted');
    // Stragglers (retries of answers lost in a kill) still count as duplicates: let the outbox drain.
    const drainUntil = Date.now() + DRAIN_MS;
    let deadLetters: number | undefined;
    while (Date.now() < drainUntil) {
      const metrics = String((await ctx.admin<string>('GET', '/metrics').catch(() => ({ body: '' }))).body);
      deadLetters = readMetric(metrics, 'webhook_dead_letters');
      if (readMetric(metrics, 'webhook_queue_depth') === 0) break;
      await sleep(250);
    }
    const observation = observe();
    verdict = checkInvariant(observation);
    const faults = Object.fromEntries(FAULT_KINDS.map((k) => [k, ctx.injections.get(k) ?? 0])) as Record<FaultKind, number>;
    ctx.record(
      'converged',
      converged === null ? `still owed after ${convergeMs / 1_000} s` : `nothing owed ${converged} ms after the heal`,
    );
    const finalExit = await ctx.close();
    const finalExits = Object.fromEntries(ctx.cluster.finalExits);
    ctx.record(
      'stop',
      `SIGTERM: ${
        finalExit === null
          ? 'no node running'
          : cluster === undefined
            ? `exit ${finalExit.code ?? finalExit.signal}`
            : Object.entries(finalExits)
                .map(([id, e]) => `${id} exit ${e === null ? 'none' : (e.code ?? e.signal)}`)
                .join(', ')
      }`,
    );

    const result: ChaosResult = {
      scenario: scenario.name,
      seed,
      seconds,
      store,
      cluster: cluster ?? null,
      kinds: [...new Set(lanesOf(scenario, store, cluster !== undefined).map((l) => l.kind))],
      faults,
      expected: verdict.expected,
      delivered: verdict.delivered,
      duplicates: verdict.duplicates,
      lost: verdict.lost,
      ok: runOk({ verdict, unexpectedExits: ctx.cluster.unexpectedExits, finalExit, failed: outcome.failed }),
      verdict,
      observation,
      timeline: ctx.timeline,
      skipped: outcome.skipped,
      failed: outcome.failed,
      convergeMs: converged,
      unexpectedExits: ctx.cluster.unexpectedExits,
      finalExit,
      finalExits,
      takeovers: [...ctx.takeovers],
      traffic: sent,
      deadLetters,
    };
    summarize(result, ctx, print);
    return result;
  } finally {
    await ctx.close();
  }
}

/**
 * Whether a run is ok: the invariant holds, every fault got through (injected and healed), the node never
 * exited unless a fault killed it, and it exited 0 on the final SIGTERM.
 */
export function runOk(r: Pick<ChaosResult, 'verdict' | 'unexpectedExits' | 'finalExit' | 'failed'>): boolean {
  return r.verdict.ok && r.unexpectedExits.length === 0 && r.finalExit?.code === 0 && r.failed.length === 0;
}

/** Runs one lane's faults at their planned times: inject, hold, heal. Stops starting new ones at `endAt`. */
async function runLane(
  ctx: ChaosContext,
  events: readonly ScheduledFault[],
  runStart: number,
  endAt: number,
  outcome: { skipped: number; failed: string[] },
): Promise<void> {
  for (const { atMs, fault } of events) {
    await pause(runStart + atMs - Date.now(), ctx.options.signal);
    if (Date.now() >= endAt || ctx.aborted) return;
    try {
      ctx.injected(fault.kind, await fault.inject(ctx));
    } catch (err) {
      if (err instanceof FaultSkipped) {
        outcome.skipped++;
        ctx.record(fault.kind, `skipped (${fault.plan}): ${err.message}`);
      } else {
        outcome.failed.push(`${fault.kind}: ${(err as Error).message}`);
        ctx.record(fault.kind, `FAILED to inject (${fault.plan}): ${(err as Error).message}`);
      }
      continue;
    }
    if (!fault.heal) continue;
    await pause(fault.holdMs, ctx.options.signal);
    try {
      await fault.heal(ctx);
    } catch (err) {
      outcome.failed.push(`${fault.kind} heal: ${(err as Error).message}`);
      ctx.record(fault.kind, `FAILED to heal: ${(err as Error).message}`);
    }
  }
}

/** Sleeps `ms` (nothing when ≤ 0), or less when the signal aborts. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** The JSON line: the figures the brief names first, then what explains them. */
export function jsonLine(r: ChaosResult): string {
  return JSON.stringify({
    scenario: r.scenario,
    seed: r.seed,
    seconds: r.seconds,
    store: r.store,
    ...(r.cluster === null ? {} : { cluster: r.cluster }),
    faults: r.faults,
    expected: r.expected,
    delivered: r.delivered,
    duplicates: r.duplicates,
    lost: r.lost,
    ok: r.ok,
    retries: r.verdict.retries,
    requests: r.verdict.requests,
    removed: r.verdict.removed,
    ...Object.fromEntries(FAILURES.filter((k) => k !== 'lost').map((k) => [k, r.verdict[k]])),
    skippedFaults: r.skipped,
    failedFaults: r.failed.length,
    deadLetters: r.deadLetters ?? null,
    convergeMs: r.convergeMs,
    unexpectedExits: r.unexpectedExits.length,
    finalExitCode: r.finalExit?.code ?? null,
    ...(r.cluster === null
      ? {}
      : {
          takeovers: r.takeovers.filter((ms) => ms !== null).length,
          takeoverMaxMs: Math.max(0, ...r.takeovers.filter((ms) => ms !== null)),
          noTakeover: r.takeovers.filter((ms) => ms === null).length,
        }),
  });
}

function summarize(r: ChaosResult, ctx: ChaosContext, print: (line: string) => void): void {
  const v = r.verdict;
  print('timeline (s since start):');
  for (const e of r.timeline) print(`  ${e.t.toFixed(1).padStart(6)}  ${e.kind.padEnd(14)} ${e.detail}`);
  print(
    `faults injected: ${
      FAULT_KINDS.filter((k) => r.faults[k] > 0)
        .map((k) => `${k} ${r.faults[k]}`)
        .join(', ') || 'none'
    }` + `${r.skipped ? `; ${r.skipped} skipped` : ''}${r.failed.length ? `; ${r.failed.length} FAILED` : ''}`,
  );
  print(
    `traffic: ${r.traffic.ticks} tx, ${r.traffic.logs} logs${r.traffic.errors ? ` (${r.traffic.errors} ticks failed)` : ''}; ${r.observation.canonical.length} canonical logs at the end`,
  );
  print(
    `deliveries: ${v.delivered}/${v.expected} expected (log, subscription) pairs, ${v.lost} lost${v.lost ? ` (e.g. ${v.lostSample.join(', ')})` : ''}; ` +
      `${v.requests} requests, ${v.retries} retries, ${v.duplicates} duplicate 2xx`,
  );
  print(
    `reorgs: ${v.orphanedDelivered} delivered log.created orphaned, ${v.removed} log.removed delivered, ${v.missingRemovals} missing${v.missingRemovals ? ` (e.g. ${v.missingRemovalSample.join(', ')})` : ''}, ${v.wrongRemovals} of canonical logs`,
  );
  print(
    `order: ${v.removalsWithoutCreation} log.removed without their log.created, ${v.removalsBeforeCreation} before it, ` +
      `${v.redeliveredWithoutRemoval} log.created of a new generation while another was not retracted`,
  );
  print(
    `checks: ${v.badSignatures} bad signatures, ${v.bodyMismatches} ids with differing bodies, ${v.idMismatches} ids not matching their payload, ` +
      `${v.payloadMismatches} bodies disagreeing with the chain${v.payloadMismatches ? ` (e.g. ${v.payloadSample.join(', ')})` : ''}, ${v.unexpected} unexpected deliveries`,
  );
  print(
    `convergence: ${r.convergeMs === null ? 'NOT reached' : `nothing owed ${r.convergeMs} ms after the heal`}; dead letters ${r.deadLetters ?? 'unknown'}`,
  );
  const finalExit = r.finalExit === null ? 'no node running' : String(r.finalExit.code ?? r.finalExit.signal);
  const processes = ctx.cluster.processes;
  if (r.cluster === null) {
    print(`node: ${processes.length} process(es), ${r.unexpectedExits.length} exit(s) nobody asked for, final SIGTERM exit ${finalExit}`);
  } else {
    const members = ctx.cluster.members().map((i) => i.id);
    const took = r.takeovers.filter((ms) => ms !== null);
    print(
      `cluster: ${r.cluster} instances at the start, ${members.length} at the end (${members.join(', ')}); ${ctx.cluster.instances.length} instances and ${processes.length} processes in all, ` +
        `${r.unexpectedExits.length} exit(s) nobody asked for, final SIGTERM exits ${Object.values(r.finalExits)
          .map((e) => (e === null ? 'none' : String(e.code ?? e.signal)))
          .join(' ')}`,
    );
    print(
      `takeovers: ${took.length} of ${r.takeovers.length} kills of the chain's holder taken over by another instance` +
        `${took.length ? `, within ${Math.min(...took)}-${Math.max(...took)} ms of the kill` : ''}`,
    );
  }
  for (const e of r.unexpectedExits)
    print(
      `  t=${e.t}s ${r.cluster === null ? '' : `${e.id} `}pid ${e.pid} exited ${e.code ?? e.signal}: ${e.lastErrors.join(' | ') || 'no error line'}`,
    );
  for (const [title, min, max] of [
    ['error lines (level ≥ error)', 50, Infinity],
    ['warnings', 40, 50],
  ] as const) {
    const counts = new Map<string, number>();
    for (const n of processes) {
      for (const l of n.logs) {
        const level = l.level ?? 0;
        if (level < min || level >= max) continue;
        const key = `${String(l.code ?? '-')} ${String(l.msg ?? '').slice(0, 100)}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
    if (counts.size === 0) continue;
    print(`node ${title}, by code and message:`);
    for (const [k, n] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, 10)) print(`  ${String(n).padStart(5)}  ${k}`);
  }
  for (const f of r.failed) print(`FAILED: ${f}`);
  const broken = [
    ...FAILURES.filter((k) => v[k] > 0),
    ...(r.unexpectedExits.length > 0 ? ['unexpectedExits'] : []),
    ...(r.finalExit?.code === 0 ? [] : ['finalExitCode']),
    ...(r.failed.length > 0 ? ['failedFaults'] : []),
  ];
  print(`verdict: ${r.ok ? 'OK: nothing lost, nothing wrong delivered, no crash' : `NOT OK: ${broken.join(', ')}`}`);
  print(jsonLine(r));
}

interface CliArgs {
  scenario: string;
  seed?: number;
  seconds?: number;
  convergeSeconds?: number;
  store?: ChaosStore;
  cluster?: number;
}

function parseArgs(argv: readonly string[]): CliArgs {
  const usage = `usage: npm run chaos -- <${Object.keys(SCENARIOS).join('|')}> [--seed N] [--seconds N] [--converge-seconds N] [--store level|postgres] [--cluster N]`;
  const args: Partial<CliArgs> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const number = (name: string) => {
      const value = Number(argv[++i]);
      if (!Number.isFinite(value) || value < 0) throw new Error(`${name} needs a number ≥ 0\n${usage}`);
      return value;
    };
    if (a === '--seed') args.seed = Math.floor(number(a));
    else if (a === '--seconds') args.seconds = number(a);
    else if (a === '--converge-seconds') args.convergeSeconds = number(a);
    else if (a === '--store') {
      const store = argv[++i];
      if (store !== 'level' && store !== 'postgres') throw new Error(`--store is level or postgres\n${usage}`);
      args.store = store;
    } else if (a === '--cluster') {
      const size = number(a);
      if (!Number.isInteger(size) || size < 1) throw new Error(`--cluster needs a whole number ≥ 1\n${usage}`);
      args.cluster = size;
    } else if (a === '--help' || a === '-h') throw new Error(usage);
    else if (!a.startsWith('-') && args.scenario === undefined) args.scenario = a;
    else throw new Error(`unexpected argument "${a}"\n${usage}`);
  }
  if (args.scenario === undefined || !SCENARIOS[args.scenario])
    throw new Error(`${args.scenario ? `unknown scenario "${args.scenario}"\n` : ''}${usage}`);
  if (args.cluster !== undefined && args.store === 'level') throw new Error(`--cluster runs on PostgreSQL: drop --store level\n${usage}`);
  return args as CliArgs;
}

async function main(): Promise<void> {
  let args: CliArgs;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  const abort = new AbortController();
  // Every lane and the traffic wait on it at once: more than Node's default of 10 listeners.
  setMaxListeners(64, abort.signal);
  const onSignal = (signal: NodeJS.Signals) => {
    if (abort.signal.aborted) return;
    process.stderr.write(`\n${signal}: healing nothing, stopping every process of the run...\n`);
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const seed = args.seed ?? DEFAULT_SEED;
  try {
    const result = await runChaos({ ...args, seed, signal: abort.signal });
    process.exitCode = result.ok ? 0 : 1;
  } catch (err) {
    const aborted = abort.signal.aborted;
    process.stderr.write(`chaos: ${aborted ? 'aborted' : ((err as Error).stack ?? String(err))}\n`);
    process.stdout.write(
      `${JSON.stringify({ scenario: args.scenario, seed, seconds: args.seconds ?? SCENARIOS[args.scenario]!.seconds, store: args.store ?? (args.cluster === undefined ? 'level' : 'postgres'), ...(args.cluster === undefined ? {} : { cluster: args.cluster }), ok: false, error: aborted ? 'aborted' : (err as Error).message })}\n`,
    );
    process.exitCode = aborted ? 130 : 1;
  }
  // Everything the run started is stopped; a keep-alive socket or a timer left by a library must not hold the exit.
  process.exit();
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
