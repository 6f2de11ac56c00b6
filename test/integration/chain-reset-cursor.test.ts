// The way out of ETHHOOK_ERR_CHAIN_MISMATCH (and of a reorg deeper than the window): a real node follows
// an anvil that is then replaced by another chain behind the same address (another block 0). The
// listener refuses it; POST /admin/chains/31337/reset-cursor (audited, validated) clears the cursor and
// the listener resumes on the new chain; once the node is stopped its store holds only the new
// chain's cursor, reorg window and block 0. `ethhook chain reset-cursor` does the same on a stopped
// node and refuses clearly while the node holds the store.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmittedBlock } from '../../src/actors/chain-listener/follower.ts';
import { CursorStore } from '../../src/store/cursors.ts';
import { openDb } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import type { ErrorAnswer } from '../support/admin-answers.ts';
import { startAnvil, type TestAnvil } from '../support/anvil.ts';
import { waitFor } from '../support/chain-harness.ts';
import { createNodeDir, killAllNodes, startNodeProcess, type NodeDir, type NodeProcess } from '../support/node-process.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

const CHAIN_ID = 31337;
let first: TestAnvil;
let second: TestAnvil;
let proxy: TcpProxy;
let dir: NodeDir;

beforeAll(async () => {
  // Same chain id; another genesis timestamp, so another block 0.
  [first, second] = await Promise.all([
    startAnvil({ blockTime: 0.25 }),
    startAnvil({ blockTime: 0.25, args: ['--timestamp', '1000000000'] }),
  ]);
  proxy = await startTcpProxy(first.port);
  dir = await createNodeDir();
});
afterAll(async () => {
  await killAllNodes();
  await Promise.all([first?.stop(), second?.stop(), proxy?.stop()]);
  await dir?.remove();
});

const config = () => ({
  chains: [{ chainId: CHAIN_ID, name: 'dev', wsUrl: `ws://127.0.0.1:${proxy.port}`, startBlock: 0, reconnect: { minMs: 50, maxMs: 500 } }],
});

function ethhook(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['bin/ethhook.mjs', ...args],
      { env: { PATH: process.env.PATH ?? '' }, timeout: 30_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
      },
    );
  });
}

const blockHash = async (anvil: TestAnvil, n: number) =>
  (await anvil.rpc<{ hash: string }>('eth_getBlockByNumber', [`0x${n.toString(16)}`, false])).hash;

