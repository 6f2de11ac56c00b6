// The ChainListener under the real ActorSystem: a hostile node (garbage, wrong ids, huge frames, errors,
// bad results, silence) is survived and counted, and ingestion recovers without gap once the node
// behaves; stopActor/startActor resumes from the persisted cursor; two chains are followed at once.
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployTickContract, devAccount, sendTicks } from '../../src/dev-chain/tick-contract.ts';
import type { ActorSystem } from '../../src/runtime/system.ts';
import type { SupervisionEvent } from '../../src/runtime/types.ts';
import { startSystem } from '../../src/supervision/index.ts';
import { startAnvil, type TestAnvil } from '../support/anvil.ts';
import { chainTree, Collector, netBlocks, tempDb, testLogger, waitFor } from '../support/chain-harness.ts';
import { startFakeRpc, type FakeRpcMode } from '../support/fake-rpc.ts';

const LISTENER = '/pipeline/chains/chain-listener:31337';
let anvil: TestAnvil;
const rpc = (m: string, p: unknown[]) => anvil.rpc(m, p);
const head = async () => Number.parseInt(await anvil.rpc<string>('eth_blockNumber'), 16);
const fast = { minMs: 30, maxMs: 300, factor: 2, jitter: 0.2 };

beforeAll(async () => {
  anvil = await startAnvil({ blockTime: 0.25 });
  const from = await devAccount(rpc);
  const contract = await deployTickContract(rpc, from);
  await sendTicks(rpc, from, contract, 5);
});
afterAll(async () => {
  await anvil?.stop();
});

async function metric(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const values = (await registry.getSingleMetric(name)!.get()).values;
  return values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
}

describe('a hostile JSON-RPC server', () => {
  it('is survived under supervision, every problem counted, and ingestion recovers without gap', async () => {
    const fake = await startFakeRpc({ upstreamHttpUrl: anvil.httpUrl, hugeBytes: 256 * 1024 });
    const store = await tempDb();
    const registry = new Registry();
    const collector = new Collector();
    const events: SupervisionEvent[] = [];
    let system: ActorSystem | undefined;
    try {
      system = await startSystem(
        chainTree({
          chains: [
            {
              chainId: 31337,
              name: 'hostile',
              wsUrl: fake.wsUrl,
              requestTimeoutMs: 300,
              heartbeatMs: 400,
              maxFrameBytes: 64 * 1024,
              reconnect: fast,
            },
          ],
          db: store.db,
          registry,
          collector,
        }),
        { logger: testLogger(), registry },
      );
      system.onEvent((e) => events.push(e));
      await waitFor(() => collector.messages.length > 0, 20_000, 'first block');
      const modes: FakeRpcMode[] = ['garbage', 'wrong-ids', 'huge', 'errors', 'bad-results', 'silent'];
      for (const mode of modes) {
        fake.mode = mode;
        await new Promise((r) => setTimeout(r, 1_000));
      }
      fake.mode = 'behave';
      const last = await head();
      await waitFor(() => (collector.emitted.at(-1)?.blockNumber ?? 0) >= last, 30_000, `block ${last} after recovery`);
      const blocks = netBlocks(collector.messages);
      expect(collector.retracted).toEqual([]);
      expect(blocks.map((b) => b.blockNumber)).toEqual(blocks.map((_, i) => blocks[0]!.blockNumber + i));

      const count = (kind: string) => metric(registry, 'chain_rpc_errors_total', { chain: 'hostile', kind });
      expect(await count('malformed')).toBeGreaterThan(0); // garbage, huge frames, bad results
      expect(await count('unknown-id')).toBeGreaterThan(0); // wrong ids, unknown subscription
      expect(await count('rpc')).toBeGreaterThan(0); // errors
      expect(await count('timeout')).toBeGreaterThan(0); // silence, and every reply that never matched
      expect(fake.calls.get('eth_subscribe')).toBeGreaterThan(1); // sessions given up and reopened
      expect(events.filter((e) => (e.type === 'panic' || e.type === 'crash') && e.path === LISTENER)).toEqual([]);
      expect(system.snapshot().children![0]!.children![1]!.children![0]).toMatchObject({ path: LISTENER, state: 'running' });
    } finally {
      await system?.shutdown('test over', 10_000);
      await store.close();
      await fake.stop();
    }
  });
});

describe('stopActor / startActor', () => {
  it('resumes from the persisted cursor: nothing while stopped, then the next block, no gap, no repeat', async () => {
    const store = await tempDb();
    const registry = new Registry();
    const collector = new Collector();
    let system: ActorSystem | undefined;
    try {
      system = await startSystem(
        chainTree({
          chains: [{ chainId: 31337, name: 'anvil', wsUrl: anvil.wsUrl, heartbeatMs: 500, reconnect: fast }],
          db: store.db,
          registry,
          collector,
        }),
        { logger: testLogger(), registry },
      );
      await waitFor(() => collector.messages.length >= 3, 20_000, 'three blocks');
      await system.stopActor(LISTENER);
      const stoppedAt = collector.messages.length;
      const lastBefore = collector.messages.at(-1)!.blockNumber;
      const target = lastBefore + 4;
      await waitFor(async () => (await head()) >= target, 20_000, `anvil at ${target}`);
      expect(collector.messages.length).toBe(stoppedAt);
      expect(await metric(registry, 'chain_ws_connected', { chain: 'anvil' })).toBe(0);

      await system.startActor(LISTENER);
      await waitFor(() => (collector.messages.at(-1)?.blockNumber ?? 0) >= target, 20_000, `block ${target}`);
      expect(collector.messages[stoppedAt]!.blockNumber).toBe(lastBefore + 1);
      netBlocks(collector.messages);

      await system.restartActor(LISTENER);
      const restartedAt = collector.messages.length;
      const lastBeforeRestart = collector.messages.at(-1)!.blockNumber;
      await waitFor(() => collector.messages.length > restartedAt + 1, 20_000, 'blocks after a manual restart');
      expect(collector.messages[restartedAt]!.blockNumber).toBe(lastBeforeRestart + 1);
      netBlocks(collector.messages);
    } finally {
      await system?.shutdown('test over', 10_000);
      await store.close();
    }
  });
});

describe('several chains', () => {
  it('follows two chains at once, each with its own cursor, messages and metrics', async () => {
    const other = await startAnvil({ blockTime: 0.25, chainId: 31338 });
    const store = await tempDb();
    const registry = new Registry();
    const collector = new Collector();
    let system: ActorSystem | undefined;
    try {
      system = await startSystem(
        chainTree({
          chains: [
            { chainId: 31337, name: 'one', wsUrl: anvil.wsUrl, heartbeatMs: 500 },
            { chainId: 31338, name: 'two', wsUrl: other.wsUrl, heartbeatMs: 500 },
          ],
          db: store.db,
          registry,
          collector,
        }),
        { logger: testLogger(), registry },
      );
      const of = (chainId: number) => collector.messages.filter((m) => m.chainId === chainId);
      await waitFor(() => of(31337).length >= 4 && of(31338).length >= 4, 20_000, 'blocks from both chains');
      netBlocks(of(31337));
      netBlocks(of(31338));
      expect(await metric(registry, 'chain_processed_height', { chain: 'one' })).toBeGreaterThan(0);
      expect(await metric(registry, 'chain_processed_height', { chain: 'two' })).toBeGreaterThan(0);
      expect(await metric(registry, 'chain_ws_connected', { chain: 'two' })).toBe(1);
    } finally {
      await system?.shutdown('test over', 10_000);
      await store.close();
      await other.stop();
    }
  });
});
