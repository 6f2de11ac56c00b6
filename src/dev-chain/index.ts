/**
 * The embedded dev chain: what `npm start` follows with the default config, with no setup.
 *
 * `startDevChain(options)` starts anvil on 127.0.0.1 as chain `chainId` (default 31337; on a free port
 * unless `port` is set; the binary of the optional dependency @foundry-rs/anvil-linux-amd64 unless
 * `binary` is set, with a clear error when it is absent), mining a block every `blockTimeMs` (default
 * 1000), deploys the Tick contract (contract.ts) and sends it a transaction every `txIntervalMs`
 * (default 2000; 0 = none), each emitting
 * 1 to 5 events. It logs where anvil listens and its pid (`anvilPid`: pino's own `pid` is the node's).
 * `stop()` ends the traffic and kills anvil. anvil cannot outlive the process, however it ends, and a
 * Ctrl-C in a terminal does not reach it (anvil-process.ts): an exit of anvil before `stop()` is
 * logged as an error.
 */
import { HttpRpcClient } from '../actors/chain-listener/http-rpc.ts';
import { EthhookError, describeError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/log.ts';
import { spawnAnvil } from './anvil-process.ts';
import { deployTickContract, devAccount, sendTicks, type RpcFn } from './tick-contract.ts';

export { resolveAnvilBinary } from './anvil-process.ts';
export { TICK_EVENT_SIGNATURE, TICK_TOPIC } from './contract.ts';

export interface DevChainOptions {
  logger: Logger;
  blockTimeMs?: number;
  txIntervalMs?: number;
  chainId?: number;
  port?: number;
  binary?: string;
}

export interface DevChain {
  chainId: number;
  /** anvil's process id. */
  pid: number;
  wsUrl: string;
  httpUrl: string;
  contractAddress: string;
  stop(): Promise<void>;
}

/** The defaults (the schema of the `devChain` section reads them here). */
export const DEFAULT_DEV_CHAIN_OPTIONS = Object.freeze({ chainId: 31_337, blockTimeMs: 1_000, txIntervalMs: 2_000, port: 0 });

const MAX_TICKS_PER_TX = 5;

export async function startDevChain(options: DevChainOptions): Promise<DevChain> {
  const { logger } = options;
  const d = DEFAULT_DEV_CHAIN_OPTIONS;
  const chainId = options.chainId ?? d.chainId;
  const blockTimeMs = options.blockTimeMs ?? d.blockTimeMs;
  const txIntervalMs = options.txIntervalMs ?? d.txIntervalMs;
  const anvil = await spawnAnvil({
    args: ['--chain-id', String(chainId), '--block-time', String(blockTimeMs / 1_000)],
    port: options.port ?? d.port,
    binary: options.binary,
  });
  const client = new HttpRpcClient({ url: anvil.httpUrl, requestTimeoutMs: 10_000, maxFrameBytes: 16 * 1024 * 1024 });
  const rpc: RpcFn = (method, params) => client.request(method, params);
  let contractAddress: string;
  let from: string;
  try {
    from = await devAccount(rpc);
    contractAddress = await deployTickContract(rpc, from);
  } catch (err) {
    client.close();
    await anvil.stop();
    throw new EthhookError('ETHHOOK_ERR_DEV_CHAIN', 'the dev chain could not deploy its contract', { chainId }, { cause: err });
  }
  let stopping = false;
  anvil.child.once('exit', (code, signal) => {
    if (!stopping) logger.error({ code, signal, chainId, anvilPid: anvil.pid }, 'dev chain: anvil exited');
  });
  logger.info(
    { chainId, anvilPid: anvil.pid, wsUrl: anvil.wsUrl, httpUrl: anvil.httpUrl, contractAddress, blockTimeMs, txIntervalMs },
    `dev chain: anvil (pid ${anvil.pid}) listening on ${anvil.httpUrl} (ws ${anvil.wsUrl})`,
  );

  let inFlight: Promise<void> = Promise.resolve();
  const timer =
    txIntervalMs > 0
      ? setInterval(() => {
          inFlight = inFlight.then(async () => {
            if (stopping) return;
            try {
              await sendTicks(rpc, from, contractAddress, 1 + Math.floor(Math.random() * MAX_TICKS_PER_TX));
            } catch (err) {
              logger.warn({ err: describeError(err) }, 'dev chain: transaction failed');
            }
          });
        }, txIntervalMs)
      : null;

  return {
    chainId,
    pid: anvil.pid,
    wsUrl: anvil.wsUrl,
    httpUrl: anvil.httpUrl,
    contractAddress,
    stop: async () => {
      stopping = true;
      if (timer) clearInterval(timer);
      await inFlight;
      client.close();
      await anvil.stop();
      logger.info({ chainId }, 'dev chain: anvil stopped');
    },
  };
}
