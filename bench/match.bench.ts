/**
 * bench:match — logs/s through the Matcher's hot path with 100,000 subscriptions over 10,000 endpoints,
 * and the process RSS at that size.
 *
 * Measured: `SubscriptionIndex.match` + `buildJob` (webhook-id sha256 + payload object) for every
 * matching (log, subscription) pair, block by block, exactly what the Matcher's `emit` does before its
 * outbox batch, on logs it has never seen: every log of the timed loop is distinct (its own block hash
 * and number, data and wallet topics drawn afresh) and a separate object with its own strings, as the
 * listener's parse of an RPC answer makes them (each chunk goes through JSON), so no string's hash or
 * comparison is already paid for by an earlier pass. The logs come in chunks of LOGS, each generated
 * before its own timed span and dropped after it: the timer runs only while the matcher works, the
 * chunks add up to BENCH_SECONDS of matching, and memory holds one chunk at a time: 4,000 logs, about
 * what a catching-up node holds with no backfill running (two `eth_getLogs` reads sized for about
 * `targetLogsPerRead`, 2,000 by default: the one emitted and the one read ahead,
 * src/actors/chain-listener/follower.ts).
 * As a reference in the same run, each chunk is then matched a second time, timed apart
 * (`replayed_logs_per_s`): what a bench looping over a fixed set of logs would report instead;
 * `distinct_vs_replayed` is the ratio.
 * NOT measured in the matching loop: the store's write (one batch per block with matches) and the zod
 * parse of the incoming message. With `--store postgres`, a commit phase after it (bench/match-commit.ts)
 * measures that write, as the Matcher does it, on LevelDB and on PostgreSQL in the same run:
 * `level_commit_logs_per_s`, `postgres_commit_logs_per_s`, `postgres_vs_level_commit` (bundle run only;
 * BENCH_COMMIT_CHUNKS chunks, default 8). Without it the JSON is the same as ever.
 * Subscriptions reach the index the way the Matcher loads them: a JSON record parsed with the store's
 * zod schema, one at a time (each record carries its own copies of addresses, topics and ids).
 * RSS is the whole measuring process, peak over the timed loop (sampled after each chunk, with the chunk
 * still held; a full GC, untimed, after each chunk is made drops the generator's garbage and the
 * previous chunk). The process runs with the node's heap flags at the node's moments (src/v8-flags.mjs:
 * the start's on its command line, the running node's once the index is built, as the node sets them
 * once its Matcher has loaded its index). The generator holds no pools of contracts, wallets or endpoint
 * ids, which a node would not hold either: each is computed when drawn (`pool`); what it holds, the 300
 * event signatures, is `generator_mb`. The breakdown printed above the JSON line shows what the index
 * itself holds and what V8's young generation takes.
 *
 * Three measuring processes, one after the other, all children of the `npm run bench:match` process
 * (which only builds and launches them; the third is the decoded case below):
 * - bundle: this file bundled by bin/bundle.mjs (our sources and zod in, the other npm packages external
 *   as installed, its source map beside it) and run on plain `node`: exactly how bin/ethhook.mjs runs
 *   the node.
 *   Its figures are `match_logs_per_s` and `rss_mb`.
 * - tsx: this file under `node --import tsx`, as the node runs with ETHHOOK_RUN_SOURCES=1. On Node 20
 *   tsx's module hooks run in a loader thread with its own V8 isolate (~35 MB more RSS). Its figures are
 *   `match_logs_per_s_tsx` and `rss_mb_tsx`, for comparison.
 * BENCH_MATCH_IN_PROCESS=1 measures in the current process instead (run under tsx, or bundled), with the
 * flags it was started with.
 *
 * Subscription mix on one chain (deterministic PRNG; 20,000 contracts of which the first 200 are
 * "tokens" drawn with a skewed popularity, 300 event signatures, 20,000 wallets):
 *   40% a token + its Transfer-like topic0 + a wallet on topic1 or topic2 ("my wallet's transfers");
 *   30% one contract + one topic0 (a project following its own contract's event);
 *   12% one contract, any topic;   8% 2-5 contracts + two topic0 alternatives;
 *   10% any address + a topic0 + a wallet on topic2 ("anything sent to my wallet").
 *   No firehose subscription (any address, any topic): each would add one job to every log.
 * Logs (chunks of 4,000 in blocks of 200; the warm-up is a chunk of its own): 50% token events (same
 * skew), 25% from other followed contracts, 25% from contracts nobody follows; topic0 from the same
 * signatures; topic1/topic2 are a subscribed wallet 10% of the time.
 * Targets: >= 200,000 logs/s (`vs_target`: the rate over it), RSS <= 150 MB. Last line: one JSON object.
 *
 * Decoded case (`decoded_logs_per_s`, `decoded_rss_mb`; a third child, bundled, BENCH_MATCH_CASE=decoded):
 * the same mix, but the 300 signatures are real event declarations
 * (`event E<i>(address indexed from, address indexed to, uint256 value)`, the first being ERC-20's
 * Transfer) and every subscription has an abi (its topic0's event; three events for "one contract, any
 * topic") and an argument filter (`args.value` above a threshold half the values pass, a quarter of them
 * `or` a wallet as `args.to`), stored as the store stores them (src/store/subscriptions.ts). Each
 * candidate the index finds goes through the Matcher's LogDecoder (src/abi/log-decoder.ts: decoded
 * once per log and event, filtered per subscription) before its job, which carries the decoded event.
 * Most logs carry two more topics, so they decode; the others arrive with `event: null`.
 * Targets: >= 100,000 decoded logs/s, RSS <= 150 MB.
 */
