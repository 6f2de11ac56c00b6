import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/config/duration.ts';
import { applyEnvOverrides, parseEnvOverrides } from '../../src/config/env.ts';
import { ConfigError, formatConfigIssues } from '../../src/config/errors.ts';
import { loadConfig } from '../../src/config/load.ts';
import { redactConfig } from '../../src/config/redact.ts';
import { NodeConfigSchema, defaultConfig } from '../../src/config/schema.ts';
import { EthhookError } from '../../src/runtime/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'ethhook-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function file(ext: string, text: string): string {
  const path = join(dir, `c${fileCount++}.${ext}`);
  writeFileSync(path, text);
  return path;
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const SECTIONS = Object.keys(NodeConfigSchema.shape);
const TOKEN_A = 'read-token-0123456789';
const TOKEN_B = 'operate-token-0123456789';

describe('defaults', () => {
  // No file, no environment: a dev node.
  it('runs a dev node with the documented defaults', () => {
    const c = loadConfig({ env: {} });
    expect(c.node).toMatchObject({ dataDir: './data', shutdownDeadlineMs: 10_000 });
    expect(c.cluster).toEqual({ leaseMs: 15_000, heartbeatMs: 5_000 });
    expect(c.node.id).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
    expect(c.log.level).toBe('info');
    expect(c.admin).toMatchObject({ host: '127.0.0.1', port: 8080, tokens: [], corsOrigins: [] });
    expect(c.runtime.mailbox).toEqual({ capacity: 1024, overflow: 'backpressure', throughput: 256 });
    expect(c.runtime.maxConsecutivePanics).toBe(3);
    expect(c.runtime.supervision).toEqual({
      intensity: { maxRestarts: 5, withinMs: 30_000 },
      backoff: { minMs: 100, maxMs: 30_000, factor: 2, jitter: 0.2, resetAfterMs: 60_000 },
    });
    expect(c.chains).toEqual([]);
    expect(c.devChain.enabled).toBe(true);
    expect(c.deliverer.retry).toEqual({
      scheduleMs: [0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000],
      jitter: 0.2,
      maxRetryAfterMs: 36_000_000,
    });
    expect(c.deliverer.circuitBreaker).toEqual({
      failureThreshold: 10,
      failureRateThreshold: 50,
      slidingWindowType: 'count',
      slidingWindowSize: 100,
      minimumNumberOfCalls: 50,
      cooldownMs: 60_000,
    });
    expect(c.deliverer.requestTimeoutMs).toBe(15_000);
    expect(c.security.allowPrivateTargets).toBe(true);
    expect(c.governance.url).toBeUndefined();
  });

  it('config/default.yaml writes out exactly the schema defaults', () => {
    expect(loadConfig({ file: 'config/default.yaml', env: {} })).toEqual(defaultConfig());
  });

  it('config/production.example.yaml is valid and closes the dev conveniences', () => {
    const c = loadConfig({ file: 'config/production.example.yaml', env: {} });
    expect(c.security.allowPrivateTargets).toBe(false);
    expect(c.devChain.enabled).toBe(false);
    expect(c.chains.map((ch) => ch.chainId)).toEqual([1, 8453]);
    expect(c.node.shutdownDeadlineMs).toBe(25_000);
  });

  it('a chain gets its defaults', () => {
    const c = loadConfig({
      env: {},
      file: file('json', JSON.stringify({ chains: [{ chainId: 1, name: 'mainnet', wsUrl: 'wss://rpc.example/ws' }] })),
    });
    expect(c.chains[0]).toMatchObject({ confirmations: 0, maxReorgDepth: 64, backfillRange: 2000, requestTimeoutMs: 10_000 });
  });
});

describe('durations', () => {
  it('take ms or a unit and always parse to ms', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('10')).toBeUndefined();
    const c = loadConfig({
      env: {},
      file: file('yaml', 'node:\n  shutdownDeadlineMs: 3s\nruntime:\n  supervision:\n    backoff: { minMs: 250ms, maxMs: 1m }\n'),
    });
    expect(c.node.shutdownDeadlineMs).toBe(3000);
    expect(c.runtime.supervision.backoff).toMatchObject({ minMs: 250, maxMs: 60_000 });
  });

  it('property: n<unit> parses to n times the unit', () => {
    const units = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
    fc.assert(
      fc.property(fc.nat(10_000), fc.constantFrom(...(Object.keys(units) as (keyof typeof units)[])), (n, unit) => {
        expect(parseDuration(`${n}${unit}`)).toBe(n * units[unit]);
      }),
    );
  });
});

