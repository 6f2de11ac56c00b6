/**
 * The generated admin token of a node configured without any (`admin.tokens: []`, the dev default).
 *
 * The node never runs its admin API unauthenticated. Instead it creates one `operate` token in
 * `<dataDir>/admin-token` (mode 0600) the first time, reuses that file on later starts (so scripts
 * and a Prometheus config keep working across restarts), and logs the file's path and the token's
 * fingerprint, never the token. Operators read it with `cat data/admin-token`.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AdminTokenConfig } from '../../config/schema.ts';
import { EthhookError } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log.ts';
import { tokenFingerprint } from './auth.ts';

export const ADMIN_TOKEN_FILE = 'admin-token';
const VALID_TOKEN = /^[\x21-\x7e]{16,}$/;

export async function ensureDevToken(dataDir: string, log: Logger): Promise<AdminTokenConfig> {
  const tokenFile = join(dataDir, ADMIN_TOKEN_FILE);
  const existing = await readTokenFile(tokenFile);
  if (existing !== undefined) {
    if (!VALID_TOKEN.test(existing)) {
      throw new EthhookError(
        'ETHHOOK_ERR_ADMIN_TOKEN_FILE',
        `${tokenFile} does not hold a token (16+ visible ASCII characters); delete it to generate a new one`,
        { tokenFile },
      );
    }
    log.info({ tokenFile, fingerprint: tokenFingerprint(existing) }, 'no admin tokens configured: using the generated operate token');
    return { token: existing, role: 'operate' };
  }
  const token = randomBytes(32).toString('base64url');
  try {
    await mkdir(dataDir, { recursive: true });
    await writeFile(tokenFile, `${token}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    throw new EthhookError(
      'ETHHOOK_ERR_ADMIN_TOKEN_FILE',
      `cannot write ${tokenFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      { tokenFile },
      { cause: err },
    );
  }
  log.warn(
    { tokenFile, fingerprint: tokenFingerprint(token) },
    'no admin tokens configured: generated an operate token (read it from the token file)',
  );
  return { token, role: 'operate' };
}

async function readTokenFile(tokenFile: string): Promise<string | undefined> {
  try {
    return (await readFile(tokenFile, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new EthhookError(
      'ETHHOOK_ERR_ADMIN_TOKEN_FILE',
      `cannot read ${tokenFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      { tokenFile },
      { cause: err },
    );
  }
}