import { spawn } from 'node:child_process';
import { hash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { SubscriptionIndex } from '../src/actors/matcher/subscription-index.ts';
import { buildJob, eventTimestamp } from '../src/actors/matcher/jobs.ts';
import type { ChainBlockMessage, ChainLog } from '../src/actors/matcher/messages.ts';
import type { NewJob } from '../src/store/outbox/job.ts';
import { subscriptionSchema, type Subscription } from '../src/store/subscriptions.ts';
import { newId } from '../src/store/ids.ts';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { bundleBench } from './bundled.ts';
import { NPM_START } from './e2e/node.ts';
import { RUNNING_V8_FLAGS, START_V8_FLAGS } from '../src/v8-flags.mjs';
import { commitPhase, type BlockMatches } from './match-commit.ts';
import { LogDecoder, type DecodingSpec } from '../src/abi/log-decoder.ts';
import { eventFromDeclaration } from '../src/abi/events.ts';
import { loadViem } from '../src/abi/viem.ts';

const SUBSCRIPTIONS = 100_000;
const ENDPOINTS = 10_000;
const CONTRACTS = 20_000;
const SIGNATURES = 300;
const TOKENS = 200;
const WALLETS = 20_000;
/** Logs per chunk: about two reads of the listener's default `targetLogsPerRead` (see the header). */
const LOGS = 4_000;
const LOGS_PER_BLOCK = 200;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CHAIN = 1;
const STORE = process.argv.includes('--store') ? process.argv[process.argv.indexOf('--store') + 1] : 'level';
if (STORE !== 'level' && STORE !== 'postgres') throw new Error(`--store must be level or postgres, not ${STORE}`);
const COMMIT_CHUNKS = Number(process.env.BENCH_COMMIT_CHUNKS ?? 8);
const DECODED = process.env.BENCH_MATCH_CASE === 'decoded';
/** logs/s: 200,000 raw, 100,000 decoded (see the header). */
const TARGET = DECODED ? 100_000 : 200_000;
// The node loads viem when a subscription has an abi (src/abi/viem.ts); the decoded case needs it.
if (DECODED) await loadViem();

let seed = 0x2545f491;
function rand(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
}
/** An index below `n`, all equally likely. */
const anyIndex = (n: number): number => Math.floor(rand() * n);
/** An index below `n`, skewed: low indexes are drawn far more often (popularity). */
const skewedIndex = (n: number): number => Math.floor(n * rand() ** 2);
const pick = <T>(xs: readonly T[]): T => xs[anyIndex(xs.length)]!;
const popular = <T>(xs: readonly T[]): T => xs[skewedIndex(xs.length)]!;
/** Flat hex strings (a Buffer, not a rope of concatenations), lowercase like the listener's. */
const hex = (bytes: number) => {
  const b = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i++) b[i] = Math.floor(rand() * 256);
  return `0x${b.toString('hex')}`;
};

