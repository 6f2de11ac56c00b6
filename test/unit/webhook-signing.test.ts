// Standard Webhooks signing: the published test vector, and the reference library verifying our output.
import { createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { isEthhookError } from '../../src/runtime/errors.ts';
import { decodeSecret, SigningKey, signPayload } from '../../src/webhook-signing.ts';

// The vector of the reference JavaScript library's test "sign function works"
// (standard-webhooks/standard-webhooks, libraries/javascript/src/webhook.test.ts).
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

const nowSeconds = () => Math.floor(Date.now() / 1000);
const generateSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

describe('the published test vector', () => {
  it('reproduces the expected signature exactly', () => {
    const headers = signPayload({ id: VECTOR.id, timestamp: VECTOR.timestamp, body: VECTOR.body, secrets: [VECTOR.secret] });
    expect(headers).toEqual({
      'webhook-id': VECTOR.id,
      'webhook-timestamp': '1614265330',
      'webhook-signature': VECTOR.signature,
    });
  });

  it('signs a Buffer body exactly like the same string', () => {
    const headers = signPayload({ ...VECTOR, body: Buffer.from(VECTOR.body), secrets: [VECTOR.secret] });
    expect(headers['webhook-signature']).toBe(VECTOR.signature);
  });
});

describe('the standardwebhooks library verifies what we sign', () => {
  it('for arbitrary ids, bodies and secrets', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
        fc.string({ unit: 'grapheme', maxLength: 300 }),
        fc.uint8Array({ minLength: 24, maxLength: 64 }),
        (id, text, key) => {
          const secret = `whsec_${Buffer.from(key).toString('base64')}`;
          const body = JSON.stringify({ text });
          const headers = signPayload({ id, timestamp: nowSeconds(), body, secrets: [secret] });
          expect(new Webhook(secret).verify(body, { ...headers })).toEqual({ text });
        },
      ),
      { numRuns: 200 },
    );
  });

  // SigningKey computes HMAC-SHA256 from the padded key blocks in a reused buffer: it must equal
  // node's own HMAC for any key of 1..64 bytes and any body, string or bytes, small or larger than
  // the buffer it starts with (multi-byte text included).
  it('SigningKey equals createHmac for any key, string or bytes, of any size', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.oneof(fc.string({ unit: 'grapheme', maxLength: 200 }), fc.string({ unit: 'grapheme', minLength: 6000, maxLength: 9000 })),
        fc.boolean(),
        (key, text, asBytes) => {
          const body = asBytes ? Buffer.from(text) : text;
          const expected = createHmac('sha256', key).update(`msg_1.1700000000.`).update(body).digest('base64');
          expect(new SigningKey(Buffer.from(key)).sign('msg_1', 1_700_000_000, body)).toBe(`v1,${expected}`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('during a rotation, a receiver holding either secret verifies', () => {
    const oldSecret = generateSecret();
    const newSecret = generateSecret();
    const body = '{"type":"log.created"}';
    const headers = signPayload({ id: 'evt_1', timestamp: nowSeconds(), body, secrets: [newSecret, oldSecret] });
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(() => new Webhook(oldSecret).verify(body, { ...headers })).not.toThrow();
    expect(() => new Webhook(newSecret).verify(body, { ...headers })).not.toThrow();
    expect(() => new Webhook(generateSecret()).verify(body, { ...headers })).toThrow(/No matching signature/);
  });

  it('a tampered body does not verify', () => {
    const secret = generateSecret();
    const headers = signPayload({ id: 'evt_2', timestamp: nowSeconds(), body: '{"a":1}', secrets: [secret] });
    expect(() => new Webhook(secret).verify('{"a":2}', { ...headers })).toThrow();
  });
});

describe('secrets', () => {
  it('decodes to the key bytes, 24 to 64 of them', () => {
    expect(decodeSecret(VECTOR.secret)).toEqual(Buffer.from('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64'));
    expect(decodeSecret(generateSecret())).toHaveLength(32);
  });

  it('refuses malformed secrets with a coded error that does not echo the secret', () => {
    for (const bad of [
      '',
      'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
      'whsec_',
      'whsec_not base64!!',
      'whsec_c2hvcnQ=',
      `whsec_${'A'.repeat(88)}`,
    ]) {
      let caught: unknown;
      try {
        decodeSecret(bad);
      } catch (err) {
        caught = err;
      }
      expect(isEthhookError(caught, 'ETHHOOK_ERR_INVALID_WEBHOOK_SECRET'), bad).toBe(true);
      if (bad.length > 8) expect((caught as Error).message).not.toContain(bad.slice(6));
    }
  });

  it('signing needs at least one secret and whole-second timestamps', () => {
    expect(() => signPayload({ id: 'x', timestamp: 1, body: '', secrets: [] })).toThrow(/at least one/);
    expect(() => signPayload({ id: 'x', timestamp: 1.5, body: '', secrets: [VECTOR.secret] })).toThrow(/whole seconds/);
  });
});
