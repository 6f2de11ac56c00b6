// The `ethhook` command as operators run it: a real child process through bin/ethhook.mjs. Each run is a
// process of its own (about a second of CPU: node loads the whole bundle), so the tests of a group run at
// once and a test's independent runs start together, at most RUNS_AT_ONCE processes at a time.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'ethhook-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

// More processes than this on two cores only wait for a core, and that wait would count in each run's 30 s.
const RUNS_AT_ONCE = 4;
let running = 0;
const waiting: Array<() => void> = [];

/** Runs the CLI with only PATH from the environment, plus `env`, once fewer than RUNS_AT_ONCE others run. */
async function ethhook(args: string[], env: Record<string, string> = {}, bin = 'bin/ethhook.mjs'): Promise<Run> {
  if (running >= RUNS_AT_ONCE) await new Promise<void>((resolve) => waiting.push(resolve));
  else running++;
  try {
    return await new Promise((resolve) => {
      execFile(
        process.execPath,
        [bin, ...args],
        { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000 },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });
  } finally {
    // The slot passes to the next waiting run, if any.
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

const BAD = join(dir, 'bad.yaml');
writeFileSync(BAD, 'admin:\n  port: 70000\nchains:\n  - { chainId: 1, name: mainnet, wsUrl: "http://wrong" }\n');
const GOOD = join(dir, 'good.json');
writeFileSync(GOOD, JSON.stringify({ admin: { port: 9000, tokens: [{ token: 'operate-token-0123456789', role: 'operate' }] } }));

describe.concurrent('config check', () => {
  it('exits 1 and prints each error with its path', async () => {
    const run = await ethhook(['config', 'check', BAD]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('ETHHOOK_ERR_CONFIG_INVALID');
    expect(run.stderr).toMatch(/^ {2}admin\.port: /m);
    expect(run.stderr).toMatch(/^ {2}chains\[0\]\.wsUrl: must be a ws:\/\/ or wss:\/\/ URL/m);
    expect(run.stdout).toBe('');
  });

  it('prints ok for a valid file, and checks the environment overrides too', async () => {
    const [plain, withEnv, ignoringEnv] = await Promise.all([
      ethhook(['config', 'check', GOOD]),
      ethhook(['config', 'check', GOOD], { ETHHOOK_ADMIN__PORT: 'x' }),
      ethhook(['config', 'check', GOOD, '--ignore-env'], { ETHHOOK_ADMIN__PORT: 'x' }),
    ]);
    expect(plain).toMatchObject({ code: 0, stdout: 'ok\n' });
    expect(withEnv.code).toBe(1);
    expect(withEnv.stderr).toContain('admin.port: ');
    expect(withEnv.stderr).toContain('(from ETHHOOK_ADMIN__PORT)');
    expect(ignoringEnv).toMatchObject({ code: 0 });
  });

  // config/production.example.yaml sets security.generateMasterKey: false, as production does.
  const PRODUCTION = resolve('config/production.example.yaml');

  it('makes the checks start makes: the production example without ETHHOOK_MASTER_KEY fails with its code, with a key it is ok', async () => {
    const [without, withKey, invalid, ignoringEnv] = await Promise.all([
      ethhook(['config', 'check', PRODUCTION]),
      ethhook(['config', 'check', PRODUCTION], { ETHHOOK_MASTER_KEY: 'a1'.repeat(32) }),
      ethhook(['config', 'check', PRODUCTION], { ETHHOOK_MASTER_KEY: 'not-a-key' }),
      ethhook(['config', 'check', PRODUCTION, '--ignore-env'], { ETHHOOK_MASTER_KEY: 'a1'.repeat(32) }),
    ]);
    expect(without.code).toBe(1);
    expect(without.stdout).toBe('');
    expect(without.stderr).toMatch(/^ {2}security\.generateMasterKey: ETHHOOK_MASTER_KEY is not set.*\[ETHHOOK_ERR_MASTER_KEY_MISSING\]$/m);
    expect(withKey).toMatchObject({ code: 0, stdout: 'ok\n' });
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain(
      'ETHHOOK_MASTER_KEY: master key from ETHHOOK_MASTER_KEY is not 32 bytes of hex or base64 [ETHHOOK_ERR_MASTER_KEY_INVALID]',
    );
    expect(invalid.stderr).not.toContain('not-a-key');
    // --ignore-env checks the file alone: no key then.
    expect(ignoringEnv.code).toBe(1);
  });

  it('says in its help what it cannot check', async () => {
    const help = await ethhook(['config', 'check', '--help']);
    expect(help.code).toBe(0);
    for (const text of ['ETHHOOK_MASTER_KEY', 'cannot check', 'data directory', 'admin port', 'chains', 'governance server'])
      expect(help.stdout).toContain(text);
  });

  it('start refuses the same configuration with the same line, before it opens the data directory', async () => {
    const dataDir = join(dir, 'production-data');
    const run = await ethhook(['start', '--config', PRODUCTION], { ETHHOOK_NODE__DATA_DIR: dataDir });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^ {2}security\.generateMasterKey: .*\[ETHHOOK_ERR_MASTER_KEY_MISSING\]$/m);
    expect(existsSync(dataDir)).toBe(false);
  });

  it('reports a missing file and a missing argument differently', async () => {
    const [missing, noArgument] = await Promise.all([ethhook(['config', 'check', join(dir, 'nope.yaml')]), ethhook(['config', 'check'])]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('ETHHOOK_ERR_CONFIG_UNREADABLE');
    expect(noArgument.code).toBe(2);
  });
});

describe.concurrent('config print', () => {
  it('prints the effective config as JSON with each token shown as a fingerprint, no character of it', async () => {
    const run = await ethhook(['config', 'print', GOOD], { ETHHOOK_LOG__LEVEL: 'debug' });
    expect(run.code).toBe(0);
    const printed = JSON.parse(run.stdout) as { admin: { port: number; tokens: { token: string }[] }; log: { level: string } };
    expect(printed.admin.port).toBe(9000);
    expect(printed.log.level).toBe('debug');
    const digest = createHash('sha256').update('operate-token-0123456789').digest('hex');
    expect(printed.admin.tokens[0]?.token).toBe(`sha256:${digest.slice(0, 12)}`);
    expect(printed.admin.tokens[0]?.token).not.toContain('operat');
    expect(run.stdout).not.toContain('operate-');
  });

  it('without a file prints the defaults', async () => {
    const run = await ethhook(['config', 'print']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ admin: { port: 8080 }, devChain: { enabled: true } });
  });
});

describe.concurrent('store migrate', () => {
  it('refuses a LevelDB store, which has no migrations, and exits 1', async () => {
    const argsList = [
      ['store', 'migrate'],
      ['store', 'migrate', '--dry-run', '--config', GOOD],
    ];
    for (const run of await Promise.all(argsList.map((args) => ethhook(args)))) {
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('store.kind: level');
      expect(run.stdout).toBe('');
    }
  });

  it('needs its subcommand, and takes no arguments', async () => {
    const [bare, withArgument] = await Promise.all([ethhook(['store']), ethhook(['store', 'migrate', 'now'])]);
    expect(bare).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('"store" needs a subcommand: migrate, copy'),
    });
    expect(withArgument).toMatchObject({ code: 2 });
  });
});

describe.concurrent('help and usage', () => {
  it('--help and help list every command and its flags', async () => {
    for (const run of await Promise.all([['--help'], ['help']].map((args) => ethhook(args)))) {
      expect(run.code).toBe(0);
      for (const text of [
        'start',
        '--config',
        'config check',
        'config print',
        '--ignore-env',
        'help',
        '--version',
        'ETHHOOK_ADMIN_TOKENS',
        'governance-serve',
        '--key FILE',
        '--generate-key FILE',
        '--log FILE',
        '--port N',
        'errors',
        'ETHHOOK_MASTER_KEY',
        'store migrate',
        '--dry-run',
        'ETHHOOK_STORE__URL',
        'store copy',
        '--from level:DIR',
        '--to postgres:URL',
        '--schema NAME',
      ]) {
        expect(run.stdout).toContain(text);
      }
    }
  });

  it('every command listed by --help has its own help', async () => {
    const listed = [...(await ethhook(['--help'])).stdout.matchAll(/^ {2}ethhook ([a-z-]+(?: [a-z][a-z-]*)?)/gm)].map((m) =>
      m[1]!.split(' ').filter((w) => /^[a-z-]+$/.test(w)),
    );
    expect(listed.map((w) => w.join(' '))).toEqual([
      'start',
      'config check',
      'config print',
      'chain reset-cursor',
      'store migrate',
      'store copy',
      'governance-serve',
      'errors',
      'help',
    ]);
    const runs = await Promise.all(listed.map((words) => ethhook(['help', ...words])));
    for (const [i, run] of runs.entries()) {
      const name = listed[i]!.join(' ');
      expect(run.code, name).toBe(0);
      expect(run.stdout, name).toContain(`Usage: ethhook ${name}`);
    }
  });

  it('the help of a command group shows each of its commands, and exits 0', async () => {
    const argsList = [
      ['help', 'config'],
      ['config', '--help'],
    ];
    const [runs, unknown] = await Promise.all([Promise.all(argsList.map((args) => ethhook(args))), ethhook(['help', 'frobnicate'])]);
    for (const [i, run] of runs.entries()) {
      expect(run.code, argsList[i]!.join(' ')).toBe(0);
      expect(run.stdout).toContain('Usage: ethhook config check FILE');
      expect(run.stdout).toContain('Usage: ethhook config print [FILE]');
    }
    expect(unknown.code).toBe(2);
  });

  it('a command help shows that command', async () => {
    const run = await ethhook(['config', 'check', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage: ethhook config check FILE');
  });

  it('--version prints the package version', async () => {
    const run = await ethhook(['--version']);
    expect(run).toMatchObject({ code: 0, stdout: expect.stringMatching(/^\d+\.\d+\.\d+\n$/) });
  });

  // bin/ethhook.mjs runs a bundle of the sources on plain node (no loader thread); ETHHOOK_RUN_SOURCES=1
  // runs them through tsx. Both are the same CLI; the bundle carries its source map and the path of src/.
  it('runs from a bundle it builds at start, or from the sources with ETHHOOK_RUN_SOURCES=1', async () => {
    const [bundled, sources] = await Promise.all([ethhook(['--version']), ethhook(['--version'], { ETHHOOK_RUN_SOURCES: '1' })]);
    expect(bundled).toMatchObject({ code: 0, stderr: '' });
    expect(sources).toMatchObject({ code: 0, stderr: '', stdout: bundled.stdout });
    const cache = join('node_modules', '.cache', 'ethhook');
    const bundles = readdirSync(cache).filter((f) => /^cli-[0-9a-f]{16}\.mjs$/.test(f));
    expect(bundles).toHaveLength(1);
    const text = readFileSync(join(cache, bundles[0]!), 'utf8');
    expect(text).toContain(JSON.stringify(join(process.cwd(), 'src')));
    // The map is a file beside the bundle, named in its last line (not inline: V8 would keep it in the source).
    expect(text.trimEnd().split('\n').at(-1)).toBe(`//# sourceMappingURL=${bundles[0]!}.map`);
    expect(text).not.toContain('sourceMappingURL=data:');
    expect(readdirSync(cache).filter((f) => f.startsWith('cli-') && f.endsWith('.map'))).toEqual([`${bundles[0]!}.map`]);
    // The map's paths are relative to the bundle's own directory and name the real sources.
    const map = JSON.parse(readFileSync(join(cache, `${bundles[0]!}.map`), 'utf8')) as { sources: string[] };
    const sourcesInMap = map.sources.map((s) => resolve(cache, s));
    expect(sourcesInMap).toContain(join(process.cwd(), 'src', 'cli.ts'));
    expect(sourcesInMap.filter((s) => !existsSync(s))).toEqual([]);
    // zod is bundled in (no import of it left), without the translations of its messages but English:
    // the translations' index is in the map (as an empty module), none of the languages it imports.
    expect(text).not.toMatch(/from\s*"zod(\/[^"]*)?"/);
    const zod = sourcesInMap.filter((s) => s.includes(join('node_modules', 'zod', '')));
    expect(zod).toContain(join(process.cwd(), 'node_modules', 'zod', 'v4', 'core', 'core.js'));
    const locales = zod.filter((s) => s.includes(join('zod', 'v4', 'locales', '')));
    expect(locales.map((s) => s.slice(s.lastIndexOf('/') + 1)).sort()).toEqual(['en.js', 'index.js']);
  });

  // A bundle that cannot be built stops the command instead of running the sources another way:
  // ESBUILD_BINARY_PATH (esbuild's own variable) naming a program that exits at once breaks esbuild. It
  // runs in a copy of the checkout whose bundle was never built (a bundle of unchanged sources is reused
  // without esbuild): bin/, src/ and the project files, and a node_modules of links to this one's
  // packages, so the copy's bundle cache is its own.
  it('a bundle that cannot be built exits 1 with one JSON log line naming the cause and ETHHOOK_RUN_SOURCES', async () => {
    const checkout = join(dir, 'checkout');
    mkdirSync(join(checkout, 'node_modules'), { recursive: true });
    for (const entry of readdirSync('node_modules')) {
      if (entry !== '.cache') symlinkSync(resolve('node_modules', entry), join(checkout, 'node_modules', entry));
    }
    for (const part of ['bin', 'src', 'tsconfig.json', 'package.json']) cpSync(part, join(checkout, part), { recursive: true });
    const bin = join(checkout, 'bin', 'ethhook.mjs');
    const notEsbuild = join(dir, 'not-esbuild');
    writeFileSync(notEsbuild, '#!/bin/sh\nexit 1\n', { mode: 0o755 });
    const broken = { ESBUILD_BINARY_PATH: notEsbuild };
    const run = await ethhook(['--version'], broken, bin);
    expect(run).toMatchObject({ code: 1, stdout: '' });
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!) as { level: number; code: string; msg: string; err: { message: string } };
    expect(line).toMatchObject({ level: 60, code: 'ETHHOOK_ERR_BUNDLE' });
    expect(line.msg).toContain('ETHHOOK_RUN_SOURCES=1');
    expect(line.err.message.length).toBeGreaterThan(0);
    expect(existsSync(join(checkout, 'node_modules', '.cache'))).toBe(false);
    // The sources through tsx (which transforms with a working esbuild of its own) run the same CLI.
    const sources = await ethhook(['--version'], { ETHHOOK_RUN_SOURCES: '1' }, bin);
    expect(sources).toMatchObject({ code: 0, stderr: '', stdout: expect.stringMatching(/^\d+\.\d+\.\d+\n$/) });
  });

  // A start whose sources did not change reuses the bundle without running esbuild (a broken esbuild
  // cannot be in the way); a changed source makes a new bundle.
  it('reuses the bundle of unchanged sources without esbuild', async () => {
    expect((await ethhook(['--version'])).code).toBe(0);
    const notEsbuild = join(dir, 'not-esbuild-2');
    writeFileSync(notEsbuild, '#!/bin/sh\nexit 1\n', { mode: 0o755 });
    expect(await ethhook(['--version'], { ESBUILD_BINARY_PATH: notEsbuild })).toMatchObject({ code: 0, stderr: '' });
  });

  it('unknown commands and flags print help and exit 2', async () => {
    const argsList = [['frobnicate'], ['config'], ['config', 'check', GOOD, '--bogus'], ['start', '--ignore-env'], []];
    const runs = await Promise.all(argsList.map((args) => ethhook(args)));
    for (const [i, run] of runs.entries()) {
      expect(run.code, argsList[i]!.join(' ')).toBe(2);
      expect(run.stderr).toContain('Usage: ethhook <command>');
    }
  });

  it('start with an invalid config exits 1 before starting anything', async () => {
    const [run, fromEnv] = await Promise.all([ethhook(['start', '--config', BAD]), ethhook(['start'], { ETHHOOK_CONFIG: BAD })]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('admin.port: ');
    expect(fromEnv.code).toBe(1);
    expect(fromEnv.stderr).toContain(BAD);
  });
});

describe.concurrent('errors', () => {
  it('prints the catalog, one code per line with its status', async () => {
    const [run, withArgument] = await Promise.all([ethhook(['errors']), ethhook(['errors', 'x'])]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^ETHHOOK_ERR_ACTOR_NOT_FOUND +404 +kernel +no actor/m);
    expect(run.stdout).toMatch(/^ETHHOOK_ERR_GOVERNANCE_APPLY +500 +governance /m);
    expect(withArgument.code).toBe(2);
  });
});

describe.concurrent('governance-serve', () => {
  // The reference server through the node's CLI: a key pair, then a server that stops on SIGTERM.
  it('generates a key pair, serves with it, and exits 0 on SIGTERM', async () => {
    const key = join(dir, 'gov.pem');
    const gen = await ethhook(['governance-serve', '--generate-key', key]);
    expect(gen.code).toBe(0);
    expect(gen.stdout).toMatch(/key id: +[0-9a-f]{32}/);
    expect(existsSync(`${key}.pub`)).toBe(true);

    const child = spawn(
      process.execPath,
      ['bin/ethhook.mjs', 'governance-serve', '--key', key, '--port', '0', '--log', join(dir, 'gov.jsonl')],
      {
        env: { PATH: process.env.PATH ?? '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /"url":"(ws:\/\/[^"]+)".*"msg":"governance server listening"/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.once('exit', (code) => reject(new Error(`exited ${code} before listening: ${out}`)));
      });
      // Plain HTTP is told to upgrade: the server is up and speaking its protocol.
      const res = await fetch(url.replace(/^ws/, 'http'));
      expect(res.status).toBe(426);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('passes its own usage errors through with exit 2', async () => {
    const argsList = [['governance-serve'], ['governance-serve', '--bogus'], ['governance-serve', '--port', 'x', '--key', 'k']];
    const runs = await Promise.all(argsList.map((args) => ethhook(args)));
    for (const [i, run] of runs.entries()) {
      expect(run.code, argsList[i]!.join(' ')).toBe(2);
      expect(run.stderr).toContain('Usage: ethhook governance-serve');
    }
  });
});
