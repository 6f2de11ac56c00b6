/**
 * Standard Webhooks verification (the receiver's side of src/webhook-signing.ts), as a
 * receiver should do it:
 *
 * - the three headers `webhook-id`, `webhook-timestamp`, `webhook-signature` must be present;
 * - the timestamp (integer seconds) must be within `toleranceSec` (default 300, as the reference
 *   libraries) of `now`, in either direction, so a captured request cannot be replayed later;
 * - `webhook-signature` is a space-separated list of `v1,<base64>` (several during a secret rotation;
 *   other versions are ignored); the request is genuine if any of them equals the HMAC-SHA256 of
 *   `${id}.${timestamp}.${body}` under any of `secrets`, compared in constant time.
 *
 * Returns `{ ok: true }` or `{ ok: false, reason }`; never throws for what a request carries (a bad
 * secret given by the caller does throw, ETHHOOK_ERR_INVALID_WEBHOOK_SECRET).
 */
import { timingSafeEqual } from 'node:crypto';
import { signatureOf } from '../webhook-signing.ts';

export const DEFAULT_TOLERANCE_SEC = 300;

export interface VerifyInput {
  /** Request headers (node's IncomingHttpHeaders or a plain record; names in lower case). */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The body exactly as received. */
  body: string | Buffer;
  /** The endpoint's secrets (`whsec_…`); a signature under any of them verifies. */
  secrets: readonly string[];
  /** Seconds since the epoch. Default: now. */
  now?: number;
  toleranceSec?: number;
}

export type VerifyResult = { ok: true; id: string } | { ok: false; reason: string };

export function verifySignature(input: VerifyInput): VerifyResult {
  const id = header(input.headers, 'webhook-id');
  const timestamp = header(input.headers, 'webhook-timestamp');
  const signature = header(input.headers, 'webhook-signature');
  if (id === undefined || timestamp === undefined || signature === undefined) {
    return { ok: false, reason: 'missing webhook-id, webhook-timestamp or webhook-signature' };
  }
  if (!/^\d{1,15}$/.test(timestamp)) return { ok: false, reason: 'webhook-timestamp is not integer seconds' };
  const seconds = Number(timestamp);
  const now = input.now ?? Math.floor(Date.now() / 1000);
  const tolerance = input.toleranceSec ?? DEFAULT_TOLERANCE_SEC;
  if (Math.abs(now - seconds) > tolerance) return { ok: false, reason: `webhook-timestamp is more than ${tolerance} s away from now` };

  const offered = signature
    .split(' ')
    .filter((s) => s.startsWith('v1,'))
    .map((s) => Buffer.from(s));
  if (offered.length === 0) return { ok: false, reason: 'no v1 signature' };
  for (const secret of input.secrets) {
    const expected = Buffer.from(signatureOf(secret, id, seconds, input.body));
    if (offered.some((o) => o.length === expected.length && timingSafeEqual(o, expected))) return { ok: true, id };
  }
  return { ok: false, reason: 'no signature matches' };
}

function header(headers: VerifyInput['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
