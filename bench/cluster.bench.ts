/**
 * bench:cluster — instances of one cluster on one PostgreSQL: webhooks/s delivered by 1, 2 and 3 of
 * them, the failover time when the instance ingesting the chain is killed, and what that kill costs.
 *
 * Processes, all on 127.0.0.1 and all stopped by the bench (also on error, SIGINT and SIGTERM): a real
 * anvil with Tick contracts (bench/e2e/chain.ts), PostgreSQL with its durability defaults
 * (bench/postgres.ts), the verifying receiver in a process of its own (bench/e2e/receiver.ts: every
 * signature checked, logs counted once per path by their `seq`, copies counted as duplicates), and
 * node processes as shipped (bench/e2e/node.ts) on the bench's PostgreSQL: every phase a fresh schema
 * (`bench_cluster_<phase>`, dropped after it) and fresh instances `c1`, `c2`, ... sharing one
 * ETHHOOK_MASTER_KEY, the shipped defaults otherwise — `cluster: { leaseMs: 15000, heartbeatMs: 5000 }`
 * included, except in the `failover_short` phase. A phase starts its instances one after another, creates
 * BENCH_CLUSTER_ENDPOINTS (4) endpoints, each with a Tick contract of its own and one subscription to
 * it, through the first instance, and waits until GET /v1/cluster lists every instance live and one
 * holding the chain, and every instance's `chain_height` is the chain's head.
 *
 * - scale (N = 1, 2, 3 in the same run): BENCH_CLUSTER_LOGS (20,000) logs, the same backlog each time,
 *   in 1,000-log transactions over the endpoints' contracts in turn, 4 in flight. `per_s_<N>` = logs /
 *   (first transaction sent → last webhook received); `ratio_2` and `ratio_3` divide by `per_s_1`.
 *   One instance ingests the chain whatever N is; delivery is what spreads (each instance claims due
 *   jobs from the shared outbox), and each instance's share is printed (`webhook_deliveries_total`).
 * - failover (3 instances, default lease): traffic of BENCH_CLUSTER_RATE (200) logs/s (a transaction
 *   every 200 ms), and after BENCH_CLUSTER_BEFORE_SECONDS (10) the instance holding the chain's lease
 *   (GET /v1/cluster) is killed with SIGKILL. Every survivor's /metrics is read every 50 ms:
 *   `failover_ms` = the kill → the first reading in which a survivor shows `chain_lease_held{chain}` 1
 *   and `chain_processed_height{chain}` (the last block its Matcher committed) above the highest
 *   processed height any instance showed before the kill. So it is the lease's expiry, the successor's
 *   round and its first block's ingestion, to within the 50 ms poll and the one block interval (200 ms)
 *   it may take for a new block to come. Traffic goes on BENCH_CLUSTER_AFTER_SECONDS (10) after that
 *   first block, then stops, and every webhook has 120 s to arrive: `lost` = logs mined − distinct logs
 *   received, `duplicates` = copies received (a delivery the killed instance made but could not record
 *   is made again once its claim expired).
 * - failover_short (BENCH_CLUSTER_SHORT=0 skips): the same with `cluster: { leaseMs: 3000, heartbeatMs:
 *   1000 }`: `failover_short_ms`, `lost_short`, `duplicates_short`.
 *
 * On this machine (2 cores shared by anvil, PostgreSQL, the receiver and every instance), more instances
 * add work (heartbeats, claims, PostgreSQL connections) and no core: the scaling figures show what a
 * cluster costs, not what it gains. Last line: one JSON object (`per_s_1`, `per_s_2`, `per_s_3`,
 * `failover_ms`, `lost`, `duplicates` first). Every wait has a deadline.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { asShipped, execArgvFor } from './bundled.ts';
import { startChain, type Chain } from './e2e/chain.ts';
import { startNode, type BenchNode } from './e2e/node.ts';
import { sample } from './e2e/prometheus.ts';
import { runReceiverChild, startReceiver, type ReceiverHandle } from './e2e/receiver.ts';
import { dropSchema, startBenchPostgres, type BenchPostgres } from './postgres.ts';

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const LOGS = env('BENCH_CLUSTER_LOGS', 20_000);
const ENDPOINTS = env('BENCH_CLUSTER_ENDPOINTS', 4);
const RATE = env('BENCH_CLUSTER_RATE', 200);
const BEFORE_SECONDS = env('BENCH_CLUSTER_BEFORE_SECONDS', 10);
const AFTER_SECONDS = env('BENCH_CLUSTER_AFTER_SECONDS', 10);
const SHORT = process.env.BENCH_CLUSTER_SHORT !== '0';
const SIZES = [1, 2, 3] as const;
const BIG_TX = 1_000;
const TICK_MS = 200;
const POLL_MS = 50;
const DRAIN_MS = 120_000;
const CHAIN_LABEL = { chain: 'anvil' };
const SHORT_TIMING = { leaseMs: 3_000, heartbeatMs: 1_000 };

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Results {
  per_s_1: number | null;
  per_s_2: number | null;
  per_s_3: number | null;
  failover_ms: number | null;
  lost: number | null;
  duplicates: number | null;
  ratio_2: number | null;
  ratio_3: number | null;
  failover_short_ms: number | null;
  lost_short: number | null;
  duplicates_short: number | null;
  /** Webhooks of the scale phases that did not arrive within their bound (must be 0). */
  scale_lost: number;
  bad_signatures: number;
  logs: number;
  endpoints: number;
  lease_ms: number;
  error?: string;
}

