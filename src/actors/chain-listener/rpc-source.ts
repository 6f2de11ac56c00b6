/**
 * The follower's ChainSource over a JSON-RPC transport: `eth_getBlockByNumber`, batched for ranges,
 * and `eth_getLogs` by range or by block hash, every result validated (eth-schemas.ts); for a history
 * read (history.ts), `eth_getLogs` with a filter and the block timestamps its logs carry.
 *
 * A node refusing an `eth_getLogs` range (error -32005, or a message about a range, a limit or too many
 * results, as geth, erigon, Infura, Alchemy and QuickNode word it), or an answer above maxFrameBytes,
 * becomes ETHHOOK_ERR_RPC_RANGE_TOO_LARGE so that the follower halves the range; so does a header batch
 * above maxFrameBytes. A single block's logs must fit in maxFrameBytes.
 */
import { z } from 'zod';
import { EthhookError, isEthhookError } from '../../runtime/errors.ts';
import {
  blockTimestamps,
  headerSchema,
  quantitySchema,
  toQuantity,
  validateLogsInSlices,
  validateResult,
  type BlockHeader,
} from './eth-schemas.ts';
import type { ChainSource } from './follower.ts';
import type { ChainLog } from './messages.ts';
import type { RpcTransport } from './transport.ts';

/** Headers per JSON-RPC batch frame: nodes commonly cap batches at 100 to 1000 calls. */
const HEADER_BATCH = 100;
const TOO_LARGE = /range|too many|too large|limit|exceed|more than|max(imum)? (results|logs|block)/i;

const nullableHeader = headerSchema.nullable();

/** `eth_getLogs`'s filter fields besides the range. */
export interface LogFilter {
  address?: string[];
  topics?: Array<null | string | string[]>;
}

export class RpcChainSource implements ChainSource {
  constructor(private readonly transport: RpcTransport) {}

  async chainId(): Promise<number> {
    return validateResult(quantitySchema, await this.transport.request('eth_chainId', []), 'eth_chainId');
  }

  async latestHeader(): Promise<BlockHeader> {
    const header = validateResult(
      headerSchema,
      await this.transport.request('eth_getBlockByNumber', ['latest', false]),
      'eth_getBlockByNumber',
    );
    return header;
  }

  async headerByNumber(n: number): Promise<BlockHeader | null> {
    const result = await this.transport.request('eth_getBlockByNumber', [toQuantity(n), false]);
    return checkNumber(validateResult(nullableHeader, result, 'eth_getBlockByNumber'), n);
  }

  async headersByRange(from: number, to: number): Promise<Array<BlockHeader | null>> {
    const chunks: Array<Promise<unknown[]>> = [];
    for (let start = from; start <= to; start += HEADER_BATCH) {
      const calls = [];
      for (let n = start; n <= Math.min(to, start + HEADER_BATCH - 1); n++) {
        calls.push({ method: 'eth_getBlockByNumber', params: [toQuantity(n), false] });
      }
      chunks.push(this.transport.batch(calls));
    }
    let results: unknown[];
    try {
      results = (await Promise.all(chunks)).flat();
    } catch (err) {
      throw isRangeRefusal(err) ? rangeTooLarge('eth_getBlockByNumber', from, to, err) : err;
    }
    const headers = validateResult(z.array(nullableHeader), results, 'eth_getBlockByNumber');
    return headers.map((h, i) => checkNumber(h, from + i));
  }

  /** The logs of blocks `from..to`. */
  async logsByRange(from: number, to: number): Promise<ChainLog[]> {
    return validateLogsInSlices(await this.getLogs(from, to), 'eth_getLogs');
  }

  /**
   * The logs `filter` selects (`eth_getLogs`'s `address` and `topics`) in blocks `from..to`, with the
   * timestamps their `blockTimestamp` fields give (eth-schemas.ts blockTimestamps).
   */
  async historyLogs(from: number, to: number, filter: LogFilter): Promise<{ logs: ChainLog[]; timestamps: Map<number, number> }> {
    const result = await this.getLogs(from, to, filter);
    const logs = await validateLogsInSlices(result, 'eth_getLogs');
    return { logs, timestamps: blockTimestamps(logs, result as readonly unknown[]) };
  }

  private async getLogs(from: number, to: number, filter?: LogFilter): Promise<unknown> {
    try {
      return await this.transport.request('eth_getLogs', [{ fromBlock: toQuantity(from), toBlock: toQuantity(to), ...filter }]);
    } catch (err) {
      throw isRangeRefusal(err) ? rangeTooLarge('eth_getLogs', from, to, err) : err;
    }
  }

  /** The headers of the blocks numbered `numbers` (any order, each at most once), in HEADER_BATCH batches. */
  async headersByNumbers(numbers: readonly number[]): Promise<Array<BlockHeader | null>> {
    const chunks: Array<Promise<unknown[]>> = [];
    for (let i = 0; i < numbers.length; i += HEADER_BATCH) {
      const calls = numbers.slice(i, i + HEADER_BATCH).map((n) => ({ method: 'eth_getBlockByNumber', params: [toQuantity(n), false] }));
      chunks.push(this.transport.batch(calls));
    }
    const headers = validateResult(z.array(nullableHeader), (await Promise.all(chunks)).flat(), 'eth_getBlockByNumber');
    return headers.map((h, i) => checkNumber(h, numbers[i]!));
  }

  async logsByBlockHash(hash: string): Promise<ChainLog[]> {
    const logs = await validateLogsInSlices(await this.transport.request('eth_getLogs', [{ blockHash: hash }]), 'eth_getLogs');
    if (logs.some((l) => l.blockHash !== hash)) {
      throw new EthhookError('ETHHOOK_ERR_RPC_MALFORMED', 'eth_getLogs by blockHash returned logs of another block', { hash });
    }
    return logs;
  }
}

function isRangeRefusal(err: unknown): err is EthhookError {
  if (isEthhookError(err, 'ETHHOOK_ERR_RPC_MALFORMED')) return err.context.reason === 'frame-too-large';
  if (!isEthhookError(err, 'ETHHOOK_ERR_RPC_ERROR')) return false;
  const message = err.context.rpcMessage;
  return err.context.rpcCode === -32005 || (typeof message === 'string' && TOO_LARGE.test(message));
}

function rangeTooLarge(method: string, from: number, to: number, cause: EthhookError): EthhookError {
  return new EthhookError(
    'ETHHOOK_ERR_RPC_RANGE_TOO_LARGE',
    `${method} refused blocks ${from}..${to}`,
    {
      method,
      from,
      to,
      rpcCode: cause.context.rpcCode,
      rpcMessage: cause.context.rpcMessage ?? cause.context.reason,
    },
    { cause },
  );
}

function checkNumber(header: BlockHeader | null, n: number): BlockHeader | null {
  if (header && header.number !== n) {
    throw new EthhookError('ETHHOOK_ERR_RPC_MALFORMED', `asked for block ${n}, got block ${header.number}`, { block: n });
  }
  return header;
}
