/**
 * Ed25519 keys of the governance stream (node:crypto).
 *
 * - Public keys are accepted as PEM (`-----BEGIN PUBLIC KEY-----`) or as base64 of the DER SPKI
 *   structure (the PEM body without its armour). Private keys as PEM PKCS#8 or base64 DER PKCS#8.
 * - A key's id is derived from the key itself, never chosen: `keyIdOf(key)` is the lowercase hex of the
 *   first 16 bytes of SHA-256 over the 32-byte raw public key. A node can therefore name the keys of its
 *   configuration without any extra setting, and a frame cannot claim a key under another name.
 * - Signatures are 64 bytes, carried as standard base64 (88 characters, padded).
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { EthhookError } from '../runtime/errors.ts';
import { signedBytes } from './canonical.ts';

export interface TrustedKey {
  keyId: string;
  /** base64 DER SPKI: the form keys are persisted and announced in. */
  publicKey: string;
}

export const KEY_ID_PATTERN = /^[0-9a-f]{32}$/;

const keyError = (message: string, context: Record<string, unknown> = {}) =>
  new EthhookError('ETHHOOK_ERR_GOVERNANCE_KEY_INVALID', message, context);

function decodeKey(text: string, kind: 'public' | 'private'): KeyObject {
  const trimmed = text.trim();
  const pem = trimmed.startsWith('-----BEGIN');
  try {
    if (kind === 'public') {
      return pem ? createPublicKey(trimmed) : createPublicKey({ key: Buffer.from(trimmed, 'base64'), format: 'der', type: 'spki' });
    }
    return pem ? createPrivateKey(trimmed) : createPrivateKey({ key: Buffer.from(trimmed, 'base64'), format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw keyError(`not a ${kind} key in PEM or base64 DER: ${(err as Error).message}`);
  }
}

export function parsePublicKey(text: string): KeyObject {
  const key = decodeKey(text, 'public');
  if (key.asymmetricKeyType !== 'ed25519') throw keyError(`expected an Ed25519 public key, got ${key.asymmetricKeyType}`);
  return key;
}

export function parsePrivateKey(text: string): KeyObject {
  const key = decodeKey(text, 'private');
  if (key.asymmetricKeyType !== 'ed25519') throw keyError(`expected an Ed25519 private key, got ${key.asymmetricKeyType}`);
  return key;
}

/** The raw 32-byte public key: the last 32 bytes of the 44-byte Ed25519 SPKI DER. */
function rawPublicKey(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32);
}

export function keyIdOf(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256').update(rawPublicKey(pub)).digest('hex').slice(0, 32);
}

export function spkiBase64(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ format: 'der', type: 'spki' }).toString('base64');
}

export function trustedKey(text: string): TrustedKey {
  const key = parsePublicKey(text);
  return { keyId: keyIdOf(key), publicKey: spkiBase64(key) };
}

export function signMessage(privateKey: KeyObject, seq: number, type: string, payload: unknown): string {
  return sign(null, signedBytes(seq, type, payload), privateKey).toString('base64');
}

/** False (never a throw) for a signature that does not verify or is not 64 bytes. */
export function verifyMessage(publicKey: KeyObject, seq: number, type: string, payload: unknown, signature: string): boolean {
  const sig = Buffer.from(signature, 'base64');
  if (sig.length !== 64) return false;
  try {
    return verify(null, signedBytes(seq, type, payload), publicKey, sig);
  } catch {
    return false;
  }
}