describe('file and environment', () => {
  // YAML and JSON files, then ETHHOOK_* on top.
  it('reads YAML and JSON by extension', () => {
    expect(loadConfig({ env: {}, file: file('yml', 'admin:\n  port: 9001\n') }).admin.port).toBe(9001);
    expect(loadConfig({ env: {}, file: file('json', '{"admin":{"port":9002}}') }).admin.port).toBe(9002);
    expect(loadConfig({ env: {}, file: file('yaml', '') }).admin.port).toBe(8080);
  });

  it('environment overrides win over the file, with __ for nesting and snake case to camel case', () => {
    const path = file('yaml', 'admin:\n  port: 9001\nnode:\n  dataDir: /from/file\n');
    const c = loadConfig({
      file: path,
      env: {
        ETHHOOK_ADMIN__PORT: '9100',
        ETHHOOK_NODE__DATA_DIR: '/from/env',
        ETHHOOK_DEV_CHAIN__ENABLED: 'false',
        ETHHOOK_RUNTIME__ACTORS__deliverer__PLACEMENT: 'forked',
        ETHHOOK_RUNTIME__MAILBOX__OVERFLOW: 'drop-oldest',
        ETHHOOK_DELIVERER__RETRY__SCHEDULE_MS: '["1s", 5000]',
        ETHHOOK_CHAINS__0__CHAIN_ID: '1',
        ETHHOOK_CHAINS__0__NAME: 'mainnet',
        ETHHOOK_CHAINS__0__WS_URL: 'wss://rpc.example/ws/key',
        PATH: '/usr/bin',
      },
    });
    expect(c.admin.port).toBe(9100);
    expect(c.node.dataDir).toBe('/from/env');
    expect(c.devChain.enabled).toBe(false);
    expect(c.runtime.actors).toEqual({ deliverer: { placement: 'forked' } });
    expect(c.runtime.mailbox.overflow).toBe('drop-oldest');
    expect(c.deliverer.retry.scheduleMs).toEqual([1000, 5000]);
    expect(c.chains[0]).toMatchObject({ chainId: 1, name: 'mainnet', providers: [{ name: 'primary', wsUrl: 'wss://rpc.example/ws/key' }] });
  });

  it('ETHHOOK_ADMIN_TOKENS sets role:token pairs', () => {
    const c = loadConfig({ env: { ETHHOOK_ADMIN_TOKENS: ` read:${TOKEN_A} , operate:${TOKEN_B}` } });
    expect(c.admin.tokens).toEqual([
      { role: 'read', token: TOKEN_A },
      { role: 'operate', token: TOKEN_B },
    ]);
  });

  it('a whole section from JSON applies before deeper variables', () => {
    const c = loadConfig({ env: { ETHHOOK_ADMIN__PORT: '7000', ETHHOOK_ADMIN: '{"host":"0.0.0.0","port":1}' } });
    expect(c.admin).toMatchObject({ host: '0.0.0.0', port: 7000 });
  });

  it('a value the schema wants as text is kept as text even when it reads as JSON', () => {
    expect(loadConfig({ env: { ETHHOOK_NODE__ID: '7' } }).node.id).toBe('7');
    expect(loadConfig({ env: { ETHHOOK_NODE__DATA_DIR: 'null' } }).node.dataDir).toBe('null');
  });

  // Only a type mismatch against a string field is retried as text: a number out of range keeps its
  // own message (a heartbeat too slow for its lease must say so, not "expected string").
  it('a number that breaks a rule is reported by the rule, not retried as text', () => {
    const err = configError(() => loadConfig({ env: { ETHHOOK_CLUSTER__LEASE_MS: '3000', ETHHOOK_CLUSTER__HEARTBEAT_MS: '2000' } }));
    expect(err.issues).toEqual([
      {
        path: 'cluster.heartbeatMs',
        message: 'must be above 0 and at most half of leaseMs (a lease is renewed at least twice before it expires)',
        source: 'ETHHOOK_CLUSTER__HEARTBEAT_MS',
      },
    ]);
    expect(configError(() => loadConfig({ env: { ETHHOOK_ADMIN__PORT: '70000' } })).issues[0]).toMatchObject({
      path: 'admin.port',
      source: 'ETHHOOK_ADMIN__PORT',
    });
    expect(configError(() => loadConfig({ env: { ETHHOOK_ADMIN__PORT: '70000' } })).issues[0]!.message).not.toMatch(/string/);
  });

  it('empty values count as unset; unrelated ETHHOOK_ names are left alone', () => {
    const c = loadConfig({ env: { ETHHOOK_ADMIN__PORT: '', ETHHOOK_CONFIG: '/x.yaml', ETHHOOK_ANVIL_BIN: '/bin/anvil' } });
    expect(c.admin.port).toBe(8080);
  });

  it('does not touch the document it is given', () => {
    const doc = { admin: { port: 1 } };
    applyEnvOverrides(doc, parseEnvOverrides({ ETHHOOK_ADMIN__PORT: '2' }, SECTIONS).overrides);
    expect(doc.admin.port).toBe(1);
  });
});

