/**
 * A bearer token kept in a file of its own: read (trimmed) when the file exists, else a new random token
 * (32 bytes, base64url) written with mode 0600 and never overwritten — a process that created the file
 * meanwhile wins, and its token is read. Used for the node's generated admin token and the reference
 * governance server's publish token. Errors other than a missing file are thrown as they are.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';

export async function readOrCreateTokenFile(file: string): Promise<{ token: string; created: boolean }> {
  const existing = await readIfPresent(file);
  if (existing !== undefined) return { token: existing, created: false };
  const token = randomBytes(32).toString('base64url');
  try {
    await writeFile(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { token: (await readFile(file, 'utf8')).trim(), created: false };
    throw err;
  }
  return { token, created: true };
}

async function readIfPresent(file: string): Promise<string | undefined> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
