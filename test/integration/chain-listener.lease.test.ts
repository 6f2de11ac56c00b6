// The ChainListener under a lease gate (src/cluster/coordinator.ts), on a real anvil: without the lease
// it follows heads only (chain_height moves, nothing is emitted or persisted); given the lease it ingests
// from the stored cursor, every block carrying the lease's fence; losing the lease stops the emission;
// taking it again at a new epoch resumes right after the last block emitted.
import { Registry } from 'prom-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LeaseGate, chainLease } from '../../src/cluster/coordinator.ts';
import { deployTickContract, devAccount, sendTicks } from '../../src/dev-chain/tick-contract.ts';
import type { ChainStatus } from '../../src/actors/chain-listener/index.ts';
import type { ActorSystem } from '../../src/runtime/system.ts';
import { startSystem } from '../../src/supervision/index.ts';
import { startAnvil, type TestAnvil } from '../support/anvil.ts';
import { chainTree, Collector, netBlocks, tempDb, testLogger, waitFor } from '../support/chain-harness.ts';

const CHAIN = 31337;
const LISTENER = `/pipeline/chains/chain-listener:${CHAIN}`;
let anvil: TestAnvil;
const rpc = (m: string, p: unknown[]) => anvil.rpc(m, p);

beforeAll(async () => {
  anvil = await startAnvil({ blockTime: 0.2 });
  const from = await devAccount(rpc);
  const contract = await deployTickContract(rpc, from);
  await sendTicks(rpc, from, contract, 3);
});
afterAll(async () => {
  await anvil?.stop();
});

async function height(registry: Registry): Promise<number> {
  const values = (await registry.getSingleMetric('chain_height')!.get()).values;
  return values.find((v) => v.labels.chain === 'leased')?.value ?? 0;
}

it('follows heads without the lease, ingests with it (fenced), stops when it is lost, resumes after the last block', async () => {
  const store = await tempDb();
  const registry = new Registry();
  const collector = new Collector();
  const log = testLogger();
  const gate = new LeaseGate(chainLease(CHAIN), () => undefined);
  const fence = (epoch: number) => ({ type: 'fence' as const, lease: gate.name, holder: 'me', epoch });
  let system: ActorSystem | undefined;
  try {
    system = await startSystem(
      chainTree({
        chains: [{ chainId: CHAIN, name: 'leased', wsUrl: anvil.wsUrl, heartbeatMs: 200, startBlock: 0 }],
        db: store.db,
        registry,
        collector,
        lease: () => gate,
      }),
      { logger: log, registry },
    );
    const status = () => system!.lookup(LISTENER)!.ask<ChainStatus>({ type: 'chain.status' });

    // Following: the height moves, nothing is emitted.
    const first = await height(registry);
    await waitFor(async () => (await height(registry)) >= first + 3 && (await height(registry)) > 0, 20_000, 'heads followed');
    expect(collector.messages).toEqual([]);
    expect(await status()).toMatchObject({ ingesting: false, processed: null });

    // The lease: ingestion from block 0, every block fenced at epoch 1.
    await gate.set(fence(1), 5_000, log);
    await waitFor(() => collector.emitted.length >= 5, 20_000, 'blocks ingested');
    expect(collector.messages.every((m) => m.fence?.epoch === 1)).toBe(true);
    expect(collector.emitted[0]!.blockNumber).toBe(0);
    expect((await status()).ingesting).toBe(true);

    // Lost: the emission stops while the heads are still followed.
    await gate.set(undefined, 5_000, log);
    const emitted = collector.messages.length;
    const at = await height(registry);
    await waitFor(async () => (await height(registry)) >= at + 3, 20_000, 'heads followed after the loss');
    expect(collector.messages.length).toBe(emitted);

    // Taken again at epoch 2: from the stored cursor, right after the last block emitted.
    const last = collector.emitted.at(-1)!.blockNumber;
    await gate.set(fence(2), 5_000, log);
    await waitFor(() => collector.messages.length > emitted + 2, 20_000, 'ingestion resumed');
    const resumed = collector.messages.slice(emitted);
    expect(resumed[0]!.blockNumber).toBe(last + 1);
    expect(resumed.every((m) => m.fence?.epoch === 2)).toBe(true);
    expect(netBlocks(collector.messages).map((b) => b.blockNumber)).toEqual(collector.emitted.map((_, i) => i));
  } finally {
    await system?.shutdown('test over', 10_000);
    await store.close();
  }
});
