/**
 * Subscriptions: which logs of which chain go to which endpoint. Stored in the `subscriptions` space
 * (src/store/kv.ts) keyed by id (`sub_...`), with an index `subscriptions-by-endpoint` (`<endpointId>!<subId>`) for
 * per-endpoint listing and cascading deletes.
 *
 * Record: `{ id, endpointId, chainId, addresses?, topics?, confirmations?, finality?, abi?, filter?, createdAt }`.
 * The filter has exactly `eth_getLogs` semantics (go-ethereum's `filterLogs`):
 * - `addresses`: the log's address is one of them; absent (or given empty) means any address.
 * - `topics`: positional; position i is `null` (any), a topic, or a list of topics (any of them; an
 *   empty list is normalized to `null`, as geth treats it as a wildcard). A log with fewer topics than
 *   the filter has positions never matches, even when the extra positions are `null`.
 * Addresses and topics are stored lowercase and deduplicated, so matching is a string comparison.
 * `confirmations`: the listener emits at its chain's confirmation depth; the Matcher defers the jobs of
 * a subscription that wants more (see src/actors/matcher/README.md).
 * `finality` (`latest` when absent): `safe` or `finalized` holds the jobs until the chain's `safe` or
 * `finalized` block has reached the log's block (the listener polls those tags; src/actors/matcher/README.md),
 * on top of `confirmations`.
 * `abi` / `events` / `filter` (src/abi/): the events whose logs the webhooks carry decoded (`data.event`),
 * and a filter on their arguments, address and block number, run on the logs `topics` let through.
 * Given: `abi` (human-readable declarations and/or JSON ABI fragments), `events` (names to pick; all by
 * default), `filter` (the grammar of src/abi/filter.ts). Stored: `abi` as the chosen events' canonical
 * declarations (`events` is not kept: the abi is the choice), their topic0 folded into `topics[0]`
 * (src/abi/subscription-fields.ts says how a given `topics[0]` and the events combine), `filter` as given.
 * Checked at creation, from the admin API and the governance stream alike (resolveAbiFields):
 * ETHHOOK_ERR_INVALID_INPUT naming the field (`abi[2]`, `filter.and[0]["args.value"].gte`).
 * Creating a subscription for an unknown endpoint is an error (ETHHOOK_ERR_ENDPOINT_NOT_FOUND).
 * After any change the caller notifies the Matcher (`subscriptions.changed`), which patches its index.
 */
import { z } from 'zod';
import { EthhookError } from '../runtime/errors.ts';
import type { Kv, KvSpace } from './kv.ts';
import { endpointIdSchema, type EndpointStore } from './endpoints.ts';
import { newId } from './ids.ts';
import { PREFIX_END } from './keys.ts';
import { Serial } from '../runtime/serial.ts';
import { parseInput } from './validate.ts';
import { AbiInputError, MAX_EVENTS } from '../abi/events.ts';
import { resolveAbiFields, type AbiFields, type AbiFieldsInput } from '../abi/subscription-fields.ts';
import { loadViem } from '../abi/viem.ts';
import { formatPath } from '../config/path.ts';

export const MAX_ADDRESSES = 1000;
export const MAX_TOPIC_ALTERNATIVES = 100;
export const MAX_ABI_ENTRIES = 1000;
export const MAX_ABI_ENTRY_CHARS = 4096;

export const addressSchema = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, 'must be a 20-byte 0x-prefixed hex address')
  .transform((s) => s.toLowerCase());
export const topicSchema = z
  .string()
  .regex(/^0x[0-9a-fA-F]{64}$/, 'must be a 32-byte 0x-prefixed hex topic')
  .transform((s) => s.toLowerCase());

const dedupe = (xs: string[]) => [...new Set(xs)];

const topicPositionSchema = z
  .union([z.null(), topicSchema, z.array(topicSchema).max(MAX_TOPIC_ALTERNATIVES)])
  .transform((p) => (Array.isArray(p) ? (p.length === 0 ? null : dedupe(p)) : p));
export type TopicPosition = null | string | string[];

export const subscriptionIdSchema = z.string().regex(/^sub_[A-Za-z0-9_-]{1,64}$/, 'must be "sub_" followed by 1 to 64 of [A-Za-z0-9_-]');
const chainIdSchema = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const confirmationsSchema = z.number().int().min(0).max(10_000);
export const FINALITIES = ['latest', 'safe', 'finalized'] as const;
export type Finality = (typeof FINALITIES)[number];
const finalitySchema = z.enum(FINALITIES);

