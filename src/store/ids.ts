/**
 * Record ids: a prefix (`ep_`, `sub_`, `sec_`) and 26 lowercase Crockford base32 characters, ULID-style:
 * 48 bits of milliseconds then 80 random bits. Ids sort by creation time, so a listing in key order is
 * a listing in creation order and pages with `after: <last id>`.
 */
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

export function newId(prefix: string, now = Date.now()): string {
  // Built as one char-code list: string concatenation in a loop would leave a rope of 26 nodes per id.
  const codes: number[] = [];
  let t = now;
  for (let i = 0; i < 10; i++) {
    codes.unshift(ALPHABET.charCodeAt(t % 32));
    t = Math.floor(t / 32);
  }
  let bits = 0;
  let acc = 0;
  for (const byte of randomBytes(10)) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      codes.push(ALPHABET.charCodeAt((acc >> bits) & 31));
    }
    acc &= (1 << bits) - 1;
  }
  return prefix + String.fromCharCode(...codes);
}