interface Endpoint {
  path: string;
  contract: string;
}

interface ClusterAnswer {
  cluster: { instances: Array<{ id: string; live: boolean }>; leases: Array<{ name: string; holder: string | null; expiresAt: string }> };
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, what: string, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** One phase's cluster: its schema, its instances, its endpoints. */
class Phase {
  readonly instances = new Map<string, BenchNode>();
  readonly endpoints: Endpoint[] = [];
  private readonly masterKey = randomBytes(32).toString('hex');

  constructor(
    readonly name: string,
    private readonly chain: Chain,
    private readonly pg: BenchPostgres,
    private readonly receiver: ReceiverHandle,
    private readonly all: Set<BenchNode>,
    private readonly timing: Record<string, number> | undefined,
  ) {}

  get schema(): string {
    return `bench_cluster_${this.name}`;
  }

  /** Starts `size` instances, creates the endpoints, waits until the cluster is formed and follows the head. */
  async start(size: number): Promise<void> {
    await dropSchema(this.pg.url, this.schema);
    const startBlock = await this.chain.head();
    for (let n = 1; n <= size; n++) {
      const id = `c${n}`;
      const node = await startNode([this.chain.nodeChain(startBlock + 1)], {
        config: {
          node: { id },
          store: { kind: 'postgres', url: this.pg.url, schema: this.schema },
          ...(this.timing ? { cluster: this.timing } : {}),
        },
        env: { ETHHOOK_MASTER_KEY: this.masterKey },
      });
      this.all.add(node);
      this.instances.set(id, node);
    }
    const first = [...this.instances.values()][0]!;
    for (let i = 0; i < ENDPOINTS; i++) {
      const path = `/${this.name}/e${i}`;
      const contract = await this.chain.deploy();
      const created = await first.api<{ endpoint: { id: string }; secret: string }>('POST', '/v1/endpoints', {
        url: `${this.receiver.origin}${path}`,
        description: path,
      });
      await this.receiver.addEndpoint(path, created.secret);
      await first.api('POST', '/v1/subscriptions', { endpointId: created.endpoint.id, chainId: 31337, addresses: [contract] });
      this.endpoints.push({ path, contract });
    }
    await waitFor(
      async () => {
        const view = (await first.api<ClusterAnswer>('GET', '/v1/cluster')).cluster;
        return view.instances.filter((i) => i.live).length === size && this.leaseHolder(view) !== undefined;
      },
      60_000,
      `${size} live instances and a holder of the chain`,
    );
    const head = await this.chain.head();
    for (const [id, node] of this.instances) {
      await waitFor(async () => (sample(await node.metrics(), 'chain_height', CHAIN_LABEL) ?? -1) >= head, 30_000, `${id} at the head`);
    }
  }

  leaseHolder(view: ClusterAnswer['cluster']): string | undefined {
    const lease = view.leases.find((l) => l.name === 'chain:31337');
    return lease?.holder !== null && lease !== undefined && Date.parse(lease.expiresAt) > Date.now() ? lease.holder : undefined;
  }

  async holder(): Promise<string> {
    let found: string | undefined;
    await waitFor(
      async () => {
        const node = [...this.instances.values()][0]!;
        found = this.leaseHolder((await node.api<ClusterAnswer>('GET', '/v1/cluster')).cluster);
        return found !== undefined;
      },
      60_000,
      'a holder of the chain',
    );
    return found!;
  }