/** The stored shape (already normalized). */
export const subscriptionSchema = z.object({
  id: subscriptionIdSchema,
  endpointId: endpointIdSchema,
  chainId: chainIdSchema,
  addresses: z
    .array(z.string().regex(/^0x[0-9a-f]{40}$/))
    .min(1)
    .optional(),
  topics: z
    .array(z.union([z.null(), z.string().regex(/^0x[0-9a-f]{64}$/), z.array(z.string().regex(/^0x[0-9a-f]{64}$/)).min(1)]))
    .max(4)
    .optional(),
  confirmations: confirmationsSchema.optional(),
  finality: finalitySchema.optional(),
  abi: z.array(z.string()).min(1).optional(),
  filter: z.unknown().optional(),
  createdAt: z.number().int(),
});
export type Subscription = z.infer<typeof subscriptionSchema>;

export const subscriptionCreateSchema = z.strictObject({
  endpointId: endpointIdSchema,
  chainId: chainIdSchema,
  addresses: z.array(addressSchema).max(MAX_ADDRESSES).transform(dedupe).optional(),
  topics: z.array(topicPositionSchema).max(4).optional(),
  confirmations: confirmationsSchema.optional(),
  finality: finalitySchema.optional(),
  abi: z
    .array(z.union([z.string().max(MAX_ABI_ENTRY_CHARS), z.record(z.string(), z.unknown())]))
    .min(1)
    .max(MAX_ABI_ENTRIES)
    .optional(),
  events: z.array(z.string().min(1).max(1024)).min(1).max(MAX_EVENTS).optional(),
  filter: z.unknown().optional(),
  id: subscriptionIdSchema.optional(),
});
export type SubscriptionCreateInput = z.input<typeof subscriptionCreateSchema>;

export interface SubscriptionListOptions {
  endpointId?: string;
  chainId?: number;
  limit?: number;
  /** Page after this subscription id (ids sort by creation time). */
  after?: string;
}

export class SubscriptionStore {
  private readonly records: KvSpace<Subscription>;
  private readonly byEndpoint: KvSpace<string>;
  private readonly writes = new Serial();

  constructor(
    private readonly kv: Kv,
    private readonly endpoints: EndpointStore,
  ) {
    this.records = kv.space('subscriptions');
    this.byEndpoint = kv.space('subscriptions-by-endpoint');
  }

  async create(input: SubscriptionCreateInput, now = Date.now()): Promise<Subscription> {
    const parsed = parseInput(subscriptionCreateSchema, input, 'subscription');
    const decoding = await abiFields(parsed);
    return this.writes.run(async () => {
      await this.endpoints.require(parsed.endpointId);
      const id = parsed.id ?? newId('sub_', now);
      if ((await this.records.get(id)) !== undefined) {
        throw new EthhookError('ETHHOOK_ERR_SUBSCRIPTION_EXISTS', `subscription ${id} already exists`, { subscriptionId: id });
      }
      const sub: Subscription = subscriptionSchema.parse({
        id,
        endpointId: parsed.endpointId,
        chainId: parsed.chainId,
        ...(parsed.addresses && parsed.addresses.length > 0 ? { addresses: parsed.addresses } : {}),
        ...(decoding.topics ? { topics: decoding.topics } : {}),
        ...(parsed.confirmations !== undefined ? { confirmations: parsed.confirmations } : {}),
        ...(parsed.finality !== undefined ? { finality: parsed.finality } : {}),
        ...(decoding.abi ? { abi: decoding.abi } : {}),
        ...(decoding.filter !== undefined ? { filter: decoding.filter } : {}),
        createdAt: now,
      });
      await this.kv.batch([this.records.putOp(id, sub), this.byEndpoint.putOp(`${sub.endpointId}!${id}`, id)]);
      return sub;
    });
  }

  async get(id: string): Promise<Subscription | undefined> {
    const raw = await this.records.get(id);
    return raw === undefined ? undefined : subscriptionSchema.parse(raw);
  }

  async require(id: string): Promise<Subscription> {
    const sub = await this.get(id);
    if (!sub) throw new EthhookError('ETHHOOK_ERR_SUBSCRIPTION_NOT_FOUND', `no subscription ${id}`, { subscriptionId: id });
    return sub;
  }

