/**
 * bench:e2e — the whole pipeline, chain to receiver, as a new user runs it.
 *
 * Processes, all on 127.0.0.1 and all stopped by the bench (also on error, SIGINT and SIGTERM):
 * - a real anvil (npm @foundry-rs/anvil-linux-amd64) with Tick contracts (bench/e2e/chain.ts);
 * - the node as shipped: `node bin/ethhook.mjs start --config <file>` in a child process, a fresh temp
 *   dataDir, dev chain and demo off, the anvil as its only chain, admin on port 0 with a token, shipped
 *   defaults for everything else (bench/e2e/node.ts). Endpoints and subscriptions are created through
 *   its admin API (`POST /v1/endpoints`, `POST /v1/subscriptions`, `POST /v1/endpoints/:id/pause`);
 * - a receiver in its own process that verifies every Standard Webhooks signature with the npm
 *   `standardwebhooks` library, counts valid/invalid and distinct logs per endpoint and records receipt
 *   times (bench/e2e/receiver.ts).
 * Every endpoint has its own receiver path, its own Tick contract and one subscription to it.
 *
 * Phases (BENCH_PHASES, a comma list; default all: backlog,sustained,live,fair,backfill,million):
 * - backlog: BENCH_BACKLOG_LOGS (100,000) logs in transactions of 1,000 logs (one block each, automine),
 *   up to 4 in flight. `e2e_webhooks_per_s` = logs / (first transaction sent → last webhook received);
 *   `anvil_logs_per_s` = logs / (first sent → last mined). Then as many logs in one-log transactions:
 *   automine off, 1,000 transactions per JSON-RPC batch, then `evm_mine` (1,000 one-log transactions
 *   per block): `e2e_small_tx_webhooks_per_s`. Then BENCH_AFTER_SECONDS (60) idle → `rss_after_mb`.
 * - raw (runs with backlog or sustained, or alone): `raw_undici_per_s`, a plain undici POST loop (one
 *   keep-alive Agent, 64 connections, pipelining 1, body read) to the same verifying receiver, bodies the
 *   size of a received webhook, signed beforehand; the best of 3 rounds of BENCH_RAW_REQUESTS (30,000).
 *   It runs during the idle minute after the backlog, when the node does nothing.
 * - sustained: steady rates (BENCH_SUSTAIN_RATES, logs/s: 1000,2000,4000,...,20000), each for
 *   BENCH_SUSTAIN_SECONDS (30), one transaction of rate/10 logs every 100 ms. A rate holds when, over the
 *   window after its first 5 s, neither the node's outbox depth (`webhook_queue_depth` from /metrics)
 *   nor the lag (logs sent − distinct logs received) grows by more than half a second of traffic from
 *   the first third to the last, the final lag is under 2 s of traffic, anvil took >= 90% of the rate,
 *   and everything is received within 60 s after. `sustained_per_s` = the highest rate that holds; the
 *   ladder stops at the first that fails.
 * - live: 5 logs/s (one one-log transaction, so one block, every 200 ms) for BENCH_LIVE_SECONDS (60).
 *   From the node: `pipeline_stage_seconds{stage}` (fetched, matched, committed, sent, answered: seconds
 *   since the node saw the block's head), the bucket counts' difference over the phase, p50/p99 by
 *   linear interpolation inside buckets (histogram_quantile): `live_p50_ms`/`live_p99_ms` from
 *   `answered` (null when the node does not export the histogram), every stage in `live_stages`. From
 *   the bench, always: transaction sent → webhook received, `live_tx_p50_ms`/`live_tx_p99_ms`.
 * - fair (a fresh node): 150 endpoints whose receiver path never answers and one healthy endpoint, each
 *   subscribed to the same contract; 10 logs/s (one per 100 ms) for BENCH_FAIR_SECONDS (60).
 *   `fair_healthy_p99_ms`: the healthy endpoint's transaction sent → webhook received p99, from the
 *   first second on; a webhook not received 60 s after the phase counts with the time waited until
 *   then (the figure is then a lower bound) and is reported as `fair_healthy_undelivered`, not lost.
 * - backfill (a fresh node): BENCH_BACKFILL_LOGS (1,000,000) logs of history on a contract of their own,
 *   mined before the node starts. BENCH_BACKFILL_LIVE_PER_SEC (20) logs/s live, one-log transactions,
 *   on one endpoint for BENCH_BACKFILL_LIVE_SECONDS (60); then a subscription with `fromBlock` at the
 *   history starts a backfill (to another endpoint) and, once its first webhook arrived, as many live on
 *   a third endpoint for as long; then the backfill is cancelled and, once the outbox is empty, as many
 *   on a fourth for as long (20/s: a window's p99 is its 12th worst webhook of 1,200, which no single
 *   stall of anvil or the machine decides). The idle figures are
 *   both idle windows' webhooks together (each window's head p99 apart: `idle_before_live_head_p99_ms`,
 *   `idle_after_live_head_p99_ms`): one window's p99 is its few worst webhooks, and the first window,
 *   a fresh node's first minute, swung from 8 to 37 ms between runs of the same code.
 *   `idle_live_head_p99_ms` / `backfill_live_head_p99_ms`: the head → webhook, from the moment a
 *   live transaction's send is answered (anvil mines it on arrival, so that is its block's head; the
 *   receipt is there at once 18 times in 20) to the webhook received; `backfill_live_head_ratio` their
 *   ratio (target <= 2). `idle_live_p99_ms` /
 *   `backfill_live_p99_ms`: transaction sent → webhook received, `backfill_live_ratio` their ratio (it includes the time anvil, busy answering
 *   the backfill's eth_getLogs on the same cores, takes to mine the live transaction), `backfill_webhooks_per_s`
 *   the history received during the window (at most the node's `backfill.logsPerSec`, its default
 *   unless BENCH_BACKFILL_LOGS_PER_SEC sets it). `idle_live_node_p99_ms` / `backfill_live_node_p99_ms` /
 *   `backfill_live_node_ratio`: the same from the node's own `pipeline_stage_seconds{stage="answered"}`
 *   (live first attempts only: a backfill's webhooks count in no stage), from the head's arrival at the
 *   node to the receiver's answer back at it: without the time anvil, busy on the same cores, takes to
 *   mine the block and push its head; read from the histogram's buckets (5 ms apart from 10 to 25 ms).
 * - million (a fresh node; BENCH_MILLION=0 skips): the endpoint is paused through the admin API while
 *   BENCH_MILLION_LOGS (1,000,000) logs are emitted (1,000-log transactions) and matched into the
 *   outbox; then resumed and drained (bounded by BENCH_MILLION_DRAIN_SECONDS, 1800). `rss_backlog_1m_mb`:
 *   peak RSS from the first transaction to the drain, `outbox_depth_1m`: the depth reached,
 *   `rss_after_1m_mb`: BENCH_AFTER_SECONDS after the drain.
 * Memory: VmRSS of the node's process from /proc every 250 ms (its child processes, if any, summed
 * apart as `rss_children_mb`, their peak): `rss_bare_mb` (the median over 3 s once the first node
 * follows the chain, before anything is created: the bare node of the idle target), `rss_idle_mb` (the
 * same once its endpoints are created, nothing flowing), `rss_peak_mb` (all phases, all nodes).
 * RSS counts mapped files too (the node binary's pages, LevelDB's memory-mapped tables):
 * `rss_idle_file_mb` is that part when idle, `rss_peak_anon_mb` / `rss_peak_file_mb` the peaks of the
 * anonymous and the mapped-file parts, each on its own. `rss_peak_anon_heap_mb` and
 * `rss_peak_anon_external_mb`: V8's committed heap and its external memory (Buffers) at the anonymous
 * peak, from the node's /metrics read as a sample sets a new peak (a few ms after it); the rest of the
 * anonymous peak is native memory (LevelDB, V8's compiler zones, glibc's arenas) and thread stacks.
 * `lost`: logs matched for an answering endpoint (outside the fairness phase) and not received within
 * its phase's bounded wait (must be 0; `lost_by_phase` says where: a node too slow to drain within the
 * bound shows up here too);
 * `bad_signatures`: requests the receiver could not verify (must be 0).
 *
 * Targets: e2e_webhooks_per_s >= 0.6 × raw_undici_per_s and >= 10,000/s; sustained_per_s >= 0.5 × raw;
 * live p99 <= 10 ms and p50 <= 3 ms; RSS <= 150 MB at any backlog (1M included) and back under 150 MB
 * within 60 s; rss_bare_mb <= 80 (idle, bare node); fair_healthy_p99_ms < 1,000.
 * The driver runs bundled like the node (bench/bundled.ts) and stays light: the machine's two cores are
 * shared by anvil, the node and the receiver. Every wait has a deadline. Last line: one JSON object.
 */
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { Agent } from 'undici';
import { Webhook } from 'standardwebhooks';
import { asShipped, execArgvFor } from './bundled.ts';
import { CHAIN_ID, startChain, type Chain } from './e2e/chain.ts';
import { machineCpuSeconds, processCpuSeconds, threadSchedSeconds } from './e2e/cpu.ts';
import { startNode, type BenchNode } from './e2e/node.ts';
import { histogram, labelValues, quantile, sample, subtract, type Buckets } from './e2e/prometheus.ts';
import { runReceiverChild, startReceiver, type Mode, type ReceiverHandle } from './e2e/receiver.ts';

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const PHASES = new Set((process.env.BENCH_PHASES ?? 'backlog,sustained,live,fair,backfill,million').split(',').map((p) => p.trim()));
if (process.env.BENCH_MILLION === '0') PHASES.delete('million');
const BACKLOG_LOGS = env('BENCH_BACKLOG_LOGS', 100_000);
const AFTER_SECONDS = env('BENCH_AFTER_SECONDS', 60);
const RAW_REQUESTS = env('BENCH_RAW_REQUESTS', 30_000);
const SUSTAIN_RATES = (process.env.BENCH_SUSTAIN_RATES ?? '1000,2000,4000,6000,8000,10000,12000,14000,16000,20000').split(',').map(Number);
const SUSTAIN_SECONDS = env('BENCH_SUSTAIN_SECONDS', 30);
const LIVE_SECONDS = env('BENCH_LIVE_SECONDS', 60);
const FAIR_SECONDS = env('BENCH_FAIR_SECONDS', 60);
const BACKFILL_LOGS = env('BENCH_BACKFILL_LOGS', 1_000_000);
const BACKFILL_LIVE_SECONDS = env('BENCH_BACKFILL_LIVE_SECONDS', 60);
/** Live logs per second in the backfill phase's windows: 20 gives a p99 of a minute's 1,200 webhooks. */
const BACKFILL_LIVE_PER_SEC = env('BENCH_BACKFILL_LIVE_PER_SEC', 20);
/** The node's `backfill.logsPerSec` in the backfill phase; 0: its default. */
const BACKFILL_LOGS_PER_SEC = env('BENCH_BACKFILL_LOGS_PER_SEC', 0);
/** More of the node's config in the backfill phase (JSON, its top-level sections), to compare settings in one build. */
const BACKFILL_CONFIG = JSON.parse(process.env.BENCH_BACKFILL_CONFIG ?? '{}') as Record<string, Record<string, unknown>>;
const MILLION_LOGS = env('BENCH_MILLION_LOGS', 1_000_000);
const MILLION_DRAIN_SECONDS = env('BENCH_MILLION_DRAIN_SECONDS', 1_800);
const BIG_TX = 1_000;
const CONNECTIONS = 64;
const HANGING_ENDPOINTS = 150;
const STAGES = ['fetched', 'matched', 'committed', 'sent', 'answered'];

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const round = (x: number | null, digits = 1) => (x === null || !Number.isFinite(x) ? null : Number(x.toFixed(digits)));
const percentile = (xs: number[], p: number): number | null => {
  if (xs.length === 0) return null;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
};
const median = (xs: number[]) => percentile(xs, 0.5);