  /** Distinct logs and copies received on this phase's paths. */
  async received(): Promise<{ distinct: number; duplicates: number; last: number | null }> {
    const stats = await this.receiver.stats();
    let distinct = 0;
    let duplicates = 0;
    let last: number | null = null;
    for (const { path } of this.endpoints) {
      const s = stats.paths[path]!;
      distinct += s.distinct;
      duplicates += s.duplicates;
      if (s.last !== null) last = Math.max(last ?? 0, s.last);
    }
    return { distinct, duplicates, last };
  }

  /** Waits (at most `timeoutMs`) until `count` distinct logs arrived; resolves with what did. */
  async drain(count: number, timeoutMs: number): Promise<{ distinct: number; duplicates: number; last: number | null }> {
    await waitFor(async () => (await this.received()).distinct >= count, timeoutMs, `${count} webhooks`, 100).catch(() => undefined);
    return this.received();
  }

  /** Each instance's successful deliveries, as its metrics count them. */
  async shares(): Promise<string> {
    const parts: string[] = [];
    for (const [id, node] of this.instances) {
      const text = await node.metrics().catch(() => '');
      parts.push(`${id} ${sample(text, 'webhook_deliveries_total', { status: 'success' }) ?? 0}`);
    }
    return parts.join(', ');
  }

  async stop(): Promise<void> {
    for (const node of this.instances.values()) {
      await node.stop().catch(() => node.kill());
      this.all.delete(node);
    }
    await dropSchema(this.pg.url, this.schema).catch(() => undefined);
  }
}

/** `logs` logs in 1,000-log transactions over the contracts in turn, 4 in flight; the time of the first send. */
async function emitBacklog(chain: Chain, contracts: string[], logs: number): Promise<number> {
  const sizes = Array.from({ length: Math.ceil(logs / BIG_TX) }, (_, i) => Math.min(BIG_TX, logs - i * BIG_TX));
  const started = now();
  let next = 0;
  const hashes: string[] = [];
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let i = next++; i < sizes.length; i = next++) hashes.push(await chain.send(contracts[i % contracts.length]!, sizes[i]!));
    }),
  );
  for (const h of hashes) await chain.waitMined(h);
  return started;
}

/** A transaction of RATE / 5 logs every 200 ms over the contracts in turn, until `stop()`; resolves with the logs mined. */
function startTraffic(chain: Chain, contracts: string[]): { stop(): Promise<number> } {
  let on = true;
  let logs = 0;
  const perTx = Math.max(1, Math.round((RATE * TICK_MS) / 1_000));
  const loop = (async () => {
    for (let i = 0; on; i++) {
      const began = Date.now();
      const hash = await chain.send(contracts[i % contracts.length]!, perTx);
      await chain.waitMined(hash, 30_000);
      logs += perTx;
      await sleep(Math.max(0, TICK_MS - (Date.now() - began)));
    }
  })();
  return {
    async stop() {
      on = false;
      await loop;
      return logs;
    },
  };
}

/**
 * Kills the chain's holder with SIGKILL during traffic; resolves with the failover time (ms, see the
 * header), the lost webhooks and the duplicates.
 */
async function failover(phase: Phase, chain: Chain): Promise<{ ms: number; lost: number; duplicates: number }> {
  const traffic = startTraffic(
    chain,
    phase.endpoints.map((e) => e.contract),
  );
  try {
    await sleep(BEFORE_SECONDS * 1_000);
    const victim = await phase.holder();
    let processed = 0;
    for (const node of phase.instances.values())
      processed = Math.max(processed, sample(await node.metrics(), 'chain_processed_height', CHAIN_LABEL) ?? 0);
    const killedAt = now();
    phase.instances.get(victim)!.kill();
    const survivors = [...phase.instances].filter(([id]) => id !== victim);
    let successor = '';
    await waitFor(
      async () => {
        for (const [id, node] of survivors) {
          const text = await node.metrics();
          const held = sample(text, 'chain_lease_held', CHAIN_LABEL) === 1;
          if (held && (sample(text, 'chain_processed_height', CHAIN_LABEL) ?? 0) > processed) {
            successor = id;
            return true;
          }
        }
        return false;
      },
      120_000,
      `a successor of ${victim} ingesting a block`,
      POLL_MS,
    );
    const ms = Math.round(now() - killedAt);
    console.log(`  ${victim} (holding the chain, processed height ${processed}) killed; ${successor} ingested a new block ${ms} ms later`);
    phase.instances.delete(victim);
    await sleep(AFTER_SECONDS * 1_000);
    const logs = await traffic.stop();
    const got = await phase.drain(logs, DRAIN_MS);
    console.log(
      `  ${logs} logs mined, ${got.distinct} received, ${logs - got.distinct} lost, ${got.duplicates} duplicates; deliveries: ${await phase.shares()}`,
    );
    return { ms, lost: logs - got.distinct, duplicates: got.duplicates };
  } finally {
    await traffic.stop();
  }
}

