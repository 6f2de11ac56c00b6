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
import { createHmac } from 'node:crypto';
import { EthhookError } from '../../runtime/errors.ts';

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
    throw new EthhookError(
      'ETHHOOK_ERR_INVALID_WEBHOOK_SECRET',
      `webhook secret must decode to ${MIN_KEY_BYTES}..${MAX_KEY_BYTES} bytes`,
      { bytes: key.length },
    );
  }
  return key;
}

/** `v1,<base64 HMAC-SHA256>` of one message under one secret. */
export function signatureOf(secret: string, id: string, timestamp: number, body: string | Buffer): string {
  return signatureWithKey(decodeSecret(secret), id, timestamp, body);
}

function signatureWithKey(key: Buffer, id: string, timestamp: number, body: string | Buffer): string {
  const mac = createHmac('sha256', key);
  mac.update(`${id}.${timestamp}.`);
  mac.update(body);
  return `v1,${mac.digest('base64')}`;
}

export function signPayload({ id, timestamp, body, secrets }: SignInput): WebhookHeaders {
  return signWithKeys({ id, timestamp, body, keys: secrets.map(decodeSecret) });
}

/** `signPayload` with the secrets decoded already (`decodeSecret`): a sender decodes them once per endpoint, not per webhook. */
export function signWithKeys({ id, timestamp, body, keys }: Omit<SignInput, 'secrets'> & { keys: readonly Buffer[] }): WebhookHeaders {
  if (keys.length === 0) {
    throw new EthhookError('ETHHOOK_ERR_INVALID_WEBHOOK_SECRET', 'at least one webhook secret is needed to sign');
  }
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new TypeError(`webhook timestamp must be whole seconds, got ${timestamp}`);
  }
  let signature = signatureWithKey(keys[0]!, id, timestamp, body);
  for (let i = 1; i < keys.length; i++) signature += ` ${signatureWithKey(keys[i]!, id, timestamp, body)}`;
  return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signature };
}
