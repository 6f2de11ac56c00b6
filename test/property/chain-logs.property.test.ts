// The `eth_getLogs` result schema (src/actors/chain-listener/eth-schemas.ts) against a reference
// evaluator written here field by field: a log is taken exactly when every field is what a node must
// send (quantities below 2^53, 32-byte hashes, a 20-byte address, whole hex bytes, at most 4 topics,
// `removed` a boolean or absent), in any letter case; a taken log is lowercased, with numbers for its
// quantities; a refused one is refused naming one of the fields the reference refuses.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { logsSchema, validateResult } from '../../src/actors/chain-listener/eth-schemas.ts';
import { isEthhookError } from '../../src/runtime/errors.ts';

const hexDigits = (n: number) =>
  fc.array(fc.constantFrom(...'0123456789abcdefABCDEF'), { minLength: n, maxLength: n }).map((d) => d.join(''));
const mixedCase = (s: string, flips: boolean[]) => [...s].map((c, i) => (flips[i % flips.length] ? c.toUpperCase() : c)).join('');

/** Mostly what a node must send, sometimes not: about half the logs drawn are valid in every field. */
const mostly = <T, U>(valid: fc.Arbitrary<T>, invalid: fc.Arbitrary<U>) =>
  fc.oneof({ weight: 19, arbitrary: valid }, { weight: 1, arbitrary: invalid });

/** Quantities, with leading zeros (14 digits at most) and mixed case: mostly below 2^53, some up to 2^56; and strings that are no quantity. */
const hexOf = (range: { min: bigint; max: bigint }) =>
  fc.tuple(fc.bigInt(range), fc.nat({ max: 3 }), fc.array(fc.boolean(), { minLength: 1, maxLength: 4 })).map(([n, zeros, flips]) => {
    const digits = n.toString(16);
    return `0x${mixedCase('0'.repeat(Math.min(zeros, 14 - digits.length)) + digits, flips)}`;
  });
const quantity = mostly(
  fc.oneof(
    { weight: 8, arbitrary: hexOf({ min: 0n, max: 2n ** 53n - 1n }) },
    { weight: 1, arbitrary: hexOf({ min: 2n ** 53n - 2n, max: 2n ** 56n - 1n }) },
    { weight: 1, arbitrary: fc.constantFrom(0x1fffffffffffffn, 0x20000000000000n).map((n) => `0x${n.toString(16)}`) },
  ),
  fc.constantFrom('0x', '1a', '0x1g', '0X1', ' 0x1', `0x${'0'.repeat(15)}1`, 12, null),
);
const hash = mostly(
  hexDigits(64).map((d) => `0x${d}`),
  fc.oneof(
    fc.constantFrom(63, 65).chain((n) => hexDigits(n).map((d) => `0x${d}`)),
    fc.constantFrom(`0x${'g'.repeat(64)}`, null),
  ),
);
const address = mostly(
  hexDigits(40).map((d) => `0x${d}`),
  fc.oneof(
    hexDigits(39).map((d) => `0x${d}`),
    fc.constant(7),
  ),
);
const data = mostly(
  fc.nat({ max: 40 }).chain((n) => hexDigits(2 * n).map((d) => `0x${d}`)),
  fc.oneof(
    hexDigits(3).map((d) => `0x${d}`),
    fc.constant('beef'),
  ),
);
const rawLog = fc.record(
  {
    address,
    topics: mostly(fc.array(hash, { maxLength: 4 }), fc.oneof(fc.array(hash, { minLength: 5, maxLength: 5 }), fc.constant('0x00'))),
    data,
    blockNumber: quantity,
    blockHash: hash,
    transactionHash: hash,
    transactionIndex: quantity,
    logIndex: quantity,
    removed: mostly(fc.boolean(), fc.constant('no')),
    blockTimestamp: quantity,
  },
  { requiredKeys: ['address', 'topics', 'data', 'blockNumber', 'blockHash', 'transactionHash', 'transactionIndex', 'logIndex'] },
);

const isQuantity = (v: unknown) =>
  typeof v === 'string' && /^0x[0-9a-fA-F]{1,14}$/.test(v) && Number.isSafeInteger(Number.parseInt(v.slice(2), 16));
const isHex = (v: unknown, bytes: number) => typeof v === 'string' && new RegExp(`^0x[0-9a-fA-F]{${2 * bytes}}$`).test(v);

/** The fields the reference refuses (`topics.2` for a topic), in the schema's field order. */
function refusedFields(log: Record<string, unknown>): string[] {
  const bad: string[] = [];
  if (!isHex(log.address, 20)) bad.push('address');
  if (!Array.isArray(log.topics)) bad.push('topics');
  else {
    log.topics.forEach((t, i) => !isHex(t, 32) && bad.push(`topics.${i}`));
    if (log.topics.length > 4) bad.push('topics');
  }
  if (typeof log.data !== 'string' || !/^0x([0-9a-fA-F]{2})*$/.test(log.data)) bad.push('data');
  for (const f of ['blockNumber', 'transactionIndex', 'logIndex']) if (!isQuantity(log[f])) bad.push(f);
  for (const f of ['blockHash', 'transactionHash']) if (!isHex(log[f], 32)) bad.push(f);
  if (log.removed !== undefined && typeof log.removed !== 'boolean') bad.push('removed');
  return bad;
}

describe('logsSchema', () => {
  it('takes exactly the logs the reference takes, lowercased with numbers, and names a refused field', () => {
    fc.assert(
      fc.property(rawLog, (log) => {
        const bad = refusedFields(log);
        let result: unknown;
        try {
          result = validateResult(logsSchema, [log], 'eth_getLogs');
        } catch (err) {
          expect(isEthhookError(err, 'ETHHOOK_ERR_RPC_MALFORMED')).toBe(true);
          const field = String((err as { context: { field: string } }).context.field);
          expect(field.startsWith('0.')).toBe(true);
          expect(bad).toContain(field.slice(2));
          return;
        }
        expect(bad).toEqual([]);
        const q = (v: unknown) => Number.parseInt((v as string).slice(2), 16);
        const lower = (v: unknown) => (v as string).toLowerCase();
        expect(result).toEqual([
          {
            address: lower(log.address),
            topics: (log.topics as string[]).map(lower),
            data: lower(log.data),
            blockNumber: q(log.blockNumber),
            blockHash: lower(log.blockHash),
            transactionHash: lower(log.transactionHash),
            transactionIndex: q(log.transactionIndex),
            logIndex: q(log.logIndex),
            removed: log.removed ?? false,
          },
        ]);
      }),
      { numRuns: 3000 },
    );
  });
});