async function main(): Promise<void> {
  const all = new Set<BenchNode>();
  const cleanups: Array<() => Promise<void>> = [];
  process.once('exit', () => {
    for (const n of all) n.kill();
  });
  const cleanup = async () => {
    for (const n of all) await n.stop().catch(() => n.kill());
    for (const c of cleanups.reverse()) await c().catch(() => {});
  };
  const onSignal = (signal: NodeJS.Signals) => {
    console.error(`bench:cluster: ${signal}, stopping everything`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const results: Results = {
    per_s_1: null,
    per_s_2: null,
    per_s_3: null,
    failover_ms: null,
    lost: null,
    duplicates: null,
    ratio_2: null,
    ratio_3: null,
    failover_short_ms: null,
    lost_short: null,
    duplicates_short: null,
    scale_lost: 0,
    bad_signatures: 0,
    logs: LOGS,
    endpoints: ENDPOINTS,
    lease_ms: 15_000,
  };
  try {
    const chain = await startChain();
    cleanups.push(() => chain.stop());
    const pg = await startBenchPostgres();
    cleanups.push(() => pg.stop());
    const receiver = await startReceiver(fileURLToPath(import.meta.url), execArgvFor(import.meta.url));
    cleanups.push(() => receiver.stop());
    console.log(
      `bench:cluster  anvil ${chain.anvil.httpUrl}  PostgreSQL ${pg.url.replace(/:[^:@/]*@/, ':****@')}  receiver ${receiver.origin}`,
    );
    const phase = (name: string, timing?: Record<string, number>) => new Phase(name, chain, pg, receiver, all, timing);

    for (const size of SIZES) {
      const p = phase(`n${size}`);
      try {
        await p.start(size);
        const started = await emitBacklog(
          chain,
          p.endpoints.map((e) => e.contract),
          LOGS,
        );
        const got = await p.drain(LOGS, Math.max(DRAIN_MS, LOGS * 10));
        results.scale_lost += LOGS - got.distinct;
        const perS = got.distinct === LOGS && got.last !== null ? Math.round(LOGS / ((got.last - started) / 1_000)) : null;
        results[`per_s_${size}` as const] = perS;
        console.log(
          `${size} instance(s): ${LOGS} logs → ${got.distinct} webhooks in ${got.last === null ? '-' : ((got.last - started) / 1_000).toFixed(1)} s: ${perS ?? 'incomplete'}/s, ${got.duplicates} duplicates; deliveries: ${await p.shares()}`,
        );
      } finally {
        await p.stop();
      }
    }
    const ratio = (x: number | null) => (x === null || results.per_s_1 === null ? null : Number((x / results.per_s_1).toFixed(2)));
    results.ratio_2 = ratio(results.per_s_2);
    results.ratio_3 = ratio(results.per_s_3);

    const failovers: Array<{ name: string; timing: Record<string, number> | undefined }> = [
      { name: 'failover', timing: undefined },
      ...(SHORT ? [{ name: 'failover_short', timing: SHORT_TIMING }] : []),
    ];
    for (const { name, timing } of failovers) {
      console.log(
        `${name}: 3 instances, lease ${timing?.leaseMs ?? 15_000} ms, heartbeat ${timing?.heartbeatMs ?? 5_000} ms, ${RATE} logs/s; the holder killed after ${BEFORE_SECONDS} s`,
      );
      const p = phase(name, timing);
      try {
        await p.start(3);
        const f = await failover(p, chain);
        if (timing === undefined) Object.assign(results, { failover_ms: f.ms, lost: f.lost, duplicates: f.duplicates });
        else Object.assign(results, { failover_short_ms: f.ms, lost_short: f.lost, duplicates_short: f.duplicates });
      } finally {
        await p.stop();
      }
    }
    results.bad_signatures = (await receiver.stats()).invalid;
  } catch (err) {
    results.error = err instanceof Error ? err.message : String(err);
    console.error(`bench:cluster failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  } finally {
    await cleanup();
  }
  console.log(JSON.stringify(results));
}

// Last, so that every class and constant above is initialized when main runs.
if (process.argv.includes('--receiver')) runReceiverChild();
else if (!(await asShipped(import.meta.url))) await main();
