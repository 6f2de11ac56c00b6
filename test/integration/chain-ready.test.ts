// /ready and the chains, on real node processes: a node whose chain is unreachable (a wrong URL) is not
// ready and shows the chain in its metrics from the start (chain_up 0, chain_height 0, connection
// errors counting); a fresh node (`startBlock: latest`) answers /ready 200 only once its start block is
// pinned, so the logs of transactions sent right after /ready are all received, even when the chain's
// node came up late.
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployTickContract, devAccount, sendTicks, waitForReceipt } from '../../src/dev-chain/tick-contract.ts';
import { startAnvil, type TestAnvil } from '../support/anvil.ts';
import { waitFor } from '../support/chain-harness.ts';
import { createNodeDir, killAllNodes, startNodeProcess, type NodeDir } from '../support/node-process.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

const dirs: NodeDir[] = [];
afterAll(async () => {
  await killAllNodes();
  await Promise.all(dirs.map((d) => d.remove()));
});
const nodeDir = async () => {
  const dir = await createNodeDir();
  dirs.push(dir);
  return dir;
};

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('a chain the node never reaches', () => {
  it('keeps /ready at 503 naming the chain, and has its series from the start: chain_up 0, chain_height 0, connection errors', async () => {
    const wsUrl = `ws://127.0.0.1:${await closedPort()}`;
    const node = await startNodeProcess({
      dir: await nodeDir(),
      config: { chains: [{ chainId: 1, name: 'nowhere', wsUrl, reconnect: { minMs: 50, maxMs: 200 } }] },
    });
    const labels = { chain: 'nowhere' };
    expect(await node.metric('chain_up', labels)).toBe(0);
    expect(await node.metric('chain_height', labels)).toBe(0);
    expect(await node.metric('chain_processed_height', labels)).toBe(0);
    expect(await node.metric('chain_rpc_errors_total', { ...labels, kind: 'timeout' })).toBe(0);
    await waitFor(
      async () => ((await node.metric('chain_rpc_errors_total', { ...labels, kind: 'connection' })) ?? 0) >= 3,
      20_000,
      'connection errors counted',
    );
    const ready = await node.api('GET', '/ready');
    expect(ready.status).toBe(503);
    expect(ready.body).toEqual({ ready: false, reasons: ['chain nowhere (1) has not reached its node yet'], manuallyStopped: [] });
    node.kill('SIGTERM');
    expect((await node.waitForExit()).code).toBe(0);
  }, 60_000);
});

describe('a fresh node with startBlock latest', () => {
  let anvil: TestAnvil;
  let proxy: TcpProxy;
  let from: string;
  let contract: string;
  const rpc = (m: string, p: unknown[]) => anvil.rpc(m, p);

  beforeAll(async () => {
    anvil = await startAnvil(); // a block per transaction
    from = await devAccount(rpc);
    contract = await deployTickContract(rpc, from);
    proxy = await startTcpProxy(anvil.port);
  });
  afterAll(async () => {
    await proxy?.stop();
    await anvil?.stop();
  });

  it('answers /ready 200 only once the start block is pinned: every log sent right after is received', async () => {
    proxy.refuse(true); // the chain's node is down while the node starts
    const node = await startNodeProcess({
      dir: await nodeDir(),
      config: {
        chains: [
          {
            chainId: 31337,
            name: 'dev',
            wsUrl: `ws://127.0.0.1:${proxy.port}`,
            startBlock: 'latest',
            reconnect: { minMs: 1_000, maxMs: 1_000, jitter: 0 },
          },
        ],
      },
    });
    expect((await node.api('GET', '/ready')).status).toBe(503);
    proxy.refuse(false);
    await waitFor(async () => (await node.api('GET', '/ready')).status === 200, 30_000, '/ready 200');

    // Right after /ready: two transactions, two blocks, 2 + 3 Tick logs.
    const txs = [await sendTicks(rpc, from, contract, 2), await sendTicks(rpc, from, contract, 3)];
    await Promise.all(txs.map((tx) => waitForReceipt(rpc, tx)));
    await waitFor(async () => ((await node.metric('events_received_total', { chain: 'dev' })) ?? 0) >= 5, 30_000, 'the 5 logs');
    expect(await node.metric('events_received_total', { chain: 'dev' })).toBe(5);
    expect(await node.metric('chain_up', { chain: 'dev' })).toBe(1);
    node.kill('SIGTERM');
    expect((await node.waitForExit()).code).toBe(0);
  }, 90_000);
});
