/**
 * Ed25519 key files for the governance server: `generateKeyFiles(file)` writes the private key (PEM
 * PKCS#8, mode 0600) to `file` and the public key (PEM SPKI) to `file.pub`, refusing to overwrite
 * either, and returns what a node's configuration needs: the key id (fingerprint) and the public key.
 */
import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { keyIdOf, spkiBase64 } from '../governance-protocol/keys.ts';

export interface GeneratedKey {
  keyId: string;
  privateKeyFile: string;
  publicKeyFile: string;
  /** base64 DER SPKI: what `governance.publicKeys` takes (the PEM file works too). */
  publicKey: string;
}

export async function generateKeyFiles(file: string): Promise<GeneratedKey> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const publicKeyFile = `${file}.pub`;
  await writeFile(file, privateKey.export({ format: 'pem', type: 'pkcs8' }), { flag: 'wx', mode: 0o600 });
  await writeFile(publicKeyFile, publicKey.export({ format: 'pem', type: 'spki' }), { flag: 'wx', mode: 0o644 });
  return { keyId: keyIdOf(publicKey), privateKeyFile: file, publicKeyFile, publicKey: spkiBase64(publicKey) };
}