/**
 * A pool of `size` distinct hex values of `bytes` bytes (`pad` zero bytes in front), named by `salt`: the
 * i-th is computed when it is drawn (a SHA-256 of the salt and i), so the measuring process holds no
 * pool of contracts, wallets or endpoint ids, which a node would not hold either. Every draw makes a new
 * string, as the listener's parse of an RPC answer does.
 */
function pool(salt: string, size: number, bytes: number, pad = 0) {
  const zeros = '00'.repeat(pad);
  const at = (i: number) => `0x${zeros}${hash('sha256', `${salt}${i}`, 'hex').slice(0, 2 * bytes)}`;
  return {
    /** Any of the pool, equally likely. */
    pick: () => at(anyIndex(size)),
    /** One of the first `n`, the lower indexes drawn far more often (skewed popularity). */
    popular: (n = size) => at(skewedIndex(n)),
  };
}

/**
 * The workload's generators. Of their pools only the event signatures (300) are held; contracts,
 * wallets and endpoint ids are computed when drawn (`pool`). What they hold is printed apart.
 */
function workload() {
  const contracts = pool('contract', CONTRACTS, 20);
  const strangers = pool('stranger', CONTRACTS, 20);
  const declarations = Array.from({ length: SIGNATURES }, (_, i) =>
    i === 0
      ? 'event Transfer(address indexed from, address indexed to, uint256 value)'
      : `event E${i}(address indexed from, address indexed to, uint256 value)`,
  );
  const signatures = DECODED ? declarations.map((d) => eventFromDeclaration(d).topic0) : Array.from({ length: SIGNATURES }, () => hex(32));
  const declarationOf = new Map(signatures.map((t, i) => [t, declarations[i]!]));
  const TRANSFER = signatures[0]!;
  const wallets = pool('wallet', WALLETS, 20, 12);
  // Endpoint ids as long as the store's (`ep_` and 26 characters).
  const endpoints = pool('endpoint', ENDPOINTS, 13);
  const endpointId = () => `ep_${endpoints.pick().slice(2)}`;
  const TX = hex(32);

  /** A subscription of the mix; in the decoded case with the abi and filter the store would hold. */
  function makeSubscription(): Subscription {
    const sub = rawSubscription();
    if (!DECODED) return sub;
    const t0 = sub.topics?.[0];
    const topic0s =
      t0 === undefined || t0 === null ? [pick(signatures), pick(signatures), pick(signatures)] : typeof t0 === 'string' ? [t0] : t0;
    const unique = [...new Set(topic0s)];
    const topics = [unique.length === 1 ? unique[0]! : unique, ...(sub.topics ?? []).slice(1)];
    // Values are 32 random bytes: a threshold of 2^255 lets about half through.
    const value = { 'args.value': { gte: (2n ** 255n + BigInt(Math.floor(rand() * 2 ** 40))).toString() } };
    const filter = rand() < 0.25 ? { or: [value, { 'args.to': { eq: `0x${wallets.pick().slice(26)}` } }] } : value;
    return { ...sub, topics, abi: unique.map((t) => declarationOf.get(t)!), filter };
  }

  function rawSubscription(): Subscription {
    const base = { id: newId('sub_'), endpointId: endpointId(), chainId: CHAIN, createdAt: Date.now() };
    const r = rand();
    if (r < 0.4) {
      const topics: Subscription['topics'] = rand() < 0.5 ? [TRANSFER, wallets.pick()] : [TRANSFER, null, wallets.pick()];
      return { ...base, addresses: [contracts.popular(TOKENS)], topics };
    }
    if (r < 0.7) return { ...base, addresses: [contracts.pick()], topics: [popular(signatures)] };
    if (r < 0.82) return { ...base, addresses: [contracts.pick()] };
    if (r < 0.9) {
      const n = 2 + Math.floor(rand() * 4);
      const addresses = [...new Set(Array.from({ length: n }, () => contracts.pick()))];
      const topic0 = [...new Set([popular(signatures), popular(signatures)])];
      return { ...base, addresses, topics: [topic0.length === 1 ? topic0[0]! : topic0] };
    }
    return { ...base, topics: [popular(signatures), null, wallets.pick()] };
  }

  let nextBlock = 0;
  /**
   * The next LOGS logs, in blocks of LOGS_PER_BLOCK numbered on from the previous chunk's, each with a
   * fresh hash; passed through JSON, so the chunk shares no object or string with the pools or with
   * another chunk.
   */
  function makeBlocks(): ChainBlockMessage[] {
    const logs: ChainLog[] = Array.from({ length: LOGS }, (_, i) => {
      const r = rand();
      const token = r < 0.5;
      const address = token ? contracts.popular(TOKENS) : r < 0.75 ? contracts.pick() : strangers.pick();
      const topic = () => (rand() < 0.1 ? wallets.pick() : `0x${'0'.repeat(24)}${hex(20).slice(2)}`);
      const extra = DECODED ? (rand() < 0.9 ? 2 : Math.floor(rand() * 4)) : Math.floor(rand() * 4);
      const topics = token ? [TRANSFER, topic(), topic()] : [popular(signatures), ...Array.from({ length: extra }, topic)];
      return {
        address,
        topics,
        data: hex(32),
        blockNumber: 0,
        blockHash: '',
        transactionHash: TX,
        transactionIndex: 0,
        logIndex: i % LOGS_PER_BLOCK,
        removed: false,
      };
    });
    const blocks: ChainBlockMessage[] = [];
    for (let b = 0; b * LOGS_PER_BLOCK < LOGS; b++) {
      const number = nextBlock++;
      const blockHash = hex(32);
      const blockLogs = logs.slice(b * LOGS_PER_BLOCK, (b + 1) * LOGS_PER_BLOCK).map((l) => ({ ...l, blockNumber: number, blockHash }));
      blocks.push({
        type: 'chain.block',
        chainId: CHAIN,
        blockNumber: number,
        blockHash,
        parentHash: hex(32),
        timestamp: 1_700_000_000 + number,
        seenAt: Date.now(),
        removed: false,
        logs: blockLogs,
      });
    }
    return JSON.parse(JSON.stringify(blocks)) as ChainBlockMessage[];
  }

  return { makeSubscription, makeBlocks };
}

