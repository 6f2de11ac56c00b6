/**
 * Webhook secrets and their encryption at rest.
 *
 * - A webhook secret is `whsec_` + base64 of 24 random bytes (the Standard Webhooks format). Secrets
 *   supplied from outside (a governance message carrying a cluster-wide secret) may hold 24 to 64 bytes.
 * - At rest a secret is sealed with AES-256-GCM under the node's 32-byte master key, as
 *   `v1.<base64url(iv[12] | tag[16] | ciphertext)>`. The additional authenticated data is the record's
 *   identity (endpoint id + secret id), so a sealed secret copied onto another record does not open.
 * - The master key: `ETHHOOK_MASTER_KEY` (32 bytes, as 64 hex characters or base64). Without it, and
 *   when generation is allowed (the dev default), `<dataDir>/master.key` is used, created on first start
 *   with mode 0600 and a loud warning: losing that file makes every stored secret unreadable, and a key
 *   on the same disk as the data protects nothing against a stolen disk. Production passes
 *   `allowGenerate: false` and must set the environment variable.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EthhookError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/log.ts';

export const MASTER_KEY_ENV = 'ETHHOOK_MASTER_KEY';
export const MASTER_KEY_FILE = 'master.key';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const SEALED_PREFIX = 'v1.';

export interface LoadMasterKeyOptions {
  env: Readonly<Record<string, string | undefined>>;
  dataDir: string;
  logger: Logger;
  /** Generate and store a key in `<dataDir>/master.key` when the environment has none. Default true (dev). */
  allowGenerate?: boolean;
}

export async function loadMasterKey(options: LoadMasterKeyOptions): Promise<Buffer> {
  const { env, dataDir, logger, allowGenerate = true } = options;
  const fromEnv = masterKeyFromEnv(env, allowGenerate);
  if (fromEnv !== undefined) {
    logger.info({ source: 'env' }, 'master key loaded from ETHHOOK_MASTER_KEY');
    return fromEnv;
  }
  const file = join(dataDir, MASTER_KEY_FILE);
  const existing = await readKeyFile(file, logger);
  if (existing) return existing;

  await mkdir(dataDir, { recursive: true });
  const key = randomBytes(KEY_BYTES);
  // Written whole and synced under a temporary name, then linked into place: a kill between creating
  // the file and writing it would otherwise leave an empty key file that stops every later start.
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await writeSynced(tmp, `${key.toString('base64')}\n`);
    await link(tmp, file);
  } catch (err) {
    // Another process created it between our read and our link: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return (await readKeyFile(file, logger))!;
    throw err;
  } finally {
    await rm(tmp, { force: true });
  }
  logger.warn(
    { source: 'generated', file },
    `!!! NO ${MASTER_KEY_ENV} SET: generated a development master key in ${file}. Webhook secrets are ` +
      `encrypted with it; keep that file or lose them. Set ${MASTER_KEY_ENV} (32 bytes, hex or base64) in production. !!!`,
  );
  return key;
}

/**
 * The key of `ETHHOOK_MASTER_KEY`, or undefined when it is unset and a key file may be used. Throws
 * ETHHOOK_ERR_MASTER_KEY_INVALID for a value that is not a key, and ETHHOOK_ERR_MASTER_KEY_MISSING
 * when it is unset and generating is not allowed. Needs nothing but the environment, so
 * `ethhook config check` asks it too (src/start-checks.ts).
 */
export function masterKeyFromEnv(env: Readonly<Record<string, string | undefined>>, allowGenerate: boolean): Buffer | undefined {
  const fromEnv = env[MASTER_KEY_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== '') return parseMasterKey(fromEnv, MASTER_KEY_ENV);
  if (!allowGenerate) {
    throw new EthhookError(
      'ETHHOOK_ERR_MASTER_KEY_MISSING',
      `${MASTER_KEY_ENV} is not set and generating a key is disabled (security.generateMasterKey: false)`,
      { field: 'security.generateMasterKey' },
    );
  }
  return undefined;
}

async function writeSynced(file: string, text: string): Promise<void> {
  const handle = await open(file, 'w', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function readKeyFile(file: string, logger: Logger): Promise<Buffer | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const key = parseMasterKey(text, file);
  const mode = (await stat(file)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    logger.warn({ file, mode: mode.toString(8) }, 'master key file is readable by other users; chmod 600 it');
  }
  logger.warn({ source: 'file', file }, `using the development master key from ${file}; set ${MASTER_KEY_ENV} in production`);
  return key;
}

/** 64 hex characters, or base64 / base64url of exactly 32 bytes. `source` names where it came from in errors. */
export function parseMasterKey(text: string, source: string): Buffer {
  const s = text.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(s)) key = Buffer.from(s, 'hex');
  else if (/^[A-Za-z0-9+/]{43}=?$/.test(s)) key = Buffer.from(s, 'base64');
  else if (/^[A-Za-z0-9_-]{43}$/.test(s)) key = Buffer.from(s, 'base64url');
  if (!key || key.length !== KEY_BYTES) {
    throw new EthhookError('ETHHOOK_ERR_MASTER_KEY_INVALID', `master key from ${source} is not 32 bytes of hex or base64`, { source });
  }
  return key;
}

/** A new webhook secret: `whsec_` + base64 of 24 random bytes. */
export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/** True for `whsec_` + canonical base64 of 24 to 64 bytes. */
export function isWebhookSecret(secret: string): boolean {
  const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(secret);
  if (!m) return false;
  const bytes = Buffer.from(m[1]!, 'base64');
  return bytes.length >= 24 && bytes.length <= 64 && bytes.toString('base64') === m[1];
}

/** AES-256-GCM sealing of small strings under the master key, bound to an identity (the AAD). */
export class SecretCipher {
  private readonly key: Buffer;

  constructor(masterKey: Buffer) {
    if (masterKey.length !== KEY_BYTES) {
      throw new EthhookError('ETHHOOK_ERR_MASTER_KEY_INVALID', 'master key must be 32 bytes', { source: 'SecretCipher' });
    }
    this.key = Buffer.from(masterKey);
  }

  seal(plaintext: string, identity: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(identity, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return SEALED_PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
  }

  open(sealed: string, identity: string): string {
    const raw = sealed.startsWith(SEALED_PREFIX) ? Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64url') : undefined;
    if (!raw || raw.length < IV_BYTES + TAG_BYTES) {
      throw new EthhookError('ETHHOOK_ERR_SECRET_DECRYPT', 'sealed secret is malformed', { identity });
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(identity, 'utf8'));
      decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch (err) {
      throw new EthhookError(
        'ETHHOOK_ERR_SECRET_DECRYPT',
        'sealed secret does not open with this master key',
        { identity },
        { cause: err },
      );
    }
  }
}