describe('errors', () => {
  // Every problem is reported at once, each with its dotted path.
  it('reports every problem with its path', () => {
    const path = file(
      'yaml',
      [
        'admin:',
        '  port: 70000',
        '  prot: 1',
        '  tokens: [{ token: short, role: admin }]',
        'cluster: { leaseMs: 1s, heartbeatMs: 1s }',
        'runtime:',
        '  mailbox: { overflow: drop-everything }',
        '  supervision: { backoff: { minMs: 10s, maxMs: 1s } }',
        '  actors: { deliverer: { placement: remote } }',
        'chains:',
        '  - { chainId: 1, name: mainnet, wsUrl: "https://not-a-ws", confirmations: 100 }',
        'deliverer: { retry: { scheduleMs: [0, soon] } }',
        'bogus: true',
      ].join('\n'),
    );
    const err = configError(() => loadConfig({ file: path, env: {} }));
    expect(err).toBeInstanceOf(EthhookError);
    expect(err.code).toBe('ETHHOOK_ERR_CONFIG_INVALID');
    const paths = err.issues.map((i) => i.path);
    expect(new Set(paths)).toEqual(
      new Set([
        'admin.port',
        'admin.prot',
        'admin.tokens[0].token',
        'admin.tokens[0].role',
        'cluster.heartbeatMs',
        'runtime.mailbox.overflow',
        'runtime.supervision.backoff.minMs',
        'runtime.actors.deliverer.placement',
        'chains[0].wsUrl',
        'chains[0].confirmations',
        'deliverer.retry.scheduleMs[1]',
        'bogus',
      ]),
    );
    for (const issue of err.issues) expect(issue.message.length).toBeGreaterThan(0);
    expect(err.message).toContain('admin.port:');
  });

  it('cross-field rules name the field to fix', () => {
    const path = file(
      'json',
      JSON.stringify({
        chains: [
          { chainId: 31337, name: 'a', wsUrl: 'ws://127.0.0.1:1', confirmations: 100 },
          { chainId: 31337, name: 'a', wsUrl: 'ws://127.0.0.1:2' },
        ],
      }),
    );
    const err = configError(() => loadConfig({ file: path, env: { ETHHOOK_GOVERNANCE__URL: 'wss://gov.example/stream' } }));
    expect(err.issues.map((i) => i.path).sort()).toEqual([
      'chains[0].confirmations',
      'chains[1].chainId',
      'chains[1].name',
      'devChain.chainId',
      'governance.publicKeys',
    ]);
  });

  it('names the environment variable behind a bad value', () => {
    const err = configError(() =>
      loadConfig({ env: { ETHHOOK_ADMIN__PORT: 'eighty', ETHHOOK_LOG: '{"level":"loud"}', ETHHOOK_ADMIN__PROT: '1' } }),
    );
    expect(err.issues).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: 'admin.port', source: 'ETHHOOK_ADMIN__PORT' }),
        expect.objectContaining({ path: 'log.level', source: 'ETHHOOK_LOG' }),
        expect.objectContaining({ path: 'admin.prot', message: 'unknown key', source: 'ETHHOOK_ADMIN__PROT' }),
      ]),
    );
    expect(formatConfigIssues(err.issues)).toContain('admin.port: ');
    expect(formatConfigIssues(err.issues)).toContain('(from ETHHOOK_ADMIN__PORT)');
  });

  it('points out a single underscore where __ was meant, and bad token lists', () => {
    const err = configError(() => loadConfig({ env: { ETHHOOK_ADMIN_PORT: '9000', ETHHOOK_ADMIN_TOKENS: 'root:abc' } }));
    expect(err.issues).toEqual([
      expect.objectContaining({
        path: 'admin.port',
        source: 'ETHHOOK_ADMIN_PORT',
        message: expect.stringContaining('ETHHOOK_ADMIN__PORT'),
      }),
      expect.objectContaining({ path: 'admin.tokens', source: 'ETHHOOK_ADMIN_TOKENS' }),
    ]);
  });

  it('refuses a field name on a list, and reserved keys', () => {
    const list = configError(() => loadConfig({ env: { ETHHOOK_CHAINS: '[]', ETHHOOK_CHAINS__NAME: 'x' } }));
    expect(list.issues[0]).toMatchObject({ path: 'chains.name', source: 'ETHHOOK_CHAINS__NAME' });
    const proto = configError(() => loadConfig({ env: { ETHHOOK_admin__constructor: '1' } }));
    expect(proto.issues[0]?.source).toBe('ETHHOOK_admin__constructor');
  });

  it('unreadable files, unknown formats and syntax errors have their own codes', () => {
    expect(configError(() => loadConfig({ file: join(dir, 'missing.yaml'), env: {} })).code).toBe('ETHHOOK_ERR_CONFIG_UNREADABLE');
    expect(configError(() => loadConfig({ file: file('toml', 'a = 1'), env: {} })).code).toBe('ETHHOOK_ERR_CONFIG_UNREADABLE');
    const yaml = configError(() => loadConfig({ file: file('yaml', 'admin:\n  port: [1\n'), env: {} }));
    expect(yaml.code).toBe('ETHHOOK_ERR_CONFIG_SYNTAX');
    expect(yaml.issues[0]?.message).toMatch(/line \d+/);
    expect(configError(() => loadConfig({ file: file('yaml', 'a: 1\na: 2\n'), env: {} })).code).toBe('ETHHOOK_ERR_CONFIG_SYNTAX');
    expect(configError(() => loadConfig({ file: file('json', '{"admin":'), env: {} })).code).toBe('ETHHOOK_ERR_CONFIG_SYNTAX');
    const notAMap = configError(() => loadConfig({ file: file('yaml', '- 1\n- 2\n'), env: {} }));
    expect(notAMap.issues[0]?.path).toBe('');
  });
});