const MB = 2 ** 20;
const rssMb = () => process.memoryUsage().rss / MB;
const out = (s: string) => process.stdout.write(`${s}\n`);
/** A TypeScript source file can only be running under a TypeScript loader (tsx); the bundle is .mjs. */
const UNDER_TSX = import.meta.url.endsWith('.ts');

if (UNDER_TSX && process.env.BENCH_MATCH_IN_PROCESS !== '1') await launch();
else await measure();

/** Builds the bundle, measures in a plain-node child running it, then in a tsx child; one JSON line of both. */
async function launch(): Promise<void> {
  const source = fileURLToPath(import.meta.url);
  // Bundled exactly as bin/ethhook.mjs bundles the node, and run as it runs it.
  const file = await bundleBench(import.meta.url);
  out(
    'bench:match, measured in three child processes: bundled as bin/ethhook.mjs runs the node, the sources under tsx, then the decoded case bundled',
  );
  // The node's flags and environment as `npm start` gives them (the young generation's size, malloc's
  // arenas and thresholds), and the heap flags bin/ethhook.mjs sets before it loads anything
  // (src/v8-flags.mjs).
  const asStarted = [...NPM_START.nodeArgs, ...START_V8_FLAGS, file];
  const bundled = await child('bundle', [...asStarted, ...(STORE === 'postgres' ? ['--store', 'postgres'] : [])], { ...NPM_START.env });
  const tsx = await child('tsx', [...START_V8_FLAGS, '--import', 'tsx', source]);
  const decoded = await child('decoded', asStarted, { ...NPM_START.env, BENCH_MATCH_CASE: 'decoded' });
  const ok = (rss: number) => (rss <= 150 ? 'OK' : 'MISSED');
  out(
    `RSS <= 150 MB: ${ok(bundled.rss_mb)} as the node runs (bundle on plain node, ${bundled.rss_mb} MB); ${ok(tsx.rss_mb)} with ETHHOOK_RUN_SOURCES=1 (tsx loader, ${tsx.rss_mb} MB)`,
  );
  out(
    JSON.stringify({
      match_logs_per_s: bundled.match_logs_per_s,
      rss_mb: bundled.rss_mb,
      runtime: 'bundle on plain node (bin/ethhook.mjs)',
      match_logs_per_s_tsx: tsx.match_logs_per_s,
      rss_mb_tsx: tsx.rss_mb,
      index_mb: bundled.index_mb,
      generator_mb: bundled.generator_mb,
      new_space_mb: bundled.new_space_mb,
      distinct_logs: bundled.distinct_logs,
      replayed_logs_per_s: bundled.replayed_logs_per_s,
      distinct_vs_replayed: bundled.distinct_vs_replayed,
      vs_target: bundled.vs_target,
      decoded_logs_per_s: decoded.match_logs_per_s,
      decoded_rss_mb: decoded.rss_mb,
      decoded_jobs_per_log: decoded.jobs_per_log,
      ...(bundled.postgres_commit_logs_per_s === undefined
        ? {}
        : {
            postgres_commit_logs_per_s: bundled.postgres_commit_logs_per_s,
            level_commit_logs_per_s: bundled.level_commit_logs_per_s,
            postgres_vs_level_commit: bundled.postgres_vs_level_commit,
            postgres_commit_jobs_per_s: bundled.postgres_commit_jobs_per_s,
            level_commit_jobs_per_s: bundled.level_commit_jobs_per_s,
            commit_logs: bundled.commit_logs,
          }),
    }),
  );
}

