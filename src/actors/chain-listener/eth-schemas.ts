/**
 * Validation of the results a chain node returns, turned into the listener's own shapes: quantities
 * become JS numbers (refused above Number.MAX_SAFE_INTEGER), hex strings become lowercase. A result that
 * does not fit throws EthhookError ETHHOOK_ERR_RPC_MALFORMED naming the method and the field.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { z } from 'zod';
import { EthhookError } from '../../runtime/errors.ts';
import type { ChainLog } from './messages.ts';

/** The latest time a JavaScript Date holds, in seconds (ECMA-262: 8.64e15 ms). */
const MAX_TIMESTAMP_S = 8_640_000_000_000;
const quantity = z
  .string()
  .regex(/^0x[0-9a-fA-F]{1,14}$/, 'a hex quantity below 2^53')
  .transform((s) => Number.parseInt(s, 16))
  .refine((n) => Number.isSafeInteger(n), 'a quantity beyond 2^53');
/** A block's time in seconds: a quantity a JavaScript Date reaches (a payload writes it as ISO 8601). */
const timestamp = quantity.refine((n) => n <= MAX_TIMESTAMP_S, 'a timestamp beyond what a date can hold (8.64e12 s)');
const lower = (re: RegExp, what: string) =>
  z
    .string()
    .regex(re, what)
    .transform((s) => s.toLowerCase());
const HASH = /^0x[0-9a-fA-F]{64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const DATA = /^0x([0-9a-fA-F]{2})*$/;
const hash = lower(HASH, 'a 32-byte hash');

/** The part of a block header the listener uses. */
export interface BlockHeader {
  number: number;
  hash: string;
  parentHash: string;
  timestamp: number;
  /**
   * From `logsBloom`: true when the bloom has a bit set (the block has logs), false when it is all
   * zeros, undefined when the node sent none. Not persisted.
   */
  hasLogs?: boolean;
}

const bloom = z
  .string()
  .regex(/^0x[0-9a-fA-F]{512}$/, 'a 256-byte bloom')
  .transform((s) => /[1-9a-fA-F]/.test(s.slice(2)));

export const headerSchema = z
  .object({ number: quantity, hash, parentHash: hash, timestamp, logsBloom: bloom.optional() })
  .transform(({ logsBloom, ...h }): BlockHeader => (logsBloom === undefined ? h : { ...h, hasLogs: logsBloom }));

/** A hex quantity of at most 2^53 - 1 (Number.MAX_SAFE_INTEGER, 0x1fffffffffffff), by its pattern alone. */
const SAFE_QUANTITY = /^0x(?:[0-9a-fA-F]{1,13}|[01][0-9a-fA-F]{13})$/;
const rawQuantity = z.string().regex(SAFE_QUANTITY, 'a hex quantity below 2^53');
const rawHash = z.string().regex(HASH, 'a 32-byte hash');
const toLower = (s: string): string => s.toLowerCase();
const toNumber = (s: string): number => Number.parseInt(s, 16);

/**
 * A log as `eth_getLogs` answers it: each field checked by its pattern alone (quantities below 2^53
 * included), then the whole log turned into a ChainLog by one transform (hex strings lowercase,
 * quantities numbers). The header's schema above pipes every field through its own transform and
 * refinement; for a log that made zod's parse ~3x slower (6.2 against 2.1 µs per log), and the objects
 * each step allocates were ~18% of all the node allocated in bench:e2e's backlog. The errors name the
 * field as the header's do (`3.topics.0`).
 */
export const logSchema = z
  .object({
    address: z.string().regex(ADDRESS, 'a 20-byte address'),
    topics: z.array(rawHash).max(4),
    data: z.string().regex(DATA, 'hex bytes'),
    blockNumber: rawQuantity,
    blockHash: rawHash,
    transactionHash: rawHash,
    transactionIndex: rawQuantity,
    logIndex: rawQuantity,
    removed: z.boolean().optional(),
  })
  .transform((l): ChainLog => ({
    address: toLower(l.address),
    topics: l.topics.map(toLower),
    data: toLower(l.data),
    blockNumber: toNumber(l.blockNumber),
    blockHash: toLower(l.blockHash),
    transactionHash: toLower(l.transactionHash),
    transactionIndex: toNumber(l.transactionIndex),
    logIndex: toNumber(l.logIndex),
    removed: l.removed ?? false,
  }));

export const logsSchema = z.array(logSchema);

/**
 * The timestamp of each block whose every log in `raw` (an `eth_getLogs` result, `logs` its validated
 * form) carries a `blockTimestamp` that is a timestamp (a quantity a Date holds), the same in all of
 * them; a block with a log without one, or with one that is not such a quantity or differs from its
 * sibling's, is left out (its header is read).
 */
export function blockTimestamps(logs: readonly ChainLog[], raw: readonly unknown[]): Map<number, number> {
  const found = new Map<number, number | null>();
  for (const [i, log] of logs.entries()) {
    const parsed = timestamp.safeParse((raw[i] as { blockTimestamp?: unknown }).blockTimestamp);
    const seen = found.get(log.blockNumber);
    if (!parsed.success || (seen !== undefined && seen !== parsed.data)) found.set(log.blockNumber, null);
    else if (seen === undefined) found.set(log.blockNumber, parsed.data);
  }
  const timestamps = new Map<number, number>();
  for (const [n, t] of found) if (t !== null) timestamps.set(n, t);
  return timestamps;
}
export const quantitySchema = quantity;

export function validateResult<S extends z.ZodType>(schema: S, value: unknown, method: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw malformed(method, parsed.error.issues[0]);
}

/** Logs checked per slice by `validateLogsInSlices`: well under a millisecond of the event loop each. */
const LOG_SLICE = 100;

/**
 * An `eth_getLogs` result (a block's, a range's, a backfill's history) validated as `logsSchema` does,
 * `slice` logs at a time with the event loop served between slices: one zod parse of a 1,000-log answer
 * held the loop 40-80 ms, and whatever else the node had to do (a live block's head, its delivery)
 * waited behind it. An answer of one slice or less is checked at once. The error names the field as
 * `validateResult` does (`3.topics.0`).
 */
export async function validateLogsInSlices(value: unknown, method: string, slice = LOG_SLICE): Promise<ChainLog[]> {
  if (!Array.isArray(value)) return validateResult(logsSchema, value, method);
  const logs: ChainLog[] = [];
  for (let at = 0; at < value.length; at += slice) {
    if (at > 0) await yieldToLoop();
    const parsed = logsSchema.safeParse(value.slice(at, at + slice));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const [index, ...rest] = issue?.path ?? [];
      throw malformed(method, issue, typeof index === 'number' ? [at + index, ...rest] : undefined);
    }
    for (const log of parsed.data) logs.push(log);
  }
  return logs;
}

function malformed(method: string, issue: z.core.$ZodIssue | undefined, path = issue?.path): EthhookError {
  return new EthhookError('ETHHOOK_ERR_RPC_MALFORMED', `invalid ${method} result: ${issue?.message ?? 'unknown'}`, {
    method,
    field: path?.join('.') ?? '',
  });
}

export const toQuantity = (n: number): string => `0x${n.toString(16)}`;