  async list(options: SubscriptionListOptions = {}): Promise<Subscription[]> {
    const out: Subscription[] = [];
    for await (const sub of this.iterate(options)) out.push(sub);
    return out;
  }

  /** Like `list`, one record at a time: loading 100,000 subscriptions never holds them all twice. */
  async *iterate(options: SubscriptionListOptions = {}): AsyncGenerator<Subscription> {
    const limit = options.limit ?? Infinity;
    const wanted = (sub: Subscription) => options.chainId === undefined || sub.chainId === options.chainId;
    let n = 0;
    if (options.endpointId !== undefined) {
      const prefix = `${options.endpointId}!`;
      const gt = options.after === undefined ? prefix : `${prefix}${options.after}`;
      for await (const [, id] of this.byEndpoint.scan({ gt, lt: `${prefix}${PREFIX_END}` })) {
        if (n >= limit) return;
        const sub = await this.get(id);
        if (sub && wanted(sub)) {
          n++;
          yield sub;
        }
      }
      return;
    }
    const range = options.after === undefined ? {} : { gt: options.after };
    for await (const [, value] of this.records.scan(range)) {
      if (n >= limit) return;
      const sub = subscriptionSchema.parse(value);
      if (wanted(sub)) {
        n++;
        yield sub;
      }
    }
  }

  /** Deletes a subscription; resolves with it, or undefined when there was none. */
  remove(id: string): Promise<Subscription | undefined> {
    return this.writes.run(async () => {
      const sub = await this.get(id);
      if (!sub) return undefined;
      await this.kv.batch([this.records.delOp(id), this.byEndpoint.delOp(`${sub.endpointId}!${id}`)]);
      return sub;
    });
  }

  /** Deletes every subscription of an endpoint in one batch; resolves with their ids. */
  removeByEndpoint(endpointId: string): Promise<string[]> {
    return this.writes.run(async () => {
      const prefix = `${endpointId}!`;
      const ids: string[] = [];
      for await (const [, id] of this.byEndpoint.scan({ gt: prefix, lt: `${prefix}${PREFIX_END}` })) ids.push(id);
      await this.kv.batch(ids.flatMap((id) => [this.records.delOp(id), this.byEndpoint.delOp(`${prefix}${id}`)]));
      return ids;
    });
  }
}

/** The stored abi, topics and filter of a create input (see the header); ETHHOOK_ERR_INVALID_INPUT naming the field. */
export async function abiFields(input: AbiFieldsInput): Promise<AbiFields> {
  if (input.abi !== undefined) await loadViem();
  try {
    return resolveAbiFields(input);
  } catch (err) {
    if (!(err instanceof AbiInputError)) throw err;
    const field = formatPath(err.path);
    throw new EthhookError('ETHHOOK_ERR_INVALID_INPUT', `invalid subscription: ${field}: ${err.problem}`, {
      what: 'subscription',
      field,
      issues: [{ path: field, message: err.problem }],
    });
  }
}

/**
 * For a zod `superRefine` of a create body: the first problem of its abi, events or filter as an issue at
 * its path. A body with an abi is checked once viem is loaded (src/abi/viem.ts): parse it with
 * `safeParseAsync`.
 */
export function checkAbiFields(input: AbiFieldsInput, ctx: z.RefinementCtx): void | Promise<void> {
  const check = () => {
    try {
      resolveAbiFields(input);
    } catch (err) {
      if (!(err instanceof AbiInputError)) throw err;
      ctx.addIssue({ code: 'custom', path: [...err.path], message: err.problem });
    }
  };
  if (input.abi === undefined) return check();
  return loadViem().then(check);
}

/**
 * Deletes an endpoint and its subscriptions; resolves with the removed subscription ids (tell the
 * Matcher) or undefined when the endpoint did not exist. The endpoint goes first: a subscription
 * created concurrently either sees it missing, or was queued before the cascade and is swept by it.
 */
export async function removeEndpointCascade(
  endpoints: EndpointStore,
  subscriptions: SubscriptionStore,
  endpointId: string,
): Promise<string[] | undefined> {
  if (!(await endpoints.remove(endpointId))) return undefined;
  return subscriptions.removeByEndpoint(endpointId);
}