interface Figures {
  match_logs_per_s: number;
  rss_mb: number;
  index_mb: number;
  generator_mb: number;
  new_space_mb: number;
  distinct_logs: number;
  replayed_logs_per_s: number;
  distinct_vs_replayed: number;
  vs_target: number;
  jobs_per_log: number;
  postgres_commit_logs_per_s?: number;
  level_commit_logs_per_s?: number;
  postgres_vs_level_commit?: number;
  postgres_commit_jobs_per_s?: number;
  level_commit_jobs_per_s?: number;
  commit_logs?: number;
}

/** Runs one measuring process, echoing its lines under a label; resolves with its JSON line. */
async function child(label: string, args: string[], env: Record<string, string> = {}): Promise<Figures> {
  const proc = spawn(process.execPath, args, {
    env: { ...process.env, BENCH_MATCH_IN_PROCESS: '1', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let text = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
  const lines = text.trimEnd().split('\n');
  for (const line of lines.slice(0, -1)) out(`  [${label}] ${line}`);
  if (code !== 0) throw new Error(`bench:match ${label} child exited with ${code}`);
  return JSON.parse(lines.at(-1) ?? '') as Figures;
}

async function measure(): Promise<void> {
  // A full GC on demand, outside the timed loop, so the index's live size can be told apart from garbage.
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const liveHeapMb = () => {
    gc();
    gc();
    return process.memoryUsage().heapUsed / MB;
  };
  const rssBefore = rssMb();

  const { index, decoder, withSpec, buildMs, indexMb, generatorMb, generate } = load(liveHeapMb);
  // As the node once its actors started (the Matcher's index loaded): the young generation grows again.
  for (const flag of RUNNING_V8_FLAGS) v8.setFlagsFromString(flag);
  const liveLoadedMb = liveHeapMb();
  const rssLoaded = rssMb();

  /** The Matcher's emit without the store: match every log, build every job of the block. */
  const matchBlock = (block: ChainBlockMessage): number => {
    const timestamp = eventTimestamp(block);
    const jobs: NewJob[] = [];
    for (const log of block.logs) {
      for (const sub of index.match(block.chainId, log)) {
        // As the Matcher's emit: a subscription with an abi or a filter has the candidate decoded and filtered.
        const spec = sub.spec;
        const decoding = spec && decoder.decode(spec, log);
        if (spec !== undefined && !decoder.accepts(spec, log, decoding)) continue;
        jobs.push(
          buildJob(block, log, { subscriptionId: sub.id, endpointId: sub.endpointId }, 'log.created', timestamp, 0, decoding?.event),
        );
      }
    }
    decoder.forgetLog();
    return jobs.length;
  };

  // Warm-up: one chunk of its own, never timed, so the JIT has seen the hot path.
  let warmJobs = 0;
  for (const b of generate.makeBlocks()) warmJobs += matchBlock(b);

  // Chunk by chunk: made (untimed), matched (timed), matched again (timed apart: the replay reference),
  // dropped; until the first passes' spans add up to SECONDS. A full GC after each chunk is made clears
  // the generator's garbage (the JSON text, the objects before it) and the chunk before, which are the
  // bench's, not the Matcher's; the Matcher's own garbage is collected while timed.
  let processed = 0;
  let jobs = 0;
  let chunks = 0;
  let timedMs = 0;
  let replayMs = 0;
  let peakRss = Math.max(rssLoaded, rssMb());
  let lastBlock = -1;
  while (timedMs < SECONDS * 1000) {
    const blocks = generate.makeBlocks();
    gc();
    if (blocks[0]!.blockNumber <= lastBlock) throw new Error('bench:match: a chunk repeats blocks');
    lastBlock = blocks.at(-1)!.blockNumber;
    const started = performance.now();
    for (const b of blocks) jobs += matchBlock(b);
    const replayStarted = performance.now();
    timedMs += replayStarted - started;
    for (const b of blocks) matchBlock(b);
    replayMs += performance.now() - replayStarted;
    processed += LOGS;
    chunks++;
    peakRss = Math.max(peakRss, rssMb());
  }
  const elapsed = timedMs / 1000;

  const logsPerS = processed / elapsed;
  const replayedPerS = processed / (replayMs / 1000);
  const runtime = UNDER_TSX ? 'node + the tsx loader thread' : 'plain node';
  out(
    `${DECODED ? 'decoded case: ' : ''}subscriptions ${index.size} over ${ENDPOINTS} endpoints (${withSpec} with an abi and a filter), index built in ${buildMs.toFixed(0)} ms`,
  );
  out(
    `logs: ${chunks} chunks of ${LOGS} distinct logs in blocks of ${LOGS_PER_BLOCK}, each made before its timed span; jobs per log ${(warmJobs / LOGS).toFixed(3)}`,
  );
  out(
    `matched ${processed} distinct logs (none seen twice) in ${elapsed.toFixed(2)} s: ${Math.round(logsPerS)} logs/s, ${Math.round(jobs / elapsed)} jobs/s (no LevelDB writes in the loop)`,
  );
  const newSpace = v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space')!.space_size / MB;
  out(
    `the same logs matched a second time: ${Math.round(replayedPerS)} logs/s; first sight / second ${(logsPerS / replayedPerS).toFixed(2)}`,
  );
  out(
    `RSS: ${rssBefore.toFixed(0)} MB at start (${runtime} + imports), ${rssLoaded.toFixed(0)} MB with the index, peak ${peakRss.toFixed(0)} MB with a chunk of logs`,
  );
  out(
    `live heap ${liveLoadedMb.toFixed(1)} MB with the index; the index ${indexMb.toFixed(1)} MB (${Math.round((indexMb * MB) / SUBSCRIPTIONS)} B per subscription); the generator's pools ${generatorMb.toFixed(1)} MB`,
  );
  out(`V8 new space committed ${newSpace.toFixed(0)} MB (the default young generation grows to its maximum while the index is built)`);
  out(
    `targets: >= ${TARGET} logs/s ${logsPerS >= TARGET ? 'OK' : 'MISSED'}, RSS <= 150 MB ${peakRss <= 150 ? 'OK' : 'MISSED'} (${runtime})`,
  );
  const commit = STORE === 'postgres' ? await measureCommit(generate.makeBlocks) : undefined;
  out(
    JSON.stringify({
      match_logs_per_s: Math.round(logsPerS),
      rss_mb: Math.round(peakRss),
      index_mb: Number(indexMb.toFixed(1)),
      generator_mb: Number(generatorMb.toFixed(1)),
      new_space_mb: Math.round(newSpace),
      distinct_logs: processed,
      replayed_logs_per_s: Math.round(replayedPerS),
      distinct_vs_replayed: Number((logsPerS / replayedPerS).toFixed(3)),
      vs_target: Number((logsPerS / TARGET).toFixed(2)),
      jobs_per_log: Number((jobs / processed).toFixed(3)),
      ...commit,
    }),
  );

  /** The commit phase (bench/match-commit.ts) on this index; its figures as the JSON's fields. */
  async function measureCommit(makeBlocks: () => ChainBlockMessage[]) {
    const matchPairs = (block: ChainBlockMessage): BlockMatches => {
      const timestamp = eventTimestamp(block);
      const m: BlockMatches = { jobs: [], records: [] };
      for (const log of block.logs) {
        for (const sub of index.match(block.chainId, log)) {
          const record = { logIndex: log.logIndex, subscriptionId: sub.id, endpointId: sub.endpointId };
          m.records.push(record);
          m.jobs.push(buildJob(block, log, record, 'log.created', timestamp));
        }
      }
      return m;
    };
    const f = await commitPhase({ chunks: COMMIT_CHUNKS, makeBlocks, matchBlock: matchPairs });
    out(
      `commit (the Matcher's reads + enqueueBatch per block, ${f.logs} logs, ${f.jobs} jobs): LevelDB ${Math.round(f.levelLogsPerS)} logs/s (${Math.round(f.levelJobsPerS)} jobs/s), PostgreSQL ${Math.round(f.postgresLogsPerS)} logs/s (${Math.round(f.postgresJobsPerS)} jobs/s), x${(f.postgresLogsPerS / f.levelLogsPerS).toFixed(2)}`,
    );
    return {
      postgres_commit_logs_per_s: Math.round(f.postgresLogsPerS),
      level_commit_logs_per_s: Math.round(f.levelLogsPerS),
      postgres_vs_level_commit: Number((f.postgresLogsPerS / f.levelLogsPerS).toFixed(3)),
      postgres_commit_jobs_per_s: Math.round(f.postgresJobsPerS),
      level_commit_jobs_per_s: Math.round(f.levelJobsPerS),
      commit_logs: f.logs,
    };
  }
}

/** Builds the generator's pools, then the index the way the Matcher loads it; each one's live size apart. */
function load(liveHeapMb: () => number) {
  const heapBeforePools = liveHeapMb();
  const generate = workload();
  const heapBeforeIndex = liveHeapMb();
  const buildStarted = performance.now();
  // As the Matcher: each subscription's decoding spec (abi and filter) kept in its slot of the index.
  const index = new SubscriptionIndex<DecodingSpec>();
  const decoder = new LogDecoder();
  let withSpec = 0;
  for (let i = 0; i < SUBSCRIPTIONS; i++) {
    const sub = subscriptionSchema.parse(JSON.parse(JSON.stringify(generate.makeSubscription())));
    const spec = decoder.acquire(sub);
    if (spec !== undefined) withSpec++;
    index.add(sub, spec);
  }
  const buildMs = performance.now() - buildStarted;
  const indexMb = liveHeapMb() - heapBeforeIndex;
  return { index, decoder, withSpec, buildMs, indexMb, generatorMb: heapBeforeIndex - heapBeforePools, generate };
}
