// The frame parser and the result validators on the edge cases a hostile node would try.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  blockTimestamps,
  headerSchema,
  logsSchema,
  validateLogsInSlices,
  validateResult,
} from '../../src/actors/chain-listener/eth-schemas.ts';
import { parseFrame } from '../../src/actors/chain-listener/frames.ts';
import { EthhookError } from '../../src/runtime/errors.ts';

const malformed = (raw: string) => {
  try {
    parseFrame(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(EthhookError);
    return (err as EthhookError).context;
  }
  throw new Error(`accepted: ${raw}`);
};

/** The error a result validation throws (the test fails if it accepts the result). */
const refused = (validate: () => unknown): EthhookError => {
  try {
    validate();
  } catch (err) {
    expect(err).toBeInstanceOf(EthhookError);
    return err as EthhookError;
  }
  throw new Error('accepted');
};

describe('parseFrame: accepted shapes', () => {
  it('reads a response, a null result, an error, a batch and a notification', () => {
    expect(parseFrame('{"jsonrpc":"2.0","id":1,"result":"0x1"}')).toEqual({ kind: 'response', id: 1, result: '0x1' });
    expect(parseFrame('{"jsonrpc":"2.0","id":2,"result":null}')).toEqual({ kind: 'response', id: 2, result: null });
    expect(parseFrame('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse"}}')).toEqual({
      kind: 'error',
      id: null,
      error: { code: -32700, message: 'parse' },
    });
    expect(parseFrame('[{"jsonrpc":"2.0","id":1,"result":1},{"jsonrpc":"2.0","id":2,"result":2}]').kind).toBe('batch');
    expect(parseFrame('{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0xab","result":{}}}')).toEqual({
      kind: 'notification',
      subscription: '0xab',
      result: {},
    });
  });
});

describe('parseFrame: refused shapes', () => {
  it('refuses non-JSON, scalars, empty batches, wrong versions and ambiguous replies, with a sample', () => {
    expect(malformed('not json').reason).toBe('not JSON');
    expect(malformed('42').reason).toBe('not an object');
    expect(malformed('[]').reason).toBe('an empty batch');
    malformed('{"jsonrpc":"1.0","id":1,"result":1}');
    expect(malformed('{"jsonrpc":"2.0","id":1}').reason).toMatch(/exactly one/);
    malformed('{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"x"}}');
    malformed('{"jsonrpc":"2.0","id":null,"result":1}');
    malformed('{"jsonrpc":"2.0","id":{"a":1},"result":1}');
    malformed('{"jsonrpc":"2.0","method":"eth_other","params":{}}');
    expect(String(malformed(`garbage ${'x'.repeat(10_000)}`).sample).length).toBeLessThanOrEqual(120);
  });
});

describe('result validation', () => {
  const header = {
    number: '0x10',
    hash: `0x${'AB'.repeat(32)}`,
    parentHash: `0x${'cd'.repeat(32)}`,
    timestamp: '0x5f5e100',
    extra: 'ignored',
  };
  it('turns quantities into numbers and hashes into lowercase', () => {
    expect(validateResult(headerSchema, header, 'eth_getBlockByNumber')).toEqual({
      number: 16,
      hash: `0x${'ab'.repeat(32)}`,
      parentHash: `0x${'cd'.repeat(32)}`,
      timestamp: 100_000_000,
    });
  });
  it('refuses quantities beyond 2^53, short hashes, pending logs, with the method and the field', () => {
    expect(() => validateResult(headerSchema, { ...header, number: '0x20000000000000' }, 'm')).toThrow(/2\^53/);
    const badHash = refused(() => validateResult(headerSchema, { ...header, hash: '0x12' }, 'eth_getBlockByNumber'));
    expect(badHash.code).toBe('ETHHOOK_ERR_RPC_MALFORMED');
    expect(badHash.context).toEqual({ method: 'eth_getBlockByNumber', field: 'hash' });
    const log = {
      address: `0x${'11'.repeat(20)}`,
      topics: [],
      data: '0x',
      blockNumber: '0x1',
      blockHash: null,
      transactionHash: `0x${'22'.repeat(32)}`,
      transactionIndex: '0x0',
      logIndex: '0x0',
    };
    expect(() => validateResult(logsSchema, [log], 'eth_getLogs')).toThrow(/eth_getLogs/);
    expect(validateResult(logsSchema, [{ ...log, blockHash: `0x${'33'.repeat(32)}` }], 'eth_getLogs')[0]!.removed).toBe(false);
  });
  it('refuses a timestamp no date can hold (a payload writes it as ISO 8601), in a header or a log', () => {
    // 8.64e12 s is the latest time a JavaScript Date holds.
    expect(validateResult(headerSchema, { ...header, timestamp: '0x7dba8218000' }, 'm').timestamp).toBe(8_640_000_000_000);
    const tooLate = refused(() => validateResult(headerSchema, { ...header, timestamp: '0x7dba8218001' }, 'eth_getBlockByNumber'));
    expect(tooLate.code).toBe('ETHHOOK_ERR_RPC_MALFORMED');
    expect(tooLate.context).toEqual({ method: 'eth_getBlockByNumber', field: 'timestamp' });
    const log = (block: number, blockTimestamp: string) => ({
      address: `0x${'11'.repeat(20)}`,
      topics: [],
      data: '0x',
      blockNumber: `0x${block.toString(16)}`,
      blockHash: `0x${'33'.repeat(32)}`,
      transactionHash: `0x${'22'.repeat(32)}`,
      transactionIndex: '0x0',
      logIndex: '0x0',
      blockTimestamp,
    });
    const raw = [log(1, '0x64'), log(2, '0xffffffffffff')];
    // Block 2's header is read instead.
    expect([...blockTimestamps(validateResult(logsSchema, raw, 'eth_getLogs'), raw)]).toEqual([[1, 100]]);
  });
});

describe('validateLogsInSlices', () => {
  const log = (i: number) => ({
    address: `0x${'Aa'.repeat(20)}`,
    topics: [`0x${i.toString(16).padStart(64, '0')}`],
    data: '0xBEEF',
    blockNumber: '0x1',
    blockHash: `0x${'33'.repeat(32)}`,
    transactionHash: `0x${'22'.repeat(32)}`,
    transactionIndex: '0x0',
    logIndex: `0x${i.toString(16)}`,
  });
  /** What a validation gives: its logs, or its error's code, message and context. */
  const outcome = async (validate: () => unknown) => {
    try {
      return { logs: await validate() };
    } catch (err) {
      const e = err as EthhookError;
      return { code: e.code, message: e.message, context: e.context };
    }
  };

  it('answers what validateResult answers, logs or the error naming the field, whatever the slice', async () => {
    const broken = [{ topics: ['0x12'] }, { address: null }, { logIndex: '0x' }, { data: '0x1' }, { removed: 'no' }];
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 1, max: 7 }),
        fc.option(fc.tuple(fc.nat(), fc.constantFrom(...broken)), { nil: undefined }),
        async (n, slice, damage) => {
          const raw: unknown[] = Array.from({ length: n }, (_, i) => log(i));
          if (damage !== undefined && n > 0) raw[damage[0] % n] = { ...log(damage[0] % n), ...damage[1] };
          const expected = await outcome(() => validateResult(logsSchema, raw, 'eth_getLogs'));
          expect(await outcome(() => validateLogsInSlices(raw, 'eth_getLogs', slice))).toEqual(expected);
        },
      ),
      { numRuns: 200 },
    );
    expect(await outcome(() => validateLogsInSlices({ not: 'a list' }, 'eth_getLogs'))).toMatchObject({
      code: 'ETHHOOK_ERR_RPC_MALFORMED',
    });
  });

  it('serves the event loop between slices', async () => {
    let slicesDoneWhenServed: boolean | undefined;
    let done = false;
    setImmediate(() => (slicesDoneWhenServed = done));
    const logs = await validateLogsInSlices(
      Array.from({ length: 30 }, (_, i) => log(i)),
      'eth_getLogs',
      10,
    );
    done = true;
    expect(logs).toHaveLength(30);
    expect(slicesDoneWhenServed).toBe(false);
  });
});
