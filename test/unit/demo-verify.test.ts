// verifySignature (src/demo/verify.ts), the demo receiver's check, against the Standard Webhooks
// reference library (npm standardwebhooks) in both directions, and against tampering of every part.
import fc from 'fast-check';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { signPayload } from '../../src/webhook-signing.ts';
import { verifySignature } from '../../src/demo/verify.ts';
import { generateWebhookSecret } from '../../src/store/secrets.ts';

const NOW = 1_700_000_000;
const secret = generateWebhookSecret();
const other = generateWebhookSecret();

const headersOf = (id: string, timestamp: number, signature: string) => ({
  'webhook-id': id,
  'webhook-timestamp': String(timestamp),
  'webhook-signature': signature,
});

describe('agrees with the reference library', () => {
  it('verifies what standardwebhooks signs, and standardwebhooks verifies what it accepts', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40 }), fc.string({ maxLength: 500 }), (id, body) => {
        const now = Math.floor(Date.now() / 1000);
        const signature = new Webhook(secret).sign(id, new Date(now * 1000), body);
        const headers = headersOf(id, now, signature);
        expect(verifySignature({ headers, body, secrets: [secret] })).toEqual({ ok: true, id });
        expect(() => new Webhook(secret).verify(body, headers, { jsonParse: false })).not.toThrow();
      }),
      { numRuns: 200 },
    );
  });

  it('refuses what the library refuses: another secret, another body, another id', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 40 }),
        fc.string({ maxLength: 200 }),
        fc.string({ minLength: 1, maxLength: 5 }),
        (id, body, extra) => {
          const { 'webhook-signature': signature } = signPayload({ id, timestamp: NOW, body, secrets: [secret] });
          const verify = (h: Record<string, string>, b: string, secrets = [secret]) =>
            verifySignature({ headers: h, body: b, secrets, now: NOW }).ok;
          expect(verify(headersOf(id, NOW, signature), body)).toBe(true);
          expect(verify(headersOf(id, NOW, signature), body, [other])).toBe(false);
          expect(verify(headersOf(id, NOW, signature), body + extra)).toBe(false);
          expect(verify(headersOf(id + extra, NOW, signature), body)).toBe(false);
          expect(verify(headersOf(id, NOW + 1, signature), body)).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('the rules a receiver applies', () => {
  const body = '{"type":"log.created"}';
  const signed = (secrets: string[], timestamp = NOW) => ({ ...signPayload({ id: 'msg_1', timestamp, body, secrets }) });

  it('accepts any of several signatures (a secret rotation) under any known secret', () => {
    const headers = signed([other, secret]);
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(verifySignature({ headers, body, secrets: [secret], now: NOW }).ok).toBe(true);
    expect(verifySignature({ headers, body, secrets: [other], now: NOW }).ok).toBe(true);
    expect(verifySignature({ headers: signed([secret]), body, secrets: [other, secret], now: NOW }).ok).toBe(true);
  });

  it('refuses a timestamp outside the tolerance, either way, and accepts one inside', () => {
    const headers = signed([secret]);
    expect(verifySignature({ headers, body, secrets: [secret], now: NOW + 300 }).ok).toBe(true);
    expect(verifySignature({ headers, body, secrets: [secret], now: NOW + 301 })).toEqual({
      ok: false,
      reason: 'webhook-timestamp is more than 300 s away from now',
    });
    expect(verifySignature({ headers, body, secrets: [secret], now: NOW - 301 }).ok).toBe(false);
    expect(verifySignature({ headers, body, secrets: [secret], now: NOW + 1000, toleranceSec: 1000 }).ok).toBe(true);
  });

  it('refuses missing headers, a malformed timestamp, and signatures of another version', () => {
    const headers = signed([secret]);
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const) {
      const { [name]: _gone, ...rest } = headers;
      expect(verifySignature({ headers: rest, body, secrets: [secret], now: NOW }).ok, name).toBe(false);
    }
    expect(verifySignature({ headers: { ...headers, 'webhook-timestamp': '1.7e9' }, body, secrets: [secret], now: NOW }).ok).toBe(false);
    const v2 = headers['webhook-signature'].replace('v1,', 'v2,');
    expect(verifySignature({ headers: { ...headers, 'webhook-signature': v2 }, body, secrets: [secret], now: NOW })).toEqual({
      ok: false,
      reason: 'no v1 signature',
    });
  });

  it('never throws on arbitrary header values', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom('webhook-id', 'webhook-timestamp', 'webhook-signature'), fc.string()),
        fc.string(),
        (headers, b) => {
          expect(verifySignature({ headers, body: b, secrets: [secret], now: NOW }).ok).toBe(false);
        },
      ),
    );
  });
});