/** RSS of whichever node runs now, every 250 ms: the peak over the run and the samples of a window. */
class RssSampler {
  node: BenchNode | null = null;
  peakMb = 0;
  /** Peaks of the two parts of the node's RSS: anonymous memory, and mapped files. */
  peakAnonMb = 0;
  peakFileMb = 0;
  peakChildrenMb = 0;
  /** The mapped-file part of the latest sample. */
  fileMb = 0;
  /**
   * What the anonymous part held at its peak: V8's heap (committed) and the external memory it knows of
   * (Buffers), from the node's /metrics read as soon as a sample sets a new peak (one read at a time, so
   * only while the peak rises, and a few ms after the sample). While a latency window is open (`hold`)
   * the read waits until it closes: rendering /metrics takes the node's event loop ~10 ms, which the
   * live webhooks being timed would wait behind.
   */
  atAnonPeak: { heapMb: number; externalMb: number } | null = null;
  private holds = 0;
  private readDeferred = false;
  private window: number[] | null = null;
  private windowPeak = 0;
  private readonly timer = setInterval(() => this.sample(), 250);
  private readingHeap = false;

  private sample(): void {
    const rss = this.node?.rss();
    if (!rss) return;
    this.peakMb = Math.max(this.peakMb, rss.mainMb);
    if (rss.mainMb - rss.fileMb > this.peakAnonMb) {
      this.peakAnonMb = rss.mainMb - rss.fileMb;
      if (this.holds > 0) this.readDeferred = true;
      else void this.readHeap();
    }
    this.peakFileMb = Math.max(this.peakFileMb, rss.fileMb);
    this.fileMb = rss.fileMb;
    this.peakChildrenMb = Math.max(this.peakChildrenMb, rss.childrenMb);
    this.windowPeak = Math.max(this.windowPeak, rss.mainMb);
    this.window?.push(rss.mainMb);
  }

  private async readHeap(): Promise<void> {
    const node = this.node;
    if (node === null) return;
    // One read at a time: a peak set while one runs is read once it is done.
    if (this.readingHeap) {
      this.readDeferred = true;
      return;
    }
    this.readingHeap = true;
    this.readDeferred = false;
    try {
      this.takeHeap(await node.metrics());
    } catch {
      // A node stopping or restarting between phases: the next read finds the next one.
    } finally {
      this.readingHeap = false;
      if (this.readDeferred && this.holds === 0) void this.readHeap();
    }
  }

