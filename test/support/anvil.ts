/**
 * A real anvil for tests, on a free 127.0.0.1 port. Interval mining with `blockTime` (seconds, may be
 * fractional), or automine (a block per transaction) by default, or `noMining` (blocks only with
 * `mine()` / `evm_mine`). Always call `stop()` (afterAll / finally).
 */
import { spawnAnvil } from '../../src/dev-chain/anvil-process.ts';

export interface AnvilOptions {
  blockTime?: number;
  noMining?: boolean;
  chainId?: number;
  args?: string[];
}

export interface TestAnvil {
  port: number;
  wsUrl: string;
  httpUrl: string;
  rpc<T = unknown>(method: string, params?: unknown[]): Promise<T>;
  mine(blocks?: number): Promise<void>;
  stop(): Promise<void>;
}

let rpcId = 0;

export async function startAnvil(options: AnvilOptions = {}): Promise<TestAnvil> {
  const args: string[] = [];
  if (options.blockTime !== undefined) args.push('--block-time', String(options.blockTime));
  if (options.noMining) args.push('--no-mining');
  if (options.chainId !== undefined) args.push('--chain-id', String(options.chainId));
  args.push(...(options.args ?? []));
  const proc = await spawnAnvil({ args });
  const rpc = async <T>(method: string, params: unknown[] = []): Promise<T> => {
    const res = await fetch(proc.httpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: ++rpcId, method, params }),
    });
    const body = (await res.json()) as { result?: T; error?: { message: string } };
    if (body.error) throw new Error(`${method}: ${body.error.message}`);
    return body.result as T;
  };
  return {
    port: proc.port,
    wsUrl: proc.wsUrl,
    httpUrl: proc.httpUrl,
    rpc,
    mine: async (blocks = 1) => {
      await rpc('anvil_mine', [`0x${blocks.toString(16)}`]);
    },
    stop: () => proc.stop(),
  };
}
