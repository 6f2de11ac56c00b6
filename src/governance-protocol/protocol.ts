/**
 * The governance wire protocol (docs/governance.md is its full text): frame schemas and the parser.
 *
 * Node -> server: `{ type: 'hello', protocol: 1, lastApplied }` once after connecting, then
 * `{ type: 'resume', from }` whenever it needs the stream again from `from` (a gap, a rejected frame).
 * Server -> node: governance messages `{ seq, type, payload, keyId, signature }`, one per text frame.
 *
 * Every payload schema is strict: an unknown field makes the message malformed, so a node never applies
 * half of a message it does not fully understand. `parseGovernanceFrame` never throws; it returns the
 * message with its payload both as received (what the signature covers) and as parsed (what is applied).
 */
import { z } from 'zod';
import { endpointCreateSchema, endpointIdSchema } from '../store/endpoints.ts';
import { subscriptionCreateSchema, subscriptionIdSchema } from '../store/subscriptions.ts';
import { KEY_ID_PATTERN, keyIdOf, parsePublicKey } from './keys.ts';

export const PROTOCOL_VERSION = 1;
/** Frames larger than this close the connection (ws `maxPayload`). */
export const MAX_FRAME_BYTES = 1024 * 1024;

const seqSchema = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const heightSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
export const keyIdSchema = z.string().regex(KEY_ID_PATTERN, 'must be 32 lowercase hex characters (a key fingerprint)');

const byId = <S extends z.ZodType>(id: S) => z.strictObject({ id });

const keyRotatePayloadSchema = z
  .strictObject({
    add: z.strictObject({ keyId: keyIdSchema, publicKey: z.string().min(1).max(4096) }),
    retire: z.array(keyIdSchema).max(64).default([]),
  })
  .superRefine((p, ctx) => {
    let derived: string | null = null;
    try {
      derived = keyIdOf(parsePublicKey(p.add.publicKey));
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['add', 'publicKey'], message: (err as Error).message });
      return;
    }
    if (derived !== p.add.keyId)
      ctx.addIssue({ code: 'custom', path: ['add', 'keyId'], message: `is not the fingerprint of add.publicKey (${derived})` });
    if (p.retire.includes(p.add.keyId)) ctx.addIssue({ code: 'custom', path: ['retire'], message: 'must not retire the key it adds' });
  });

/** Payload schema of each message type. */
export const payloadSchemas = {
  'endpoint.upsert': endpointCreateSchema.extend({ id: endpointIdSchema }),
  'endpoint.delete': byId(endpointIdSchema),
  'endpoint.pause': byId(endpointIdSchema),
  'endpoint.resume': byId(endpointIdSchema),
  'subscription.upsert': subscriptionCreateSchema.extend({ id: subscriptionIdSchema }),
  'subscription.delete': byId(subscriptionIdSchema),
  'key.rotate': keyRotatePayloadSchema,
} as const;

export type GovernanceType = keyof typeof payloadSchemas;
export const GOVERNANCE_TYPES = Object.keys(payloadSchemas) as GovernanceType[];
export type GovernancePayload<T extends GovernanceType> = z.output<(typeof payloadSchemas)[T]>;
export type GovernancePayloadInput<T extends GovernanceType> = z.input<(typeof payloadSchemas)[T]>;

export const messageEnvelopeSchema = z.strictObject({
  seq: seqSchema,
  type: z.enum(GOVERNANCE_TYPES as [GovernanceType, ...GovernanceType[]]),
  payload: z.unknown(),
  keyId: keyIdSchema,
  signature: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'must be the base64 of a 64-byte Ed25519 signature'),
});

/** A message as it travels (what the server logs and sends). */
export interface SignedMessage {
  seq: number;
  type: GovernanceType;
  payload: unknown;
  keyId: string;
  signature: string;
}

/** A message whose envelope and payload are valid; its signature is not checked yet. */
export type ParsedMessage = {
  [T in GovernanceType]: SignedMessage & { type: T; parsed: GovernancePayload<T> };
}[GovernanceType];

export type FrameParseResult =
  { ok: true; message: ParsedMessage } | { ok: false; reason: string; seq: number | null; keyId: string | null };

export const helloSchema = z.strictObject({
  type: z.literal('hello'),
  protocol: z.literal(PROTOCOL_VERSION),
  lastApplied: heightSchema,
});
export const resumeSchema = z.strictObject({ type: z.literal('resume'), from: seqSchema });
export const clientFrameSchema = z.discriminatedUnion('type', [helloSchema, resumeSchema]);
export type ClientFrame = z.infer<typeof clientFrameSchema>;

function firstIssue(error: z.ZodError, prefix = ''): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
  return `${path || '(root)'}: ${issue.message}`;
}

/** Reads text out of whatever `ws` hands over; null for binary frames, which the protocol does not use. */
export function frameText(data: unknown, isBinary: boolean): string | null {
  if (isBinary) return null;
  if (typeof data === 'string') return data;
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data) && data.every((d) => Buffer.isBuffer(d))) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return null;
}

/** Validates one server frame: JSON, envelope, then the payload of its type. Never throws. */
export function parseGovernanceFrame(text: string): FrameParseResult {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not JSON', seq: null, keyId: null };
  }
  const seq = typeof (raw as { seq?: unknown })?.seq === 'number' ? (raw as { seq: number }).seq : null;
  const claimedKey = (raw as { keyId?: unknown })?.keyId;
  const keyId = typeof claimedKey === 'string' ? claimedKey.slice(0, 64) : null;
  const envelope = messageEnvelopeSchema.safeParse(raw);
  if (!envelope.success) return { ok: false, reason: firstIssue(envelope.error), seq, keyId };
  const m = envelope.data;
  const payload = payloadSchemas[m.type].safeParse(m.payload);
  if (!payload.success) return { ok: false, reason: firstIssue(payload.error, 'payload'), seq, keyId };
  return { ok: true, message: { ...m, parsed: payload.data } as ParsedMessage };
}

/** Validates a payload for `type` (the server checks what it is asked to sign). */
export function parsePayload<T extends GovernanceType>(type: T, payload: unknown): z.ZodSafeParseResult<GovernancePayload<T>> {
  return payloadSchemas[type].safeParse(payload) as z.ZodSafeParseResult<GovernancePayload<T>>;
}