describe('redaction', () => {
  it('masks admin tokens and keys in RPC URLs, keeping hosts readable', () => {
    const c = loadConfig({
      env: {
        ETHHOOK_ADMIN_TOKENS: `operate:${TOKEN_B}`,
        ETHHOOK_CHAINS: JSON.stringify([
          {
            chainId: 1,
            name: 'mainnet',
            wsUrl: 'wss://mainnet.infura.io/ws/v3/0123456789abcdef0123456789abcdef',
            httpUrl: 'https://u:pw@rpc.example:8545/?apikey=s3cr3t-query-key',
          },
          {
            chainId: 10,
            name: 'optimism',
            providers: [
              { name: 'alchemy', wsUrl: 'wss://opt-mainnet.g.alchemy.com/v2/AlchemyKey0123456789' },
              { name: 'own', httpUrl: 'https://node.example/?token=hunter2hunter2' },
            ],
          },
        ]),
      },
    });
    const printed = JSON.stringify(redactConfig(c));
    expect(printed).not.toContain(TOKEN_B);
    expect(printed).not.toContain('AlchemyKey0123456789');
    expect(printed).not.toContain('hunter2hunter2');
    expect(printed).toContain('opt-mainnet.g.alchemy.com');
    expect(printed).toContain('"name":"alchemy"');
    expect(printed).not.toContain('0123456789abcdef0123456789abcdef');
    expect(printed).not.toContain('s3cr3t-query-key');
    expect(printed).not.toContain(':pw@');
    expect(printed).toContain('mainnet.infura.io');
    expect(c.admin.tokens[0]?.token).toBe(TOKEN_B);
  });
});

