/**
 * bench:ws-ack — how late a provider's head push reaches the node when it comes just after the provider
 * answered a call on the same WebSocket, with the listener's client (src/actors/chain-listener/ws-rpc.ts,
 * which acknowledges inbound frames at once with an unsolicited pong) and a bare `ws` client (the peer,
 * which sends nothing after a reply) on the same anvil in the same rounds.
 *
 * A one-log transaction every 50 ms over HTTP (anvil mines it on arrival, so a block each); before every
 * tenth, both clients call `eth_blockNumber` and get the answer, BENCH_CALL_LEAD_MS (20) before the
 * send, as the listener's finality poll does at any moment between two heads. The figure is, per client,
 * the time from the send answered (the block mined) to that block's `newHeads` push arriving: for the
 * BENCH_ROUNDS (100) blocks after a call (p50/p99/max) and for the others (p99/max). anvil sends with
 * Nagle's algorithm on, so its push waits for the ACK of its answer, which a client that sends nothing
 * leaves to the kernel's delayed-ACK timer (about 40 ms after the answer on Linux).
 * Last line: one JSON object (`client_*` and `bare_*` figures, `ratio` = client p99 / bare p99 after a call).
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { WsRpcClient } from '../src/actors/chain-listener/ws-rpc.ts';
import { startChain } from './e2e/chain.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 100);
/** A block every ROUND_MS; every CALL_EVERY-th is mined just after both clients had a call answered. */
const ROUND_MS = 50;
const CALL_EVERY = 10;
const CALL_LEAD_MS = Number(process.env.BENCH_CALL_LEAD_MS ?? 20);

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
};
const round2 = (x: number) => Math.round(x * 100) / 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const chain = await startChain();
try {
  const contract = await chain.deploy();
  const heads = { client: new Map<number, number>(), bare: new Map<number, number>() };
  const numberOf = (head: unknown) => Number.parseInt((head as { number: string }).number, 16);

  const client = await WsRpcClient.connect({
    url: chain.anvil.wsUrl,
    requestTimeoutMs: 10_000,
    maxFrameBytes: 1 << 24,
    onProblem: (kind, err) => {
      throw new Error(`client: ${kind}: ${err.message}`);
    },
  });
  await client.subscribe(['newHeads'], (head) => heads.client.set(numberOf(head), performance.now()));

  const bare = new WebSocket(chain.anvil.wsUrl, { perMessageDeflate: false });
  await new Promise((resolve, reject) => bare.once('open', resolve).once('error', reject));
  let bareId = 0;
  const bareReplies = new Map<number, () => void>();
  bare.on('message', (data) => {
    const frame = JSON.parse((data as Buffer).toString('utf8')) as { id?: number; method?: string; params?: { result: unknown } };
    if (frame.method === 'eth_subscription') heads.bare.set(numberOf(frame.params!.result), performance.now());
    else if (frame.id !== undefined) bareReplies.get(frame.id)?.();
  });
  const bareCall = (method: string, params: unknown[]) =>
    new Promise<void>((resolve) => {
      const id = ++bareId;
      bareReplies.set(id, resolve);
      bare.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  await bareCall('eth_subscribe', ['newHeads']);

  const late = { client: [] as number[], bare: [] as number[] };
  const quiet = { client: [] as number[], bare: [] as number[] };
  let block = await chain.head();
  const start = performance.now();
  for (let k = 0; k < ROUNDS * CALL_EVERY; k++) {
    const called = k % CALL_EVERY === CALL_EVERY - 1;
    if (called) {
      await sleep(Math.max(0, start + k * ROUND_MS - CALL_LEAD_MS - performance.now()));
      await Promise.all([client.request('eth_blockNumber', []), bareCall('eth_blockNumber', [])]);
    }
    await sleep(Math.max(0, start + k * ROUND_MS - performance.now()));
    await chain.send(contract, 1);
    const minedAt = performance.now();
    block++;
    while (!heads.client.has(block) || !heads.bare.has(block)) await sleep(1);
    const into = called ? late : quiet;
    into.client.push(heads.client.get(block)! - minedAt);
    into.bare.push(heads.bare.get(block)! - minedAt);
    heads.client.delete(block);
    heads.bare.delete(block);
  }
  client.close();
  bare.terminate();

  const figures = (xs: number[]) => ({ p50: round2(percentile(xs, 0.5)), p99: round2(percentile(xs, 0.99)), max: round2(Math.max(...xs)) });
  const c = figures(late.client);
  const b = figures(late.bare);
  const cq = figures(quiet.client);
  const bq = figures(quiet.bare);
  console.log(`a block every ${ROUND_MS} ms; its head push, from its transaction's send answered:`);
  console.log(`  ${ROUNDS} blocks mined just after a call was answered:`);
  console.log(`    listener's client (pong after inbound frames): p50 ${c.p50} ms, p99 ${c.p99} ms, max ${c.max} ms`);
  console.log(`    bare ws client (peer):                         p50 ${b.p50} ms, p99 ${b.p99} ms, max ${b.max} ms`);
  console.log(`  the ${quiet.client.length} other blocks: client p99 ${cq.p99} ms (max ${cq.max}), bare p99 ${bq.p99} ms (max ${bq.max})`);
  console.log(
    JSON.stringify({
      rounds: ROUNDS,
      quiet_client_p99_ms: cq.p99,
      quiet_bare_p99_ms: bq.p99,
      client_p50_ms: c.p50,
      client_p99_ms: c.p99,
      client_max_ms: c.max,
      bare_p50_ms: b.p50,
      bare_p99_ms: b.p99,
      bare_max_ms: b.max,
      ratio: round2(c.p99 / b.p99),
    }),
  );
} finally {
  await chain.stop();
}
