// Starting the Admin actor: the generated dev token when none is configured, and a port already taken.
import { mkdtempSync, rmSync, statSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { createAdminBehaviour } from '../../src/actors/admin/behaviour.ts';
import { ADMIN_TOKEN_FILE, ensureDevToken } from '../../src/actors/admin/dev-token.ts';
import { defaultConfig, type AdminConfig } from '../../src/config/schema.ts';
import { isEthhookError } from '../../src/runtime/errors.ts';
import { createLogger } from '../../src/runtime/log.ts';
import type { ActorSystem } from '../../src/runtime/system.ts';
import type { SupervisorSpec } from '../../src/runtime/types.ts';
import { startSystem } from '../../src/supervision/index.ts';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ethhook-admin-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function capture() {
  const raw: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void raw.push(line) } });
  return { raw, logger, lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

function tree(admin: AdminConfig, dataDir: string | undefined, getSystem: () => ActorSystem | undefined): SupervisorSpec {
  return {
    kind: 'supervisor',
    name: 'root',
    strategy: 'one-for-one',
    intensity: { maxRestarts: 0, withinMs: 1_000 },
    children: [
      { kind: 'worker', name: 'echo', behaviour: () => ({ receive: (_m, ctx) => ctx.incarnation }) },
      {
        kind: 'worker',
        name: 'admin',
        behaviour: () => createAdminBehaviour({ system: getSystem, config: admin, registry: new Registry(), dataDir }),
      },
    ],
  };
}

async function portOf(system: ActorSystem): Promise<number> {
  const address = await system.lookup('admin')!.ask<AddressInfo>({ type: 'address' });
  return address.port;
}

describe('no tokens configured', () => {
  it('generates an operate token into <dataDir>/admin-token (0600), logs it masked, and reuses it after a restart', async () => {
    const dataDir = join(tempDir(), 'data');
    const { raw, logger, lines } = capture();
    const system: ActorSystem = await startSystem(
      tree({ ...defaultConfig().admin, port: 0, tokens: [] }, dataDir, () => system),
      { logger },
    );
    try {
      const tokenFile = join(dataDir, ADMIN_TOKEN_FILE);
      expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
      const token = readFileSync(tokenFile, 'utf8').trim();
      expect(token.length).toBeGreaterThanOrEqual(32);

      const restart = async () =>
        fetch(`http://127.0.0.1:${await portOf(system)}/admin/actors/restart`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ actor: 'echo' }),
        });
      expect((await restart()).status).toBe(200);

      await system.restartActor('admin');
      expect(readFileSync(tokenFile, 'utf8').trim()).toBe(token);
      expect((await restart()).status).toBe(200);

      const notes = lines().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('no admin tokens configured'));
      expect(notes.map((l) => l.msg)).toEqual([
        expect.stringContaining('generated an operate token'),
        expect.stringContaining('using the generated operate token'),
      ]);
      expect(notes[0]).toMatchObject({ tokenFile, fingerprint: expect.stringMatching(/^[0-9a-f]{8}$/) });
      for (const line of raw) expect(line).not.toContain(token);
    } finally {
      await system.shutdown('test over', 5_000);
    }
  });

  it('refuses a token file that does not hold a token', async () => {
    const dataDir = tempDir();
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, ADMIN_TOKEN_FILE), 'short\n');
    await expect(ensureDevToken(dataDir, capture().logger)).rejects.toSatisfy((err) => isEthhookError(err, 'ETHHOOK_ERR_ADMIN_TOKEN_FILE'));
  });
});

describe('listening', () => {
  let blocker: Server | undefined;
  afterAll(() => new Promise<void>((resolve) => (blocker ? blocker.close(() => resolve()) : resolve())));

  it('a port already in use fails the start with ETHHOOK_ERR_ADMIN_LISTEN', async () => {
    blocker = createServer();
    await new Promise<void>((resolve) => blocker!.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as AddressInfo).port;
    const config = { ...defaultConfig().admin, port, tokens: [{ token: 'operate-token-cccccccccccccccc', role: 'operate' as const }] };
    const { lines, logger } = capture();
    let system: ActorSystem | undefined;
    const started = startSystem(
      tree(config, undefined, () => system),
      { logger },
    );
    const outcome = await started.then(
      async (s) => {
        await s.shutdown('test over', 5_000);
        return 'started';
      },
      (err: unknown) => err,
    );
    expect(isEthhookError(outcome, 'ETHHOOK_ERR_ADMIN_LISTEN')).toBe(true);
    expect((outcome as Error).message).toContain(`127.0.0.1:${port}`);
    expect(JSON.stringify(lines())).toContain('ETHHOOK_ERR_ADMIN_LISTEN');
  });
});