describe('store', () => {
  const URL_WITH_PASSWORD = 'postgres://ethhook:pg-s3cret-pw@db.example:5432/ethhook?sslmode=require';

  it('is LevelDB unless PostgreSQL is chosen; a postgres store takes its URL from ETHHOOK_STORE__URL and fills its defaults', () => {
    expect(defaultConfig().store).toEqual({ kind: 'level' });
    const c = loadConfig({ env: { ETHHOOK_STORE__KIND: 'postgres', ETHHOOK_STORE__URL: URL_WITH_PASSWORD } });
    expect(c.store).toEqual({ kind: 'postgres', url: URL_WITH_PASSWORD, poolSize: 10, schema: 'ethhook', statementTimeoutMs: 15_000 });
    const tuned = loadConfig({
      env: {
        ETHHOOK_STORE: JSON.stringify({
          kind: 'postgres',
          url: 'postgresql://db/x',
          poolSize: 3,
          schema: 'hooks_2',
          statementTimeoutMs: '2s',
        }),
      },
    });
    expect(tuned.store).toMatchObject({ poolSize: 3, schema: 'hooks_2', statementTimeoutMs: 2_000 });
  });

  it('refuses an unknown kind, a URL of another scheme, an unsafe schema name, and postgres keys on a level store', () => {
    const issues = (store: unknown) =>
      configError(() => loadConfig({ env: { ETHHOOK_STORE: JSON.stringify(store) } })).issues.map((i) => `${i.path}: ${i.message}`);
    expect(issues({ kind: 'mysql' })).toEqual([expect.stringMatching(/^store\.kind: kind must be 'level' or 'postgres'/)]);
    expect(issues({ kind: 'postgres' })).toEqual([expect.stringMatching(/^store\.url: required/)]);
    expect(issues({ kind: 'postgres', url: 'http://db/x' })).toEqual([expect.stringMatching(/^store\.url: must be a postgres/)]);
    for (const schema of ['Ethhook', 'a-b', '1st', 'x"; DROP', 'a'.repeat(64)]) {
      expect(issues({ kind: 'postgres', url: 'postgres://db/x', schema })).toEqual([
        expect.stringMatching(/^store\.schema: must be a lower-case SQL identifier/),
      ]);
    }
    expect(issues({ kind: 'level', url: 'postgres://db/x' })).toEqual([expect.stringMatching(/^store\.url: unknown key/)]);
  });

  it('never prints the password', () => {
    const c = loadConfig({ env: { ETHHOOK_STORE__KIND: 'postgres', ETHHOOK_STORE__URL: URL_WITH_PASSWORD } });
    const printed = JSON.stringify(redactConfig(c));
    expect(printed).not.toContain('pg-s3cret-pw');
    expect(printed).toContain('db.example:5432');
    expect(c.store.kind === 'postgres' && c.store.url).toBe(URL_WITH_PASSWORD);
  });
});

describe('properties', () => {
  const envName = fc.oneof(
    fc.string(),
    fc.string().map((s) => `ETHHOOK_${s}`),
    fc
      .array(
        fc.oneof(
          fc.constantFrom(...SECTIONS, 'ADMIN', 'PORT', 'CHAINS', '0', '1001', '', '__proto__', 'constructor', 'DATA_DIR'),
          fc.string(),
        ),
        { minLength: 1, maxLength: 4 },
      )
      .map((segments) => `ETHHOOK_${segments.join('__')}`),
    fc.constant('ETHHOOK_ADMIN_TOKENS'),
  );
  const envValue = fc.oneof(fc.string(), fc.json(), fc.constantFrom('read:aaaaaaaaaaaaaaaaaaaa', ':', ',', '{}', '[]', 'null'));
  const env = fc.dictionary(envName, envValue, { maxKeys: 6 });

  it('the environment parser never throws, whatever the variables', () => {
    fc.assert(
      fc.property(env, (e) => {
        const parsed = parseEnvOverrides(e, SECTIONS);
        applyEnvOverrides({}, parsed.overrides);
      }),
      { numRuns: 500 },
    );
  });

  it('loading with arbitrary variables yields a config or a ConfigError, nothing else', () => {
    fc.assert(
      fc.property(env, (e) => {
        try {
          loadConfig({ env: e });
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError);
          for (const issue of (err as ConfigError).issues) expect(typeof issue.path).toBe('string');
        }
      }),
      { numRuns: 300 },
    );
    expect(Object.prototype).not.toHaveProperty('polluted');
  });
});
