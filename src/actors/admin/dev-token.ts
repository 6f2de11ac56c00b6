/**
 * The generated admin token of a node configured without any (`admin.tokens: []`, the dev default).
 *
 * The node never runs its admin API unauthenticated. Instead it creates one `operate` token in
 * `<dataDir>/admin-token` (mode 0600) the first time, reuses that file on later starts (so scripts
 * and a Prometheus config keep working across restarts), and logs the file's path and the token's
 * fingerprint, never the token. Operators read it with `cat data/admin-token`.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { AdminTokenConfig } from '../../config/schema.ts';
import { EthhookError } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log.ts';
import { readOrCreateTokenFile } from '../../token-file.ts';
import { tokenFingerprint } from './auth.ts';

export const ADMIN_TOKEN_FILE = 'admin-token';
const VALID_TOKEN = /^[\x21-\x7e]{16,}$/;

export async function ensureDevToken(dataDir: string, log: Logger): Promise<AdminTokenConfig> {
  const tokenFile = join(dataDir, ADMIN_TOKEN_FILE);
  let read: { token: string; created: boolean };
  try {
    await mkdir(dataDir, { recursive: true });
    read = await readOrCreateTokenFile(tokenFile);
  } catch (err) {
    throw new EthhookError(
      'ETHHOOK_ERR_ADMIN_TOKEN_FILE',
      `cannot read or write ${tokenFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      { tokenFile },
      { cause: err },
    );
  }
  const { token, created } = read;
  if (created) {
    log.warn(
      { tokenFile, fingerprint: tokenFingerprint(token) },
      'no admin tokens configured: generated an operate token (read it from the token file)',
    );
    return { token, role: 'operate' };
  }
  if (!VALID_TOKEN.test(token)) {
    throw new EthhookError(
      'ETHHOOK_ERR_ADMIN_TOKEN_FILE',
      `${tokenFile} does not hold a token (16+ visible ASCII characters); delete it to generate a new one`,
      { tokenFile },
    );
  }
  log.info({ tokenFile, fingerprint: tokenFingerprint(token) }, 'no admin tokens configured: using the generated operate token');
  return { token, role: 'operate' };
}
