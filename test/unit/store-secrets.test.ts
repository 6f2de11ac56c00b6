// Webhook secrets and the master key: format, AES-256-GCM sealing, loading from env or a dev key file.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { isEthhookError } from '../../src/runtime/errors.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { generateWebhookSecret, isWebhookSecret, loadMasterKey, parseMasterKey, SecretCipher } from '../../src/store/secrets.ts';

function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: 'debug',
    destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
  });
  return { logger, lines };
}

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'ethhook-secrets-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('webhook secret format', () => {
  it('generates whsec_ + base64 of 24 bytes, and accepts only canonical base64 of 24..64 bytes', () => {
    const s = generateWebhookSecret();
    expect(s).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    expect(Buffer.from(s.slice(6), 'base64')).toHaveLength(24);
    expect(isWebhookSecret(s)).toBe(true);
    expect(isWebhookSecret(`whsec_${randomBytes(64).toString('base64')}`)).toBe(true);
    expect(isWebhookSecret(`whsec_${randomBytes(16).toString('base64')}`)).toBe(false);
    expect(isWebhookSecret(`whsec_${randomBytes(65).toString('base64')}`)).toBe(false);
    expect(isWebhookSecret(randomBytes(24).toString('base64'))).toBe(false);
    expect(isWebhookSecret('whsec_not base64!')).toBe(false);
  });
});

describe('master key parsing', () => {
  it('accepts 32 bytes as hex, base64 and base64url, and the same bytes come back', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
        const key = Buffer.from(bytes);
        for (const text of [
          key.toString('hex'),
          key.toString('base64'),
          key.toString('base64url'),
          ` ${key.toString('hex').toUpperCase()}\n`,
        ]) {
          expect(parseMasterKey(text, 'test').equals(key)).toBe(true);
        }
      }),
    );
  });

  it('refuses other lengths and garbage with ETHHOOK_ERR_MASTER_KEY_INVALID, without echoing the value', () => {
    for (const text of ['', 'abc', randomBytes(31).toString('hex'), randomBytes(33).toString('base64'), 'z'.repeat(64)]) {
      try {
        parseMasterKey(text, 'ETHHOOK_MASTER_KEY');
        expect.unreachable();
      } catch (err) {
        expect(isEthhookError(err, 'ETHHOOK_ERR_MASTER_KEY_INVALID')).toBe(true);
        if (text.length > 3) expect(String((err as Error).message)).not.toContain(text);
      }
    }
  });
});

describe('loadMasterKey', () => {
  it('uses ETHHOOK_MASTER_KEY when set and writes no file', async () => {
    const dir = await tempDir();
    const key = randomBytes(32);
    const { logger } = capturingLogger();
    const loaded = await loadMasterKey({ env: { ETHHOOK_MASTER_KEY: key.toString('base64') }, dataDir: dir, logger });
    expect(loaded.equals(key)).toBe(true);
    await expect(stat(join(dir, 'master.key'))).rejects.toThrow();
  });

  it('rejects an invalid ETHHOOK_MASTER_KEY instead of falling back to a file', async () => {
    const dir = await tempDir();
    const { logger } = capturingLogger();
    await expect(loadMasterKey({ env: { ETHHOOK_MASTER_KEY: 'short' }, dataDir: dir, logger })).rejects.toMatchObject({
      code: 'ETHHOOK_ERR_MASTER_KEY_INVALID',
    });
  });

  it('generates a dev key file with mode 0600 and a loud warning, then reuses it', async () => {
    const dir = join(await tempDir(), 'nested', 'data');
    const first = capturingLogger();
    const key = await loadMasterKey({ env: {}, dataDir: dir, logger: first.logger });
    expect(key).toHaveLength(32);
    const file = join(dir, 'master.key');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(first.lines.some((l) => l.level === 40 && String(l.msg).includes('NO ETHHOOK_MASTER_KEY SET'))).toBe(true);
    expect(JSON.stringify(first.lines)).not.toContain(key.toString('base64'));

    const second = capturingLogger();
    const again = await loadMasterKey({ env: {}, dataDir: dir, logger: second.logger });
    expect(again.equals(key)).toBe(true);
    expect((await readFile(file, 'utf8')).trim()).toBe(key.toString('base64'));
  });

  it('warns when an existing key file is readable by others', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'master.key'), randomBytes(32).toString('hex'), { mode: 0o644 });
    const { logger, lines } = capturingLogger();
    await loadMasterKey({ env: {}, dataDir: dir, logger });
    expect(lines.some((l) => String(l.msg).includes('readable by other users'))).toBe(true);
  });

  it('refuses to generate when generation is disabled (production)', async () => {
    const dir = await tempDir();
    const { logger } = capturingLogger();
    await expect(loadMasterKey({ env: {}, dataDir: dir, logger, allowGenerate: false })).rejects.toMatchObject({
      code: 'ETHHOOK_ERR_MASTER_KEY_MISSING',
    });
  });
});

describe('SecretCipher (AES-256-GCM)', () => {
  it('round-trips any string under the same key and identity, with a fresh IV each time', () => {
    const cipher = new SecretCipher(randomBytes(32));
    fc.assert(
      fc.property(fc.string(), fc.string({ minLength: 1 }), (plain, identity) => {
        const a = cipher.seal(plain, identity);
        const b = cipher.seal(plain, identity);
        expect(a).not.toBe(b);
        expect(a).toMatch(/^v1\./);
        expect(cipher.open(a, identity)).toBe(plain);
      }),
    );
  });

  it('fails with ETHHOOK_ERR_SECRET_DECRYPT under a wrong key, another identity, or a tampered record', () => {
    // One base64 character in the middle of the record changed to another: always different bits.
    // (The first version changed the next-to-last one to 'A' or 'B' by what the LAST one was, which
    // left the record as it was whenever the next-to-last already was that letter: 1 run in ~64.)
    const tamper = (sealed: string): string => {
      const at = Math.floor(sealed.length / 2);
      return `${sealed.slice(0, at)}${sealed[at] === 'A' ? 'B' : 'A'}${sealed.slice(at + 1)}`;
    };
    const secret = generateWebhookSecret();
    const cipher = new SecretCipher(randomBytes(32));
    const sealed = cipher.seal(secret, 'endpoint:ep_a/secret:sec_1');
    expect(sealed).not.toContain(secret.slice(6));
    const attempts = [
      () => new SecretCipher(randomBytes(32)).open(sealed, 'endpoint:ep_a/secret:sec_1'),
      () => cipher.open(sealed, 'endpoint:ep_b/secret:sec_1'),
      () => cipher.open(tamper(sealed), 'endpoint:ep_a/secret:sec_1'),
      () => cipher.open('v1.AAAA', 'endpoint:ep_a/secret:sec_1'),
      () => cipher.open('garbage', 'endpoint:ep_a/secret:sec_1'),
    ];
    for (const attempt of attempts) expect(attempt).toThrow(expect.objectContaining({ code: 'ETHHOOK_ERR_SECRET_DECRYPT' }));
  });

  it('refuses a key that is not 32 bytes', () => {
    expect(() => new SecretCipher(randomBytes(16))).toThrow(expect.objectContaining({ code: 'ETHHOOK_ERR_MASTER_KEY_INVALID' }));
  });
});