  private takeHeap(metricsText: string): void {
    const heap = sample(metricsText, 'nodejs_heap_size_total_bytes');
    const external = sample(metricsText, 'nodejs_external_memory_bytes');
    if (heap !== undefined && external !== undefined) this.atAnonPeak = { heapMb: heap / 2 ** 20, externalMb: external / 2 ** 20 };
  }

  /** A latency window opens: no /metrics read until it closes (`release`). */
  hold(): void {
    this.holds++;
  }

  /**
   * A latency window closed, with the /metrics text its last read got: a peak set meanwhile takes its
   * heap figures from that text rather than from another read.
   */
  release(metricsText: string | undefined): void {
    if (--this.holds > 0 || !this.readDeferred) return;
    if (metricsText === undefined) return void this.readHeap();
    this.readDeferred = false;
    this.takeHeap(metricsText);
  }

  /** Starts a window: its samples and its peak. */
  open(): void {
    this.window = [];
    this.windowPeak = 0;
    this.sample();
  }

  close(): { samples: number[]; peak: number } {
    this.sample();
    const out = { samples: this.window ?? [], peak: this.windowPeak };
    this.window = null;
    return out;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

interface Endpoint {
  id: string;
  path: string;
  contract: string;
}

/** A stage's latency figures from the difference of two /metrics histograms. */
interface StageFigures {
  p50_ms: number | null;
  p99_ms: number | null;
  count: number;
}

/** The JSON line the benchmark ends with: null where a phase did not run or did not finish. */
interface Results {
  e2e_webhooks_per_s: number | null;
  raw_undici_per_s: number | null;
  ratio: number | null;
  e2e_small_tx_webhooks_per_s: number | null;
  anvil_logs_per_s: number | null;
  anvil_small_tx_logs_per_s: number | null;
  sustained_per_s: number | null;
  sustained_ratio: number | null;
  live_p50_ms: number | null;
  live_p99_ms: number | null;
  live_tx_p50_ms: number | null;
  live_tx_p99_ms: number | null;
  live_stages: Record<string, StageFigures>;
  live_event_to_delivery_p50_ms?: number | null;
  live_event_to_delivery_p99_ms?: number | null;
  rss_bare_mb: number | null;
  rss_idle_mb: number | null;
  rss_peak_mb: number | null;
  rss_idle_file_mb: number | null;
  rss_peak_anon_mb: number | null;
  rss_peak_file_mb: number | null;
  rss_peak_anon_heap_mb: number | null;
  rss_peak_anon_external_mb: number | null;
  rss_children_mb: number | null;
  rss_after_mb: number | null;
  node_cpu_us_per_webhook: number | null;
  node_main_cpu_us_per_webhook?: number | null;
  node_main_wait_us_per_webhook?: number | null;
  receiver_cpu_us_per_webhook?: number | null;
  anvil_cpu_us_per_webhook?: number | null;
  machine_busy_cores?: number | null;
  rss_backlog_1m_mb: number | null;
  outbox_depth_1m: number | null;
  rss_after_1m_mb: number | null;
  fair_healthy_p50_ms?: number | null;
  fair_healthy_p99_ms: number | null;
  fair_healthy_undelivered: number | null;
  idle_live_p99_ms: number | null;
  idle_before_live_head_p99_ms?: number | null;
  idle_after_live_head_p99_ms?: number | null;
  backfill_live_p99_ms: number | null;
  backfill_live_ratio: number | null;
  idle_live_head_p99_ms: number | null;
  idle_live_node_p99_ms: number | null;
  backfill_live_node_p99_ms: number | null;
  backfill_live_node_ratio: number | null;
  backfill_live_head_p99_ms: number | null;
  backfill_live_head_ratio: number | null;
  backfill_webhooks_per_s: number | null;
  lost: number;
  lost_by_phase?: Record<string, number>;
  bad_signatures: number;
  phases: string[];
  error?: string;
}

async function main(): Promise<void> {
  const cleanups: Array<() => Promise<void>> = [];
  const nodes = new Set<BenchNode>();
  const killAll = () => {
    for (const n of nodes) n.kill();
  };
  process.once('exit', killAll);
  const cleanup = async () => {
    for (const n of nodes) await n.stop().catch(() => n.kill());
    for (const c of cleanups.reverse()) await c().catch(() => {});
  };
  const onSignal = (signal: NodeJS.Signals) => {
    console.error(`bench:e2e: ${signal}, stopping everything`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const rss = new RssSampler();
  cleanups.push(async () => rss.stop());
  const results: Results = {
    e2e_webhooks_per_s: null,
    raw_undici_per_s: null,
    ratio: null,
    e2e_small_tx_webhooks_per_s: null,
    anvil_logs_per_s: null,
    anvil_small_tx_logs_per_s: null,
    sustained_per_s: null,
    sustained_ratio: null,
    live_p50_ms: null,
    live_p99_ms: null,
    live_tx_p50_ms: null,
    live_tx_p99_ms: null,
    live_stages: {},
    rss_bare_mb: null,
    rss_idle_mb: null,
    rss_peak_mb: null,
    rss_idle_file_mb: null,
    rss_peak_anon_mb: null,
    rss_peak_file_mb: null,
    rss_peak_anon_heap_mb: null,
    rss_peak_anon_external_mb: null,
    rss_children_mb: null,
    rss_after_mb: null,
    node_cpu_us_per_webhook: null,
    rss_backlog_1m_mb: null,
    outbox_depth_1m: null,
    rss_after_1m_mb: null,
    fair_healthy_p99_ms: null,
    fair_healthy_undelivered: null,
    idle_live_p99_ms: null,
    backfill_live_p99_ms: null,
    backfill_live_ratio: null,
    idle_live_head_p99_ms: null,
    idle_live_node_p99_ms: null,
    backfill_live_node_p99_ms: null,
    backfill_live_node_ratio: null,
    backfill_live_head_p99_ms: null,
    backfill_live_head_ratio: null,
    backfill_webhooks_per_s: null,
    lost: 0,
    bad_signatures: 0,
    phases: [...PHASES],
  };
  let lost = 0;
  const lostByPhase: Record<string, number> = {};
  let failure: unknown = null;

  try {
    const chain = await startChain();
    cleanups.push(() => chain.stop());
    const benchFile = fileURLToPath(import.meta.url);
    const receiver = await startReceiver(benchFile, execArgvFor(import.meta.url));
    cleanups.push(() => receiver.stop());
    console.log(
      `bench:e2e  phases=${[...PHASES].join(',')}  anvil ${chain.anvil.httpUrl}  receiver ${receiver.origin} (pid ${receiver.pid})`,
    );

    const boot = async (config?: Record<string, Record<string, unknown>>): Promise<BenchNode> => {
      const node = await startNode([chain.nodeChain(await chain.head())], config ? { config } : {});
      nodes.add(node);
      rss.node = node;
      console.log(`node pid ${node.pid}, admin ${node.adminUrl}`);
      if (results.rss_bare_mb === null) {
        await following(node);
        rss.open();
        await sleep(3_000);
        results.rss_bare_mb = round(median(rss.close().samples));
        console.log(`rss bare (node started and following the chain, nothing created): ${results.rss_bare_mb} MB`);
      }
      return node;
    };
    const shutdown = async (node: BenchNode) => {
      await node.stop();
      nodes.delete(node);
      if (rss.node === node) rss.node = null;
    };
    const endpoint = async (node: BenchNode, path: string, mode: Mode = 'ok', track = false, contract?: string): Promise<Endpoint> => {
      const address = contract ?? (await chain.deploy());
      const created = await node.api<{ endpoint: { id: string }; secret: string }>('POST', '/v1/endpoints', {
        url: `${receiver.origin}${path}`,
        description: path,
      });
      await receiver.addEndpoint(path, created.secret, mode, track);
      await node.api('POST', '/v1/subscriptions', { endpointId: created.endpoint.id, chainId: 31337, addresses: [address] });
      return { id: created.endpoint.id, path, contract: address };
    };
    /** Waits until the node's listener has seen the chain's head. */
    const following = async (node: BenchNode) => {
      const head = await chain.head();
      await waitFor(
        async () => (sample(await node.metrics(), 'chain_height') ?? -1) >= head,
        30_000,
        `the node to follow anvil to block ${head}`,
      );
    };
    /** Waits until `path` has `count` distinct logs; resolves with the last receipt time, or null on timeout. */
    const received = async (path: string, count: number, timeoutMs: number, phase: string): Promise<number | null> => {
      let last: number | null = null;
      try {
        await waitFor(
          async () => {
            const s = (await receiver.stats()).paths[path]!;
            last = s.last;
            return s.distinct >= count;
          },
          timeoutMs,
          `${count} webhooks on ${path}`,
          100,
        );
      } catch (err) {
        const s = (await receiver.stats()).paths[path]!;
        lost += count - s.distinct;
        lostByPhase[phase] = (lostByPhase[phase] ?? 0) + count - s.distinct;
        console.log(`!! ${(err as Error).message}: ${s.distinct} received, ${count - s.distinct} missing`);
        return null;
      }
      return last;
    };
    /**
     * `perSec` logs/s on `ep` (one-log transactions, evenly spaced; 5 unless said) for `seconds`, everything received: the
     * transaction sent → webhook received figures, and the node's pipeline stages and event-to-delivery
     * histogram over the window (their buckets' difference).
     */
    const liveWindow = async (node: BenchNode, ep: Endpoint, seconds: number, phase: string, perSec = 5) => {
      // No other /metrics read until `after`: it would stall the loop, and reset the event-loop figures.
      rss.hold();
      let sent: Awaited<ReturnType<typeof steady>>;
      let after: string | undefined;
      let before: string;
      try {
        // One second of the same traffic first, not counted: an endpoint's first requests (its
        // connection opened, its entry cached, their code paths compiled) are not the steady
        // latency the window measures.
        const warm = await steady(chain, ep.contract, 1000 / perSec, 1);
        await received(ep.path, warm.logs, 30_000, phase);
        await receiver.takeTracked(ep.path);
        before = await node.metrics();
        sent = await steady(chain, ep.contract, 1000 / perSec, seconds);
        await received(ep.path, warm.logs + sent.logs, 30_000, phase);
        after = await node.metrics();
      } finally {
        rss.release(after);
      }
      const tracked = await receiver.takeTracked(ep.path);
      const latencies = latenciesOf(sent.at, tracked);
      const txP50 = round(percentile(latencies, 0.5), 2);
      const txP99 = round(percentile(latencies, 0.99), 2);
      console.log(`${phase}, ${perSec} logs/s: tx sent → webhook received p50 ${txP50} ms, p99 ${txP99} ms (${latencies.length} webhooks)`);
      const fromHead = latenciesOf(sent.minedAt, tracked);
      const headP50 = round(percentile(fromHead, 0.5), 2);
      const headP99 = round(percentile(fromHead, 0.99), 2);
      // The worst few and where in the window they came (the webhooks in the order received): a p99 of
      // a few hundred webhooks is its third worst or so.
      const worst = fromHead
        .map((ms, i) => [ms, i] as const)
        .sort((a, b) => b[0] - a[0])
        .slice(0, 4)
        .map(([ms, i]) => `${round(ms, 1)} (#${i + 1})`)
        .join(', ');
      console.log(
        `${phase}, ${perSec} logs/s: tx mined (its send answered) → webhook received p50 ${headP50} ms, p95 ${round(percentile(fromHead, 0.95), 2)} ms, p99 ${headP99} ms; worst ${worst}`,
      );
      const stages: Record<string, StageFigures> = {};
      const stageBuckets: Record<string, Buckets> = {};
      const present = labelValues(after, 'pipeline_stage_seconds_bucket', 'stage');
      for (const stage of [...STAGES, ...present.filter((s) => !STAGES.includes(s))]) {
        if (!present.includes(stage)) continue;
        const diff = subtract(
          histogram(after, 'pipeline_stage_seconds', { stage }),
          histogram(before, 'pipeline_stage_seconds', { stage }),
        );
        stages[stage] = stageFigures(diff);
        stageBuckets[stage] = diff;
        console.log(
          `${phase}, node stage ${stage.padEnd(9)} p50 ${stages[stage].p50_ms} ms, p99 ${stages[stage].p99_ms} ms (${stages[stage].count})`,
        );
      }
      if (present.length === 0) console.log(`${phase}: the node exports no pipeline_stage_seconds histogram`);
      const eventToDelivery = stageFigures(
        subtract(histogram(after, 'webhook_event_to_delivery_seconds'), histogram(before, 'webhook_event_to_delivery_seconds')),
      );
      console.log(`${phase}, node webhook_event_to_delivery_seconds p50 ${eventToDelivery.p50_ms} ms, p99 ${eventToDelivery.p99_ms} ms`);
      // prom-client's event-loop delay figures cover the time since the previous scrape (the window).
      const lagMs = (name: string) => round((sample(after, name) ?? Number.NaN) * 1000, 1);
      console.log(
        `${phase}, node event-loop delay p99 ${lagMs('nodejs_eventloop_lag_p99_seconds')} ms, max ${lagMs('nodejs_eventloop_lag_max_seconds')} ms`,
      );
      return { txP50, txP99, headP50, headP99, stages, stageBuckets, eventToDelivery, latencies, fromHead };
    };
    const idleRss = async () => {
      if (results.rss_idle_mb !== null) return;
      rss.open();
      await sleep(3_000);
      results.rss_idle_mb = round(median(rss.close().samples));
      results.rss_idle_file_mb = round(rss.fileMb);
      console.log(
        `rss idle (node started, endpoints created, nothing flowing): ${results.rss_idle_mb} MB, of which mapped files ${results.rss_idle_file_mb} MB`,
      );
    };

    // ---- node A: backlog, raw, sustained, live ----
    const wantsA = ['backlog', 'sustained', 'live', 'raw'].some((p) => PHASES.has(p));
    if (wantsA) {
      const node = await boot();
      const eps = {
        large: PHASES.has('backlog') ? await endpoint(node, '/backlog/large') : null,
        small: PHASES.has('backlog') ? await endpoint(node, '/backlog/small') : null,
        live: PHASES.has('live') ? await endpoint(node, '/live', 'ok', true) : null,
      };
      await following(node);
      await idleRss();

      if (eps.large && eps.small) {
        const cpuBefore = node.cpuSeconds();
        const mainBefore = threadSchedSeconds(node.pid);
        const othersBefore = [processCpuSeconds(receiver.pid), processCpuSeconds(chain.anvil.pid)];
        const machineBefore = machineCpuSeconds();
        const large = await emitLarge(chain, eps.large.contract, BACKLOG_LOGS);
        results.anvil_logs_per_s = Math.round(BACKLOG_LOGS / ((large.mined - large.started) / 1000));
        console.log(`backlog, 1,000-log transactions: anvil mined ${BACKLOG_LOGS} logs at ${results.anvil_logs_per_s} logs/s`);
        const last = await received(eps.large.path, BACKLOG_LOGS, Math.max(120_000, BACKLOG_LOGS * 5), 'backlog');
        const cpuAfter = node.cpuSeconds();
        const mainAfter = threadSchedSeconds(node.pid);
        const othersAfter = [processCpuSeconds(receiver.pid), processCpuSeconds(chain.anvil.pid)];
        const machineAfter = machineCpuSeconds();
        if (last !== null) {
          results.e2e_webhooks_per_s = Math.round(BACKLOG_LOGS / ((last - large.started) / 1000));
          console.log(
            `backlog, 1,000-log transactions: ${BACKLOG_LOGS} webhooks in ${((last - large.started) / 1000).toFixed(1)} s = ${results.e2e_webhooks_per_s}/s end to end`,
          );
        }
        if (cpuBefore !== null && cpuAfter !== null) {
          // The node's CPU per webhook, all its threads (LevelDB's included): what the machine's noise moves least.
          results.node_cpu_us_per_webhook = Math.round(((cpuAfter - cpuBefore) * 1e6) / BACKLOG_LOGS);
          console.log(
            `backlog, 1,000-log transactions: the node used ${(cpuAfter - cpuBefore).toFixed(1)} CPU s = ${results.node_cpu_us_per_webhook} µs per webhook`,
          );
        }
        if (mainBefore !== null && mainAfter !== null) {
          // The main thread runs the whole pipeline: its time on a core, and its time runnable but waiting
          // for one (the node's other threads, the receiver and anvil hold the machine's cores meanwhile).
          results.node_main_cpu_us_per_webhook = Math.round(((mainAfter.run - mainBefore.run) * 1e6) / BACKLOG_LOGS);
          results.node_main_wait_us_per_webhook = Math.round(((mainAfter.wait - mainBefore.wait) * 1e6) / BACKLOG_LOGS);
          console.log(
            `backlog, 1,000-log transactions: the node's main thread was on a core ${results.node_main_cpu_us_per_webhook} µs and waited for one ${results.node_main_wait_us_per_webhook} µs per webhook`,
          );
        }
        // Where the machine's cores went meanwhile: the receiver's verification and anvil's answers share them with the node.
        const perWebhook = (i: number) => {
          const before = othersBefore[i];
          const after = othersAfter[i];
          return before == null || after == null ? null : Math.round(((after - before) * 1e6) / BACKLOG_LOGS);
        };
        results.receiver_cpu_us_per_webhook = perWebhook(0);
        results.anvil_cpu_us_per_webhook = perWebhook(1);
        const wall = machineAfter.total - machineBefore.total;
        results.machine_busy_cores =
          wall > 0 ? Math.round(((machineAfter.busy - machineBefore.busy) / wall) * cpus().length * 100) / 100 : null;
        console.log(
          `backlog, 1,000-log transactions: the receiver used ${results.receiver_cpu_us_per_webhook} µs and anvil ${results.anvil_cpu_us_per_webhook} µs of CPU per webhook; the machine was busy ${results.machine_busy_cores} of ${cpus().length} cores on average`,
        );

        const small = await emitSmall(chain, eps.small.contract, BACKLOG_LOGS);
        results.anvil_small_tx_logs_per_s = Math.round(BACKLOG_LOGS / ((small.mined - small.started) / 1000));
        console.log(
          `backlog, one-log transactions (1,000 per block): anvil mined ${BACKLOG_LOGS} logs at ${results.anvil_small_tx_logs_per_s} logs/s`,
        );
        const lastSmall = await received(eps.small.path, BACKLOG_LOGS, Math.max(120_000, BACKLOG_LOGS * 5), 'backlog_small_tx');
        if (lastSmall !== null) {
          results.e2e_small_tx_webhooks_per_s = Math.round(BACKLOG_LOGS / ((lastSmall - small.started) / 1000));
          console.log(
            `backlog, one-log transactions: ${BACKLOG_LOGS} webhooks in ${((lastSmall - small.started) / 1000).toFixed(1)} s = ${results.e2e_small_tx_webhooks_per_s}/s end to end`,
          );
        }
        console.log(`after the backlog: ${AFTER_SECONDS} s idle (the raw undici loop runs meanwhile; the node does nothing)`);
      }

      const afterUntil = Date.now() + AFTER_SECONDS * 1000;
      if (PHASES.has('raw') || PHASES.has('backlog') || PHASES.has('sustained')) {
        const sampleBody = eps.large ? await receiver.sample(eps.large.path) : null;
        results.raw_undici_per_s = Math.round(await rawLoop(receiver, sampleBody?.body ?? null));
        console.log(`raw undici POST loop (${CONNECTIONS} connections) to the verifying receiver: ${results.raw_undici_per_s} req/s`);
      }
      if (eps.large) {
        await sleep(Math.max(0, afterUntil - Date.now()));
        rss.open();
        await sleep(1_000);
        results.rss_after_mb = round(median(rss.close().samples));
        console.log(`rss ${AFTER_SECONDS} s after the backlog drained: ${results.rss_after_mb} MB`);
      }

      if (PHASES.has('sustained')) {
        let best = 0;
        for (const rate of SUSTAIN_RATES) {
          const ep = await endpoint(node, `/sustained/${rate}`);
          const verdict = await sustain(chain, node, receiver, ep, rate);
          console.log(`sustained ${rate} logs/s: ${verdict.ok ? 'holds' : 'fails'} (${verdict.why})`);
          const last = await received(ep.path, verdict.sent, 60_000, 'sustained');
          if (last === null || !verdict.ok) break;
          best = rate;
        }
        results.sustained_per_s = best;
      }

      if (eps.live) {
        const live = await liveWindow(node, eps.live, LIVE_SECONDS, 'live');
        results.live_tx_p50_ms = live.txP50;
        results.live_tx_p99_ms = live.txP99;
        results.live_stages = live.stages;
        results.live_p50_ms = live.stages.answered?.p50_ms ?? null;
        results.live_p99_ms = live.stages.answered?.p99_ms ?? null;
        results.live_event_to_delivery_p50_ms = live.eventToDelivery.p50_ms;
        results.live_event_to_delivery_p99_ms = live.eventToDelivery.p99_ms;
      }
      await shutdown(node);
    }

    // ---- node B: fairness ----
    if (PHASES.has('fair')) {
      const node = await boot();
      const contract = await chain.deploy();
      for (let i = 0; i < HANGING_ENDPOINTS; i++) await endpoint(node, `/fair/hang/${i}`, 'hang', false, contract);
      const healthy = await endpoint(node, '/fair/healthy', 'ok', true, contract);
      await following(node);
      await idleRss();
      const sent = await steady(chain, contract, 100, FAIR_SECONDS);
      // A webhook still missing after the bounded wait counts with the time waited so far (a lower
      // bound), not as lost: the healthy endpoint may only be starved, and the wait has to end.
      await waitFor(async () => (await receiver.stats()).paths[healthy.path]!.distinct >= sent.logs, 60_000, 'the healthy endpoint').catch(
        () => {},
      );
      const waitedUntil = now();
      const tracked = await receiver.takeTracked(healthy.path);
      const arrived = new Set(tracked.map(([hash]) => hash));
      const latencies = latenciesOf(sent.at, tracked);
      const missing = [...sent.at].filter(([hash]) => !arrived.has(hash)).map(([, at]) => waitedUntil - at);
      results.fair_healthy_p99_ms = round(percentile([...latencies, ...missing], 0.99));
      results.fair_healthy_p50_ms = round(percentile([...latencies, ...missing], 0.5));
      results.fair_healthy_undelivered = missing.length;
      const s = await receiver.stats();
      const hung = Object.entries(s.paths)
        .filter(([p]) => p.startsWith('/fair/hang/'))
        .reduce((n, [, st]) => n + st.hung, 0);
      console.log(
        `fairness, ${HANGING_ENDPOINTS} hanging endpoints + 1 healthy, 10 logs/s: healthy p50 ${results.fair_healthy_p50_ms} ms, p99 ${results.fair_healthy_p99_ms} ms; ${latencies.length} of ${sent.logs} delivered within the phase + 60 s${missing.length ? ' (the missing count with the time waited: a lower bound)' : ''}; ${hung} requests hung`,
      );
      await shutdown(node);
    }

    // ---- node D: live deliveries while a backfill runs ----
    if (PHASES.has('backfill')) {
      // The history is on the chain before the node starts (it follows from the head): only the
      // backfill reads it.
      const history = await chain.deploy();
      const historyFrom = (await chain.head()) + 1;
      const emitted = await emitLarge(chain, history, BACKFILL_LOGS);
      console.log(`backfill: ${BACKFILL_LOGS} logs of history mined in ${((emitted.mined - emitted.started) / 1000).toFixed(1)} s`);
      const node = await boot({
        ...BACKFILL_CONFIG,
        ...(BACKFILL_LOGS_PER_SEC > 0 ? { backfill: { ...BACKFILL_CONFIG.backfill, logsPerSec: BACKFILL_LOGS_PER_SEC } } : {}),
      });
      const idle = await endpoint(node, '/backfill/live-idle', 'ok', true);
      const during = await endpoint(node, '/backfill/live-during', 'ok', true);
      const idleAgain = await endpoint(node, '/backfill/live-idle-again', 'ok', true);
      await following(node);
      await idleRss();
      const before = await liveWindow(node, idle, BACKFILL_LIVE_SECONDS, 'backfill, idle', BACKFILL_LIVE_PER_SEC);
      const created = await node.api<{ endpoint: { id: string }; secret: string }>('POST', '/v1/endpoints', {
        url: `${receiver.origin}/backfill/history`,
        description: '/backfill/history',
      });
      await receiver.addEndpoint('/backfill/history', created.secret, 'ok', false);
      const sub = await node.api<{ subscription: { id: string } }>('POST', '/v1/subscriptions', {
        endpointId: created.endpoint.id,
        chainId: CHAIN_ID,
        addresses: [history],
        fromBlock: historyFrom,
      });
      const historyReceived = async () => (await receiver.stats()).paths['/backfill/history']!.distinct;
      await waitFor(async () => (await historyReceived()) > 0, 60_000, 'the first backfilled webhook');
      const startedWith = await historyReceived();
      const windowStart = now();
      const meanwhile = await liveWindow(node, during, BACKFILL_LIVE_SECONDS, 'backfill, while backfilling', BACKFILL_LIVE_PER_SEC);
      const backfilled = (await historyReceived()) - startedWith;
      results.backfill_webhooks_per_s = Math.round(backfilled / ((now() - windowStart) / 1000));
      const { backfill } = await node.api<{ backfill: { at: number; state: string } | null }>(
        'GET',
        `/v1/subscriptions/${sub.subscription.id}`,
      );
      console.log(
        `backfill: ${backfilled} history webhooks during the live window (${results.backfill_webhooks_per_s}/s), backfill ${backfill?.state} at block ${backfill?.at}`,
      );
      if (backfill?.state !== 'running')
        console.log('(the backfill read its whole range within the window; a larger BENCH_BACKFILL_LOGS keeps it reading)');
      await node.api('DELETE', `/v1/subscriptions/${sub.subscription.id}/replay`).catch(() => {});
      // Idle again once the cancelled backfill's jobs are delivered: the idle reference is both idle
      // windows' webhooks together, so a window disturbed by something else (a fresh node's first
      // minute, anvil's own work) weighs half.
      await waitFor(
        async () => (sample(await node.metrics(), 'webhook_queue_depth') ?? 0) === 0,
        120_000,
        'the outbox empty after the backfill',
      );
      const afterwards = await liveWindow(node, idleAgain, BACKFILL_LIVE_SECONDS, 'backfill, idle again', BACKFILL_LIVE_PER_SEC);
      const idleTx = round(percentile([...before.latencies, ...afterwards.latencies], 0.99), 2);
      const idleHead = round(percentile([...before.fromHead, ...afterwards.fromHead], 0.99), 2);
      results.idle_before_live_head_p99_ms = before.headP99;
      results.idle_after_live_head_p99_ms = afterwards.headP99;
      results.idle_live_p99_ms = idleTx;
      results.backfill_live_p99_ms = meanwhile.txP99;
      const idleP99 = results.idle_live_p99_ms;
      const duringP99 = results.backfill_live_p99_ms;
      if (idleP99 && duringP99 !== null) results.backfill_live_ratio = round(duringP99 / idleP99, 2);
      results.idle_live_head_p99_ms = idleHead;
      results.backfill_live_head_p99_ms = meanwhile.headP99;
      if (idleHead && meanwhile.headP99 !== null) results.backfill_live_head_ratio = round(meanwhile.headP99 / idleHead, 2);
      console.log(
        `backfill: live head → webhook p99 ${meanwhile.headP99} ms while backfilling, ${idleHead} ms idle (${before.headP99} before, ${afterwards.headP99} after): ${results.backfill_live_head_ratio}x (target <= 2)`,
      );
      console.log(
        `backfill: live tx sent → webhook p99 ${duringP99} ms while backfilling, ${idleP99} ms idle: ${results.backfill_live_ratio}x (anvil's own queue included)`,
      );
      // The node's own head → answered (its stage histograms count live first attempts only), the idle
      // windows' buckets added together.
      const idleAnswered = addBuckets(before.stageBuckets.answered, afterwards.stageBuckets.answered);
      results.idle_live_node_p99_ms = idleAnswered ? stageFigures(idleAnswered).p99_ms : null;
      results.backfill_live_node_p99_ms = meanwhile.stages.answered?.p99_ms ?? null;
      if (results.idle_live_node_p99_ms && results.backfill_live_node_p99_ms !== null)
        results.backfill_live_node_ratio = round(results.backfill_live_node_p99_ms / results.idle_live_node_p99_ms, 2);
      console.log(
        `backfill: live head seen → answered p99 (the node's stage histogram) ${results.backfill_live_node_p99_ms} ms while backfilling, ${results.idle_live_node_p99_ms} ms idle: ${results.backfill_live_node_ratio}x`,
      );
      await shutdown(node);
    }

    // ---- node C: a million jobs ----
    if (PHASES.has('million')) {
      const node = await boot();
      const ep = await endpoint(node, '/million');
      await following(node);
      await idleRss();
      await node.api('POST', `/v1/endpoints/${ep.id}/pause`);
      rss.open();
      const emitted = await emitLarge(chain, ep.contract, MILLION_LOGS);
      console.log(
        `million: anvil mined ${MILLION_LOGS} logs at ${Math.round(MILLION_LOGS / ((emitted.mined - emitted.started) / 1000))} logs/s (endpoint paused)`,
      );
      let depth = 0;
      try {
        await waitFor(
          async () => {
            depth = Math.max(depth, sample(await node.metrics(), 'webhook_queue_depth') ?? 0);
            return depth >= MILLION_LOGS;
          },
          600_000,
          `an outbox of ${MILLION_LOGS} jobs`,
          1_000,
        );
      } catch (err) {
        console.log(`!! ${(err as Error).message} (reached ${depth})`);
      }
      results.outbox_depth_1m = depth;
      console.log(`million: outbox depth ${depth}, rss so far ${round(rss.close().peak)} MB; resuming the endpoint`);
      rss.open();
      const resumed = now();
      await node.api('POST', `/v1/endpoints/${ep.id}/resume`);
      const last = await received(ep.path, MILLION_LOGS, MILLION_DRAIN_SECONDS * 1000, 'million');
      const drain = rss.close();
      results.rss_backlog_1m_mb = round(Math.max(drain.peak, rss.peakMb));
      if (last !== null)
        console.log(
          `million: drained in ${((last - resumed) / 1000).toFixed(1)} s (${Math.round(MILLION_LOGS / ((last - resumed) / 1000))}/s)`,
        );
      console.log(`million: peak rss ${results.rss_backlog_1m_mb} MB; ${AFTER_SECONDS} s idle`);
      await sleep(AFTER_SECONDS * 1000);
      rss.open();
      await sleep(1_000);
      results.rss_after_1m_mb = round(median(rss.close().samples));
      console.log(`million: rss ${AFTER_SECONDS} s after the drain: ${results.rss_after_1m_mb} MB`);
      await shutdown(node);
    }

    const stats = await receiver.stats();
    results.bad_signatures = stats.invalid;
    const duplicates = Object.entries(stats.paths)
      .filter(([p]) => p !== '/raw')
      .reduce((n, [, s]) => n + s.duplicates, 0);
    console.log(`receiver: ${stats.valid} valid, ${stats.invalid} invalid (${stats.unknown} to unknown paths), ${duplicates} duplicates`);
  } catch (err) {
    failure = err;
    for (const n of nodes) console.error(`node ${n.pid} problems:\n${n.problems()}`);
  } finally {
    await cleanup();
  }

  results.lost = lost;
  results.lost_by_phase = lostByPhase;
  results.rss_peak_mb = round(rss.peakMb);
  results.rss_peak_anon_mb = round(rss.peakAnonMb);
  results.rss_peak_file_mb = round(rss.peakFileMb);
  results.rss_peak_anon_heap_mb = rss.atAnonPeak && round(rss.atAnonPeak.heapMb);
  results.rss_peak_anon_external_mb = rss.atAnonPeak && round(rss.atAnonPeak.externalMb);
  results.rss_children_mb = round(rss.peakChildrenMb);
  const raw = results.raw_undici_per_s;
  if (raw) {
    if (results.e2e_webhooks_per_s !== null) results.ratio = round(results.e2e_webhooks_per_s / raw, 3);
    if (results.sustained_per_s !== null) results.sustained_ratio = round(results.sustained_per_s / raw, 3);
  }
  if (failure) {
    results.error = failure instanceof Error ? failure.message : inspect(failure);
    process.exitCode = 1;
    console.error(failure);
  }
  console.log(
    `rss peak ${results.rss_peak_mb} MB: anonymous ${results.rss_peak_anon_mb} MB at its peak (V8 heap ${results.rss_peak_anon_heap_mb} MB, external ${results.rss_peak_anon_external_mb} MB, the rest native), mapped files ${results.rss_peak_file_mb} MB at theirs`,
  );
  console.log(
    `targets: e2e >= max(0.6 × raw, 10,000)/s, sustained >= 0.5 × raw, live p99 <= 10 ms / p50 <= 3 ms, rss <= 150 MB (bare idle <= 80), fair p99 < 1,000 ms, lost = 0`,
  );
  console.log(JSON.stringify(results));
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, what: string, everyMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** `logs` logs in 1,000-log transactions (the last may be smaller), 4 in flight; times of the first send and of the last mined. */
async function emitLarge(chain: Chain, contract: string, logs: number): Promise<{ started: number; mined: number }> {
  const sizes = Array.from({ length: Math.ceil(logs / BIG_TX) }, (_, i) => Math.min(BIG_TX, logs - i * BIG_TX));
  const started = now();
  let next = 0;
  let lastHash = '';
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let i = next++; i < sizes.length; i = next++) {
        const hash = await chain.send(contract, sizes[i]!);
        if (i === sizes.length - 1) lastHash = hash;
      }
    }),
  );
  await chain.waitMined(lastHash);
  return { started, mined: now() };
}

/** `logs` one-log transactions, 1,000 per block: automine off, a batch of sends, evm_mine, again. */
async function emitSmall(chain: Chain, contract: string, logs: number): Promise<{ started: number; mined: number }> {
  await chain.setAutomine(false);
  try {
    const started = now();
    let last = '';
    for (let sent = 0; sent < logs; sent += BIG_TX) {
      const hashes = await chain.sendMany(contract, Math.min(BIG_TX, logs - sent));
      await chain.mine();
      last = hashes.at(-1)!;
    }
    await chain.waitMined(last);
    return { started, mined: now() };
  } finally {
    await chain.setAutomine(true);
  }
}

/** One one-log transaction every `intervalMs` for `seconds`: the send time of each (by hash) and the count. */
async function steady(
  chain: Chain,
  contract: string,
  intervalMs: number,
  seconds: number,
): Promise<{ at: Map<string, number>; minedAt: Map<string, number>; logs: number }> {
  const at = new Map<string, number>();
  const minedAt = new Map<string, number>();
  const start = now();
  const ticks = Math.round((seconds * 1000) / intervalMs);
  const inFlight = new Set<Promise<void>>();
  for (let k = 0; k < ticks; k++) {
    await sleep(Math.max(0, start + k * intervalMs - now()));
    if (inFlight.size >= 8) continue;
    const sentAt = now();
    const p: Promise<void> = chain
      .send(contract, 1)
      .then((hash) => {
        at.set(hash, sentAt);
        minedAt.set(hash, now());
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  await Promise.all(inFlight);
  return { at, minedAt, logs: at.size };
}

function latenciesOf(sentAt: Map<string, number>, tracked: Array<[string, number]>): number[] {
  const out: number[] = [];
  for (const [hash, at] of tracked) {
    const sent = sentAt.get(hash);
    if (sent !== undefined) out.push(at - sent);
  }
  return out;
}

/** Two histograms' buckets (the same bounds) added; undefined when either is missing. */
function addBuckets(a: Buckets | undefined, b: Buckets | undefined): Buckets | undefined {
  if (!a || !b) return undefined;
  const other = new Map(b);
  return a.map(([le, count]) => [le, count + (other.get(le) ?? 0)]);
}

function stageFigures(diff: Buckets): { p50_ms: number | null; p99_ms: number | null; count: number } {
  const p50 = quantile(0.5, diff);
  const p99 = quantile(0.99, diff);
  return {
    p50_ms: p50 === null ? null : round(p50 * 1000, 2),
    p99_ms: p99 === null ? null : round(p99 * 1000, 2),
    count: diff.at(-1)?.[1] ?? 0,
  };
}

/**
 * One rate of the sustained ladder: a transaction of rate/10 logs every 100 ms for SUSTAIN_SECONDS;
 * each second the outbox depth and the lag (logs sent − distinct logs received). See the header.
 */
async function sustain(
  chain: Chain,
  node: BenchNode,
  receiver: ReceiverHandle,
  ep: Endpoint,
  rate: number,
): Promise<{ ok: boolean; why: string; sent: number }> {
  const perTx = Math.max(1, Math.round(rate / 10));
  const ticks = SUSTAIN_SECONDS * 10;
  let sent = 0;
  const inFlight = new Set<Promise<void>>();
  const samples: Array<{ t: number; depth: number; lag: number }> = [];
  const start = now();
  let stopSampling = false;
  const sampling = (async () => {
    while (!stopSampling) {
      await sleep(1_000);
      const [text, stats] = await Promise.all([node.metrics(), receiver.stats()]);
      samples.push({
        t: (now() - start) / 1000,
        depth: sample(text, 'webhook_queue_depth') ?? 0,
        lag: sent - stats.paths[ep.path]!.distinct,
      });
    }
  })();
  for (let k = 0; k < ticks; k++) {
    await sleep(Math.max(0, start + k * 100 - now()));
    if (inFlight.size >= 8) continue;
    const p: Promise<void> = chain
      .send(ep.contract, perTx)
      .then(() => {
        sent += perTx;
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  await Promise.all(inFlight);
  stopSampling = true;
  await sampling;

  const achieved = sent / SUSTAIN_SECONDS;
  const steadyPart = samples.filter((s) => s.t > 5);
  const third = Math.max(1, Math.floor(steadyPart.length / 3));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const growth = (key: 'depth' | 'lag') =>
    mean(steadyPart.slice(-third).map((s) => s[key])) - mean(steadyPart.slice(0, third).map((s) => s[key]));
  const finalLag = samples.at(-1)?.lag ?? 0;
  const why = `anvil took ${Math.round(achieved)}/s; depth +${Math.round(growth('depth'))}, lag +${Math.round(growth('lag'))} over the window, final lag ${finalLag}, max depth ${Math.max(0, ...samples.map((s) => s.depth))}`;
  const ok = achieved >= rate * 0.9 && growth('depth') <= rate * 0.5 && growth('lag') <= rate * 0.5 && finalLag <= rate * 2;
  return { ok, why, sent };
}

/** `CONNECTIONS` workers POSTing signed bodies the size of a webhook to the receiver; the best of 3 rounds, requests/s. */
async function rawLoop(receiver: ReceiverHandle, sampleBody: string | null): Promise<number> {
  const secret = `whsec_${randomBytes(24).toString('base64')}`;
  const path = '/raw';
  await receiver.addEndpoint(path, secret);
  const template =
    sampleBody ??
    JSON.stringify({
      type: 'log.created',
      timestamp: new Date().toISOString(),
      data: {
        chainId: 31337,
        blockNumber: 1234,
        blockHash: `0x${'ab'.repeat(32)}`,
        transactionHash: `0x${'cd'.repeat(32)}`,
        logIndex: 0,
        address: `0x${'ef'.repeat(20)}`,
        topics: [`0x${'11'.repeat(32)}`, `0x${'22'.repeat(32)}`, `0x${'0'.repeat(64)}`],
        data: `0x${'0'.repeat(64)}`,
        subscriptionId: 'sub_0123456789abcdef',
      },
    });
  const webhook = new Webhook(secret);
  const agent = new Agent({ connections: CONNECTIONS, pipelining: 1, keepAliveTimeout: 30_000 });
  try {
    const run = async (count: number): Promise<number> => {
      // Signed before the clock starts: the loop is the HTTP path alone.
      const requests = Array.from({ length: 1_000 }, (_, i) => {
        const id = `msg_raw_${i}`;
        const at = new Date();
        const headers = {
          'content-type': 'application/json',
          'webhook-id': id,
          'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
          'webhook-signature': webhook.sign(id, at, template),
        };
        return { body: template, headers };
      });
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: CONNECTIONS }, async () => {
          for (let i = next++; i < count; i = next++) {
            const r = requests[i % requests.length]!;
            const res = await agent.request({
              origin: receiver.origin,
              path,
              method: 'POST',
              headers: r.headers,
              body: r.body,
              headersTimeout: 30_000,
              bodyTimeout: 30_000,
            });
            await res.body.dump();
            if (res.statusCode !== 204) throw new Error(`raw POST got ${res.statusCode}`);
          }
        }),
      );
      return count / ((performance.now() - started) / 1000);
    };
    await run(2_000);
    const rates: number[] = [];
    for (let r = 0; r < 3; r++) rates.push(await run(RAW_REQUESTS));
    console.log(`raw undici rounds: ${rates.map((r) => Math.round(r)).join(', ')} req/s`);
    return Math.max(...rates);
  } finally {
    await agent.close();
  }
}

// Last, so that every class and constant above is initialized when main runs.
if (process.argv.includes('--receiver')) runReceiverChild();
else if (!(await asShipped(import.meta.url))) await main();
