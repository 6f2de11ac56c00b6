// A node process for chain-listener.process.test.ts: the pipeline tree with a collector that prints each
// acknowledged block as one JSON line on stdout (before acknowledging it), on a LevelDB dir of its own.
// argv: <wsUrl> <dbDir>. SIGTERM shuts the system down and exits 0.
import { writeSync } from 'node:fs';
import { Registry } from 'prom-client';
import { startSystem } from '../../src/supervision/index.ts';
import { openDb } from '../../src/store/level/db.ts';
import { chainTree, Collector, testLogger } from '../support/chain-harness.ts';

const [wsUrl, dbDir] = process.argv.slice(2) as [string, string];
const db = await openDb(dbDir);
const registry = new Registry();
const collector = new Collector();
const ask = collector.ask;
collector.ask = async (msg) => {
  const m = msg as { blockNumber: number; blockHash: string; removed: boolean };
  writeSync(1, `${JSON.stringify({ block: m.blockNumber, hash: m.blockHash, removed: m.removed })}\n`);
  return ask(msg);
};
const system = await startSystem(
  chainTree({ chains: [{ chainId: 31337, name: 'anvil', wsUrl, heartbeatMs: 500 }], db, registry, collector }),
  { logger: testLogger(), registry },
);
async function stop(): Promise<void> {
  await system.shutdown('SIGTERM', 5_000);
  await db.close();
  process.exit(0);
}
process.once('SIGTERM', () => void stop());