describe('reset-cursor after the chain was replaced', () => {
  let node: NodeProcess;

  it('refuses the new chain, then resumes on it after POST /admin/chains/31337/reset-cursor', async () => {
    node = await startNodeProcess({ dir, config: config() });
    const processed = async () => (await node.metric('chain_processed_height', { chain: 'dev' })) ?? -1;
    await waitFor(async () => (await processed()) >= 5, 30_000, 'blocks of the first chain');

    proxy.retarget(second.port);
    proxy.cutAll();
    await waitFor(() => node.logs.some((l) => JSON.stringify(l).includes('ETHHOOK_ERR_CHAIN_MISMATCH')), 30_000, 'the chain mismatch');

    // Validation: each bad body names its field; an unknown chain is a 404.
    for (const body of [{}, { fromBlock: -1 }, { fromBlock: 'earliest' }, { fromBlock: 1.5 }, { fromBlock: 0, extra: 1 }]) {
      const answer = await node.api<ErrorAnswer>('POST', `/admin/chains/${CHAIN_ID}/reset-cursor`, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.body.error.code).toBe('ETHHOOK_ERR_ADMIN_INVALID_REQUEST');
      expect(answer.body.error.field).toBe('extra' in body ? 'extra' : 'fromBlock');
    }
    const unknown = await node.api<ErrorAnswer>('POST', '/admin/chains/5/reset-cursor', { fromBlock: 0 });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: 'ETHHOOK_ERR_CHAIN_NOT_CONFIGURED', field: 'chainId' });

    const reset = await node.api('POST', `/admin/chains/${CHAIN_ID}/reset-cursor`, { fromBlock: 0 });
    expect(reset.status, JSON.stringify(reset.body)).toBe(200);
    expect(reset.body).toMatchObject({
      chain: { chainId: CHAIN_ID, name: 'dev', fromBlock: 0 },
      actor: { path: `/pipeline/chains/chain-listener:${CHAIN_ID}`, state: 'running' },
    });
    const resetAt = node.logs.length;

    const head = Number.parseInt(await second.rpc<string>('eth_blockNumber'), 16);
    await waitFor(async () => (await processed()) >= head + 2, 30_000, 'blocks of the new chain');
    expect(node.logs.slice(resetAt).filter((l) => JSON.stringify(l).includes('ETHHOOK_ERR_CHAIN_MISMATCH'))).toEqual([]);
    await expect
      .poll(() => node.logs.filter((l) => l.audit === true && l.action === 'chain.reset-cursor').map((l) => [l.outcome, l.status]), {
        timeout: 10_000,
      })
      .toEqual([...Array(5).fill(['rejected', 400]), ['rejected', 404], ['ok', 200]]);
    expect((await node.api('GET', '/ready')).status).toBe(200);
  }, 120_000);

  it('while the node runs, `ethhook chain reset-cursor` refuses: the node holds the store', async () => {
    const run = await ethhook(['chain', 'reset-cursor', '--chain', String(CHAIN_ID), '--from', 'latest', '--config', dir.configFile]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('held by a running node');
    expect(run.stderr).toContain('ETHHOOK_ERR_STORE_LOCKED');
  });

  it('left only the new chain in the store: its block 0 and a reorg window of its blocks', async () => {
    node.kill('SIGTERM');
    expect((await node.waitForExit()).code).toBe(0);
    const db = await openDb(join(dir.dataDir, 'db'));
    try {
      const cursors = new CursorStore<EmittedBlock>(new LevelKv(db));
      expect(await cursors.genesis(CHAIN_ID)).toBe(await blockHash(second, 0));
      const state = (await cursors.load(CHAIN_ID, 65))!;
      expect(state.floor).toBe(0);
      expect(state.blocks.length).toBeGreaterThan(0);
      for (const b of state.blocks) expect(b.hash, `block ${b.number}`).toBe(await blockHash(second, b.number));
    } finally {
      await db.close();
    }
  });

  it('on the stopped node, `ethhook chain reset-cursor --from latest` clears it and the node starts at the head', async () => {
    const bad = await ethhook(['chain', 'reset-cursor', '--chain', String(CHAIN_ID), '--from', 'soon', '--config', dir.configFile]);
    expect(bad.code).toBe(2);
    const other = await ethhook(['chain', 'reset-cursor', '--chain', '5', '--from', '0', '--config', dir.configFile]);
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('ETHHOOK_ERR_CHAIN_NOT_CONFIGURED');

    const run = await ethhook(['chain', 'reset-cursor', '--chain', String(CHAIN_ID), '--from', 'latest', '--config', dir.configFile]);
    expect(run.code, run.stderr).toBe(0);
    const db = await openDb(join(dir.dataDir, 'db'));
    try {
      const cursors = new CursorStore<EmittedBlock>(new LevelKv(db));
      expect(await cursors.load(CHAIN_ID, 65)).toBeNull();
      expect(await cursors.genesis(CHAIN_ID)).toBeUndefined();
      expect(await cursors.pendingStart(CHAIN_ID)).toBe('latest');
    } finally {
      await db.close();
    }

    const head = Number.parseInt(await second.rpc<string>('eth_blockNumber'), 16);
    node = await startNodeProcess({ dir, config: config() });
    await waitFor(async () => (await node.api('GET', '/ready')).status === 200, 30_000, '/ready');
    // /ready can answer before the node's stdout line has been read here: wait for the line itself.
    await waitFor(() => node.logs.some((l) => l.msg === 'chain start block pinned'), 30_000, 'the pinned line');
    const pinned = node.logs.find((l) => l.msg === 'chain start block pinned');
    expect(pinned?.next as number).toBeGreaterThanOrEqual(head);
    node.kill('SIGTERM');
    expect((await node.waitForExit()).code).toBe(0);
  }, 90_000);
});
