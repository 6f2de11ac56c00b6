/**
 * bench:ingest — the ChainListener against a local anvil, with ethers v6 as the peer in the same run:
 *   - backfill: logs/s from block 0 to the head over a range holding >= 100,000 Tick logs, through the
 *     whole listener (getLogs ranges + header batches + consistency checks + the ask to an in-process
 *     collector + the LevelDB cursor write per block);
 *   - peer: the same ranges through ethers v6 `WebSocketProvider.getLogs` (fetch and parse only);
 *   - live: head-to-emit latency, from the `newHeads` frame's arrival to the message reaching the
 *     collector, p50/p99 over LIVE_BLOCKS blocks of a second anvil that mines every LIVE_BLOCK_MS, with
 *     a 5-log transaction sent every half block; then the same with two providers (two connections to
 *     that anvil, each followed), the listener reading from one and the other kept in step;
 *   - the node's own share, measured first on the same anvil with a bare `ws` client: from the
 *     `newHeads` frame to the answer of `eth_getLogs { blockHash }` (the one round trip the listener
 *     makes per live block), p50/p99.
 * Last line: one JSON object.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { WebSocketProvider } from 'ethers';
import WebSocket from 'ws';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { chainConfigSchema, createChainListener } from '../src/actors/chain-listener/index.ts';
import type { ChainBlockMessage } from '../src/actors/chain-listener/messages.ts';
import { spawnAnvil } from '../src/dev-chain/anvil-process.ts';
import { deployTickContract, devAccount, sendTicks, waitForReceipt, type RpcFn } from '../src/dev-chain/tick-contract.ts';
import type { ActorContext, ActorRef } from '../src/runtime/types.ts';
import { openDb } from '../src/store/level/db.ts';
import { LevelKv } from '../src/store/level/kv.ts';

const TX = 200;
const TICKS_PER_TX = 500; // 200 x 500 = 100,000 logs, one transaction per block (automine)
const RANGE = 20; // blocks per eth_getLogs, for both clients (10,000 logs per call)
const LIVE_BLOCKS = 300;
const LIVE_BLOCK_MS = 100;
const TARGET = '/pipeline/matcher';

const now = () => performance.timeOrigin + performance.now();
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;

const anvil = await spawnAnvil();
let rpcId = 0;
const rpcOf =
  (url: string): RpcFn =>
  async (method, params) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: ++rpcId, method, params }),
    });
    const body = (await res.json()) as { result?: unknown; error?: { message: string } };
    if (body.error) throw new Error(`${method}: ${body.error.message}`);
    return body.result;
  };
const rpc = rpcOf(anvil.httpUrl);

/** Runs a listener behaviour with a hand-made context whose target is `onMessage`. */
async function runListener(chain: object, onMessage: (msg: ChainBlockMessage) => void) {
  const dir = await mkdtemp(join(tmpdir(), 'ethhook-bench-ingest-'));
  const db = await openDb(dir);
  const behaviour = createChainListener({
    chain: chainConfigSchema.parse({ chainId: 31337, name: 'bench', ...('providers' in chain ? {} : { wsUrl: anvil.wsUrl }), ...chain }),
    store: new LevelKv(db),
    target: TARGET,
    registry: new Registry(),
  });
  const collector = {
    ask: async (msg: ChainBlockMessage | { type: 'chain.finality' }) => {
      // The listener also tells its finality (`chain.finality`, between blocks): only blocks are measured.
      if (msg.type === 'chain.block') onMessage(msg);
      return { ok: true };
    },
  } as unknown as ActorRef;
  const ctx = {
    path: '/pipeline/chains/chain-listener:31337',
    name: 'chain-listener:31337',
    log: pino({ level: 'silent' }),
    incarnation: 1,
    lookup: (p: string) => (p === TARGET ? collector : undefined),
    fail: (err: unknown) => {
      throw err;
    },
    stopSelf: () => {},
  } as unknown as ActorContext<never>;
  await behaviour.preStart!(ctx);
  return {
    stop: async () => {
      await behaviour.postStop!(ctx);
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A bare client: for `count` heads, ms from the newHeads frame to the eth_getLogs-by-hash answer. */
async function rawNodeLatencies(wsUrl: string, count: number): Promise<number[]> {
  const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const asked = new Map<number, number>();
  const out: number[] = [];
  let id = 1;
  await new Promise<void>((resolve) => {
    ws.on('message', (data) => {
      const t = now();
      // A client with ws's default binaryType gets each text frame as one Buffer.
      const frame = JSON.parse((data as Buffer).toString('utf8')) as {
        id?: number;
        method?: string;
        params?: { result: { hash: string } };
      };
      if (frame.method === 'eth_subscription') {
        asked.set(++id, t);
        ws.send(JSON.stringify({ jsonrpc: '2.0', id, method: 'eth_getLogs', params: [{ blockHash: frame.params!.result.hash }] }));
      } else if (frame.id !== undefined && asked.has(frame.id)) {
        out.push(t - asked.get(frame.id)!);
        if (out.length >= count) resolve();
      }
    });
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_subscribe', params: ['newHeads'] }));
  });
  ws.close();
  return out;
}

try {
  const from = await devAccount(rpc);
  const contract = await deployTickContract(rpc, from);
  for (let i = 0; i < TX; i++) await waitForReceipt(rpc, await sendTicks(rpc, from, contract, TICKS_PER_TX));
  const head = Number.parseInt((await rpc('eth_blockNumber', [])) as string, 16);
  const expected = TX * TICKS_PER_TX + 0;
  console.log(`anvil ${anvil.httpUrl}: ${expected} Tick logs in blocks 0..${head}`);

  // Backfill through the listener.
  let logs = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const t0 = performance.now();
  const backfill = await runListener({ startBlock: 0, backfillRange: RANGE, heartbeatMs: 60_000 }, (msg) => {
    logs += msg.logs.length;
    if (msg.blockNumber === head) done();
  });
  await finished;
  const backfillS = (performance.now() - t0) / 1000;
  await backfill.stop();
  const backfillRate = logs / backfillS;
  if (logs !== expected) throw new Error(`the listener emitted ${logs} logs, not the ${expected} anvil holds`);
  console.log(`listener backfill: ${logs} logs in ${backfillS.toFixed(2)} s = ${Math.round(backfillRate)} logs/s`);

  // The same ranges through ethers v6.
  const provider = new WebSocketProvider(anvil.wsUrl, 31337, { staticNetwork: true });
  let ethersLogs = 0;
  const t1 = performance.now();
  for (let start = 0; start <= head; start += RANGE) {
    ethersLogs += (await provider.getLogs({ fromBlock: start, toBlock: Math.min(head, start + RANGE - 1) })).length;
  }
  const ethersS = (performance.now() - t1) / 1000;
  await provider.destroy();
  const ethersRate = ethersLogs / ethersS;
  console.log(`ethers v6 getLogs: ${ethersLogs} logs in ${ethersS.toFixed(2)} s = ${Math.round(ethersRate)} logs/s`);

  // Live, on a second anvil mining a block every LIVE_BLOCK_MS (so that sending transactions does not
  // make anvil mine while the listener reads): latency from the newHeads frame to the collector.
  const liveAnvil = await spawnAnvil({ args: ['--block-time', String(LIVE_BLOCK_MS / 1000)] });
  const liveRpc = rpcOf(liveAnvil.httpUrl);
  const liveContract = await deployTickContract(liveRpc, from);
  let sending = true;
  const traffic = (async () => {
    while (sending) {
      await sendTicks(liveRpc, from, liveContract, 5);
      await new Promise((r) => setTimeout(r, LIVE_BLOCK_MS / 2));
    }
  })();
  const raw = (await rawNodeLatencies(liveAnvil.wsUrl, LIVE_BLOCKS)).sort((a, b) => a - b);
  console.log(
    `node alone (newHeads frame -> eth_getLogs by hash answered): p50 ${percentile(raw, 0.5).toFixed(3)} ms, p99 ${percentile(raw, 0.99).toFixed(3)} ms`,
  );
  /** Head-to-emit latencies over LIVE_BLOCKS blocks, sorted; throws when a block or a log is missing. */
  const liveRun = async (chain: object): Promise<number[]> => {
    const latencies: number[] = [];
    const seen: ChainBlockMessage[] = [];
    let liveStart = Number.POSITIVE_INFINITY;
    const live = await runListener({ heartbeatMs: 60_000, ...chain }, (msg) => {
      if (msg.blockNumber < liveStart) return;
      latencies.push(now() - msg.seenAt);
      seen.push(msg);
    });
    await new Promise((r) => setTimeout(r, 500));
    liveStart = Number.parseInt((await liveRpc('eth_blockNumber', [])) as string, 16) + 1;
    const deadline = Date.now() + 120_000;
    while (latencies.length < LIVE_BLOCKS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await live.stop();
    for (const [i, msg] of seen.entries()) {
      const logs = (await liveRpc('eth_getLogs', [{ blockHash: msg.blockHash }])) as unknown[];
      if (msg.removed || msg.blockNumber !== liveStart + i || msg.logs.length !== logs.length) {
        throw new Error(
          `live block ${msg.blockNumber}: emitted ${msg.logs.length} logs (removed ${msg.removed}), anvil has ${logs.length} at ${liveStart + i}`,
        );
      }
    }
    return latencies.sort((a, b) => a - b);
  };
  const sorted = await liveRun({ wsUrl: liveAnvil.wsUrl });
  const p50 = percentile(sorted, 0.5);
  const p99 = percentile(sorted, 0.99);
  console.log(
    `live head-to-emit over ${sorted.length} blocks: p50 ${p50.toFixed(3)} ms, p99 ${p99.toFixed(3)} ms, max ${sorted.at(-1)!.toFixed(3)} ms`,
  );
  const two = await liveRun({
    providers: [
      { name: 'a', wsUrl: liveAnvil.wsUrl },
      { name: 'b', wsUrl: `${liveAnvil.wsUrl}/` },
    ],
  });
  const twoP50 = percentile(two, 0.5);
  const twoP99 = percentile(two, 0.99);
  console.log(
    `live head-to-emit with two providers over ${two.length} blocks: p50 ${twoP50.toFixed(3)} ms, p99 ${twoP99.toFixed(3)} ms, max ${two.at(-1)!.toFixed(3)} ms`,
  );
  sending = false;
  await traffic;
  await liveAnvil.stop();
  console.log(
    JSON.stringify({
      bench: 'ingest',
      logs: logs,
      range_blocks: RANGE,
      backfill_logs_per_s: Math.round(backfillRate),
      ethers_logs_per_s: Math.round(ethersRate),
      backfill_vs_ethers: Number((backfillRate / ethersRate).toFixed(2)),
      live_blocks: sorted.length,
      live_p50_ms: Number(p50.toFixed(3)),
      live_p99_ms: Number(p99.toFixed(3)),
      live_two_providers_p50_ms: Number(twoP50.toFixed(3)),
      live_two_providers_p99_ms: Number(twoP99.toFixed(3)),
      two_providers_p99_ratio: Number((twoP99 / p99).toFixed(2)),
      node_p50_ms: Number(percentile(raw, 0.5).toFixed(3)),
      node_p99_ms: Number(percentile(raw, 0.99).toFixed(3)),
    }),
  );
} finally {
  await anvil.stop();
}
