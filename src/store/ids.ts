/**
 * Record ids: a prefix (`ep_`, `sub_`, `sec_`) and 26 lowercase Crockford base32 characters, ULID-style:
 * 48 bits of milliseconds then 80 random bits. Ids sort by creation time, so a listing in key order is
 * a listing in creation order and pages with `after: <last id>`.
 */
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

export function newId(prefix: string, now = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  const rand = randomBytes(10);
  let bits = 0;
  let acc = 0;
  let tail = '';
  for (const byte of rand) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      tail += ALPHABET[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return `${prefix}${time}${tail}`;
}

export const ID_BODY = '[0-9a-hjkmnp-tv-z]{26}';
