/**
 * JSON-RPC 2.0 frame parser for what a chain node sends. Every inbound frame goes through
 * `parseFrame`, which returns one of:
 *
 * - `response`: `{ id, result }` (result may be null, e.g. a block that does not exist);
 * - `error`: `{ id, error: { code, message, data? } }` (id null when the node could not read the request);
 * - `notification`: an `eth_subscription` push, `{ subscription, result }`;
 * - `batch`: the array answering a batch request, each item a response or an error.
 *
 * Anything else (not JSON, wrong version, both or neither of result and error, an unknown method) throws
 * an EthhookError ETHHOOK_ERR_RPC_MALFORMED whose context says why, with a short sample of the frame.
 * Results stay `unknown` here: each call validates its own result (eth-schemas.ts).
 */
import { z } from 'zod';
import { EthhookError } from '../../runtime/errors.ts';

export type RpcId = number | string;

export interface RpcErrorBody {
  code: number;
  message: string;
  data?: unknown;
}

export type RpcReply = { kind: 'response'; id: RpcId; result: unknown } | { kind: 'error'; id: RpcId | null; error: RpcErrorBody };

export type Frame = RpcReply | { kind: 'notification'; subscription: string; result: unknown } | { kind: 'batch'; items: RpcReply[] };

const SAMPLE_CHARS = 120;

const rpcId = z.union([z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), z.string().max(256)]);

const errorBody = z.object({
  code: z.number().int(),
  message: z.string().max(4_096),
  data: z.unknown().optional(),
});

const replySchema = z.object({
  jsonrpc: z.literal('2.0'),
  id: rpcId.nullable(),
  result: z.unknown().optional(),
  error: errorBody.optional(),
});

const notificationSchema = z.object({
  jsonrpc: z.literal('2.0'),
  method: z.literal('eth_subscription'),
  params: z.object({ subscription: z.string().min(1).max(256), result: z.unknown() }),
});

function malformed(reason: string, raw: string): EthhookError {
  return new EthhookError('ETHHOOK_ERR_RPC_MALFORMED', `malformed JSON-RPC frame: ${reason}`, {
    reason,
    sample: raw.slice(0, SAMPLE_CHARS),
    bytes: raw.length,
  });
}

function toReply(value: unknown, raw: string): RpcReply {
  const parsed = replySchema.safeParse(value);
  if (!parsed.success) throw malformed(parsed.error.issues[0]?.message ?? 'not a JSON-RPC reply', raw);
  const obj = parsed.data;
  const hasResult = Object.hasOwn(value as object, 'result');
  if (hasResult === (obj.error !== undefined)) throw malformed('a reply needs exactly one of result and error', raw);
  if (obj.error !== undefined) return { kind: 'error', id: obj.id, error: obj.error };
  if (obj.id === null) throw malformed('a result with a null id', raw);
  return { kind: 'response', id: obj.id, result: obj.result };
}

export function parseFrame(raw: string): Frame {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw malformed('not JSON', raw);
  }
  if (Array.isArray(value)) {
    if (value.length === 0) throw malformed('an empty batch', raw);
    return { kind: 'batch', items: value.map((item) => toReply(item, raw)) };
  }
  if (typeof value !== 'object' || value === null) throw malformed('not an object', raw);
  if (Object.hasOwn(value, 'method')) {
    const parsed = notificationSchema.safeParse(value);
    if (!parsed.success) throw malformed(parsed.error.issues[0]?.message ?? 'not a subscription notification', raw);
    return { kind: 'notification', subscription: parsed.data.params.subscription, result: parsed.data.params.result };
  }
  return toReply(value, raw);
}
