/**
 * A log decoded under one event, with viem's `decodeEventLog` (strict: a log whose topics or data do not
 * fit the event exactly does not decode), and the decoded arguments as the webhook carries them
 * (`data.event.args`, docs/webhook-body.schema.json):
 * - integers (any `uintN`/`intN`) as decimal strings, never JSON numbers;
 * - addresses checksummed (EIP-55), bytes and `bytesN` as 0x-hex, strings and booleans as they are;
 * - tuples as objects keyed by component name, or as arrays when a component is unnamed; arrays as
 *   arrays, nested as deep as the type;
 * - `args` itself follows the tuple rule: an object keyed by parameter name, an array when a parameter
 *   is unnamed;
 * - an indexed argument of a dynamic type (string, bytes, array, tuple) is only its keccak hash in the
 *   log, so it is that topic (0x-hex).
 * `args` keeps viem's values (bigint or number integers) for the filters (filter.ts), which compare
 * integers as BigInt.
 */
import type { Hex } from 'viem';
import { viem } from './viem.ts';
import type { ChosenEvent } from './events.ts';

export type ArgValue = string | boolean | ArgValue[] | { [name: string]: ArgValue };

/** `data.event` of a webhook. */
export interface WebhookEvent {
  name: string;
  signature: string;
  args: { [name: string]: ArgValue } | ArgValue[];
}

export interface DecodedLog {
  readonly event: WebhookEvent;
  /** viem's decoded arguments (integers as bigint or number). */
  readonly args: unknown;
}

/** The log decoded as `event`, or null when it does not decode under it. */
export function decodeLog(event: ChosenEvent, topics: readonly string[], data: string): DecodedLog | null {
  let args: unknown;
  try {
    ({ args } = viem().decodeEventLog({ abi: [event.item], topics: topics as [Hex, ...Hex[]], data: data as Hex, strict: true }));
  } catch {
    return null;
  }
  const rendered = render(args ?? []) as WebhookEvent['args'];
  return { event: { name: event.name, signature: event.signature, args: rendered }, args: args ?? [] };
}

function render(value: unknown): ArgValue {
  if (typeof value === 'bigint' || typeof value === 'number') return value.toString();
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (Array.isArray(value)) return value.map(render);
  const out: { [name: string]: ArgValue } = {};
  for (const key of Object.keys(value as object)) out[key] = render((value as Record<string, unknown>)[key]);
  return out;
}
