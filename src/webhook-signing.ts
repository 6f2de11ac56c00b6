/**
 * Standard Webhooks signing (https://www.standardwebhooks.com, symmetric scheme `v1`).
 *
 * - The signed content is `${webhook-id}.${webhook-timestamp}.${body}`, the timestamp in integer
 *   seconds since the epoch, the body byte for byte as sent.
 * - A secret is `whsec_` + base64 of 24..64 random bytes; the HMAC-SHA256 key is the decoded bytes.
 * - `webhook-signature` is `v1,<base64 HMAC>`; during a secret rotation every live secret signs and the
 *   signatures are joined by a single space, so a receiver holding either secret verifies.
 * - A retry keeps the `webhook-id` and gets a fresh timestamp and signature (receivers reject stale
 *   timestamps, 5 minutes by default in the reference libraries).
 */
import { hash } from 'node:crypto';
import { EthhookError } from './runtime/errors.ts';

export const SECRET_PREFIX = 'whsec_';
const MIN_KEY_BYTES = 24;
const MAX_KEY_BYTES = 64;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export interface SignInput {
  id: string;
  /** Seconds since the epoch. */
  timestamp: number;
  body: string | Buffer;
  /** Live secrets, newest first; at least one. */
  secrets: readonly string[];
}

// A type alias (not an interface) so that it is a `Record<string, string>` to the HTTP client.
export type WebhookHeaders = {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
};

/** The HMAC key of a `whsec_` secret; throws ETHHOOK_ERR_INVALID_WEBHOOK_SECRET without echoing it. */
export function decodeSecret(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : null;
  if (encoded === null || encoded.length % 4 !== 0 || !BASE64.test(encoded)) {
    throw new EthhookError('ETHHOOK_ERR_INVALID_WEBHOOK_SECRET', 'webhook secret must be "whsec_" followed by base64');
  }
  const key = Buffer.from(encoded, 'base64');
  if (key.length < MIN_KEY_BYTES || key.length > MAX_KEY_BYTES) {
    throw new EthhookError('ETHHOOK_ERR_INVALID_WEBHOOK_SECRET', `webhook secret must decode to ${MIN_KEY_BYTES}..${MAX_KEY_BYTES} bytes`, {
      bytes: key.length,
    });
  }
  return key;
}

/** `v1,<base64 HMAC-SHA256>` of one message under one secret. */
export function signatureOf(secret: string, id: string, timestamp: number, body: string | Buffer): string {
  return signingKey(secret).sign(id, timestamp, body);
}

const BLOCK = 64;
/** Where messages are laid out behind the inner pad, grown as needed (signing is synchronous: one buffer serves all). */
let scratch = Buffer.allocUnsafe(16 * 1024);

/**
 * A secret's HMAC-SHA256 key prepared once (RFC 2104): the key XORed into the inner and outer pad
 * blocks. A signature is then two one-shot hashes, sha256(opad || sha256(ipad || message)), with the
 * message written behind a copy of the inner pad in one reused buffer: no Hmac object, key handle or
 * stream per webhook (`createHmac` was ~1.5x the time in a loop over distinct bodies). Keys are at most
 * one block (64 bytes, `decodeSecret`), so they are used as they are, zero-padded.
 */
export class SigningKey {
  private readonly outer = Buffer.alloc(BLOCK + 32);
  private readonly ipad = Buffer.alloc(BLOCK);

  constructor(key: Buffer) {
    if (key.length > BLOCK) throw new RangeError(`an HMAC-SHA256 key longer than ${BLOCK} bytes must be hashed first`);
    for (let i = 0; i < BLOCK; i++) {
      const k = i < key.length ? key[i]! : 0;
      this.ipad[i] = k ^ 0x36;
      this.outer[i] = k ^ 0x5c;
    }
  }

  /** `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`. */
  sign(id: string, timestamp: number, body: string | Buffer): string {
    const head = `${id}.${timestamp}.`;
    // UTF-16 code units take at most 3 bytes of UTF-8 each.
    const most = BLOCK + 3 * head.length + (typeof body === 'string' ? 3 * body.length : body.length);
    if (scratch.length < most) scratch = Buffer.allocUnsafe(Math.max(most, 2 * scratch.length));
    this.ipad.copy(scratch, 0);
    let end = BLOCK + scratch.write(head, BLOCK, 'utf8');
    end += typeof body === 'string' ? scratch.write(body, end, 'utf8') : body.copy(scratch, end);
    hash('sha256', scratch.subarray(0, end), 'buffer').copy(this.outer, BLOCK);
    return `v1,${hash('sha256', this.outer, 'base64')}`;
  }
}

/** The prepared key of a `whsec_` secret; throws as `decodeSecret` does. */
export function signingKey(secret: string): SigningKey {
  return new SigningKey(decodeSecret(secret));
}

export function signPayload({ id, timestamp, body, secrets }: SignInput): WebhookHeaders {
  return signWithKeys({ id, timestamp, body, keys: secrets.map(signingKey) });
}

/** `signPayload` with the secrets prepared already (`signingKey`): a sender prepares them once per endpoint, not per webhook. */
export function signWithKeys({ id, timestamp, body, keys }: Omit<SignInput, 'secrets'> & { keys: readonly SigningKey[] }): WebhookHeaders {
  if (keys.length === 0) {
    throw new EthhookError('ETHHOOK_ERR_INVALID_WEBHOOK_SECRET', 'at least one webhook secret is needed to sign');
  }
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new TypeError(`webhook timestamp must be whole seconds, got ${timestamp}`);
  }
  let signature = keys[0]!.sign(id, timestamp, body);
  for (let i = 1; i < keys.length; i++) signature += ` ${keys[i]!.sign(id, timestamp, body)}`;
  return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signature };
}
