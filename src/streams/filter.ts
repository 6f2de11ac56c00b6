/**
 * Stream filters, from the query string of `/v1/ws/events` and `/v1/sse/events`:
 *
 *   events=all                      default: every kind
 *   events=log.created,log.removed  only these kinds (`log.created`, `log.removed`, `governance`, `backfill`)
 *   chain=1,10                      only logs and backfill notices of these chain ids
 *   address=0xAbC…,0x123…           only logs emitted by these contracts (case-insensitive)
 *   type=endpoint.pause,key.rotate  only governance notices of these governance message types
 *   access_token=…                  the bearer token, for browsers (not a filter; see admission.ts)
 *
 * A filter constrains only the events that carry its field: `chain` and `address` narrow logs and let
 * governance notices through (they concern the whole node), `chain` narrows backfill notices and
 * `address` lets them through, `type` narrows governance notices and lets the others through. To drop a kind altogether, leave it out of `events`. Filters combine with AND; the
 * values of one filter with OR. A key may be repeated (`address=a&address=b` is `address=a,b`).
 *
 * Why `type` means the governance message type: `events` already selects the kinds, and governance
 * notices are the only events with a type of their own, which is what a dashboard watching, say, key
 * rotations wants to select on. Types are checked for shape only (lowercase dotted words), so the
 * streams do not depend on the governance actor's list.
 *
 * Bad input is a 400 `ETHHOOK_ERR_ADMIN_INVALID_REQUEST` whose `field` is the query key; an unknown
 * key (a typo such as `adress`) is an error, never ignored.
 */
import { z } from 'zod';
import { EthhookError } from '../runtime/errors.ts';
import { STREAM_EVENT_KINDS, type StreamEvent, type StreamEventKind } from './events.ts';

export const MAX_FILTER_CHAINS = 64;
export const MAX_FILTER_ADDRESSES = 256;
export const MAX_FILTER_TYPES = 32;

export interface StreamFilter {
  readonly kinds: ReadonlySet<StreamEventKind>;
  /** null: any chain. */
  readonly chains: ReadonlySet<number> | null;
  /** Lowercase; null: any address. */
  readonly addresses: ReadonlySet<string> | null;
  /** null: any governance type. */
  readonly types: ReadonlySet<string> | null;
}

export interface StreamQuery {
  filter: StreamFilter;
  /** The `access_token` parameter, when given. */
  accessToken: string | undefined;
}

const commaList = <T>(item: z.ZodType<T, string>, max: number) =>
  z
    .string()
    .transform((s) => s.split(','))
    .pipe(z.array(z.string().trim().min(1, 'has an empty item').pipe(item)).min(1).max(max, `at most ${max} values`));

const kindsSchema = commaList(
  z.enum(['all', ...STREAM_EVENT_KINDS], `each item must be one of all, ${STREAM_EVENT_KINDS.join(', ')}`),
  STREAM_EVENT_KINDS.length,
)
  .refine((kinds) => !kinds.includes('all') || kinds.length === 1, 'all stands alone')
  .transform((kinds) => (kinds[0] === 'all' ? [...STREAM_EVENT_KINDS] : (kinds as StreamEventKind[])));

export const streamQuerySchema = z.strictObject({
  events: kindsSchema.default([...STREAM_EVENT_KINDS]),
  chain: commaList(
    z
      .string()
      .regex(/^[1-9][0-9]{0,15}$/, 'must be positive integer chain ids')
      .transform(Number),
    MAX_FILTER_CHAINS,
  ).optional(),
  address: commaList(
    z
      .string()
      .regex(/^0x[0-9a-fA-F]{40}$/, 'must be 0x-prefixed 20-byte hex addresses')
      .transform((a) => a.toLowerCase()),
    MAX_FILTER_ADDRESSES,
  ).optional(),
  type: commaList(
    z.string().regex(/^[a-z][a-z0-9-]*(?:\.[a-z][a-z0-9-]*)*$/, 'must be governance message types such as endpoint.pause'),
    MAX_FILTER_TYPES,
  ).optional(),
  access_token: z.string().min(1).optional(),
});

/** Parses a raw query string (without `?`). Throws a 400 EthhookError naming the field. */
export function parseStreamQuery(search: string): StreamQuery {
  // No prototype: a key like `__proto__` or `constructor` is a key like any other (and unknown).
  const raw: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [key, value] of new URLSearchParams(search)) raw[key] = Object.hasOwn(raw, key) ? `${raw[key]},${value}` : value;
  const result = streamQuerySchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.code === 'unrecognized_keys' ? issue.keys[0]! : String(issue.path[0] ?? '');
    const message = issue.code === 'unrecognized_keys' ? 'unknown filter' : issue.message;
    throw new EthhookError('ETHHOOK_ERR_ADMIN_INVALID_REQUEST', `query.${field}: ${message}`, { field });
  }
  const q = result.data;
  return {
    filter: {
      kinds: new Set(q.events),
      chains: q.chain ? new Set(q.chain) : null,
      addresses: q.address ? new Set(q.address) : null,
      types: q.type ? new Set(q.type) : null,
    },
    accessToken: q.access_token,
  };
}

/**
 * Whether the event passes the filter. `address` is the event's address in lowercase (computed once
 * per event by the hub, not once per client).
 */
export function filterMatches(filter: StreamFilter, event: StreamEvent, address: string | undefined): boolean {
  if (!filter.kinds.has(event.kind)) return false;
  if (event.kind === 'governance') return filter.types === null || filter.types.has(event.type);
  if (event.kind === 'backfill') return filter.chains === null || filter.chains.has(event.chainId);
  return (filter.chains === null || filter.chains.has(event.chainId)) && (filter.addresses === null || filter.addresses.has(address!));
}

/** A short description for logs. */
export function describeFilter(filter: StreamFilter): string {
  const parts = [`events=${filter.kinds.size === STREAM_EVENT_KINDS.length ? 'all' : [...filter.kinds].join(',')}`];
  if (filter.chains) parts.push(`chain=${[...filter.chains].join(',')}`);
  if (filter.addresses) parts.push(`address=${filter.addresses.size} value(s)`);
  if (filter.types) parts.push(`type=${[...filter.types].join(',')}`);
  return parts.join(' ');
}
