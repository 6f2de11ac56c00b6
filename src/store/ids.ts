/**
 * Record ids: a prefix (`ep_`, `sub_`, `sec_`) and 26 lowercase Crockford base32 characters, ULID-style:
 * 48 bits of milliseconds then 80 random bits. Ids sort by creation time, so a listing in key order is
 * a listing in creation order and pages with `after: <last id>`. Within one millisecond (or if the
 * clock steps back) the previous random part is incremented instead (ULID's monotonic mode), so ids
 * made by this process keep their creation order.
 */
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

let lastTime = -1;
let lastRandom = Buffer.alloc(10);

export function newId(prefix: string, now = Date.now()): string {
  let time = now;
  if (time <= lastTime) {
    time = lastTime;
    increment(lastRandom);
  } else {
    lastTime = time;
    lastRandom = randomBytes(10);
  }
  // Built as one char-code list: string concatenation in a loop would leave a rope of 26 nodes per id.
  const codes: number[] = [];
  let t = time;
  for (let i = 0; i < 10; i++) {
    codes.unshift(ALPHABET.charCodeAt(t % 32));
    t = Math.floor(t / 32);
  }
  let bits = 0;
  let acc = 0;
  for (const byte of lastRandom) {
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

/** Adds one to a big-endian number (wrapping after 2^80 ids in one millisecond, which cannot happen). */
function increment(bytes: Buffer): void {
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 255) {
      bytes[i]!++;
      return;
    }
    bytes[i] = 0;
  }
}
