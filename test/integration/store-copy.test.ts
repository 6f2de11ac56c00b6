// `ethhook store copy`: a stopped node's LevelDB store (a real directory) copied into PostgreSQL (the
// run's server, schemas of this file's own), read back through the store APIs on both engines; copied
// again with the same result; and the command as operators run it, a child process.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Registry } from 'prom-client';
import { readMigrations } from '../../src/store/postgres/migrate.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GovernanceStateStore } from '../../src/actors/governance/state.ts';
import { redactUrl } from '../../src/config/redact.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { copyLevelToPostgres, LEVEL_SUBLEVELS, levelStoreDir, type StoreCopySummary } from '../../src/store/copy.ts';
import { CursorStore } from '../../src/store/cursors.ts';
import { DeferredJobs } from '../../src/store/deferred.ts';
import { EndpointStore } from '../../src/store/endpoints.ts';
import type { Kv } from '../../src/store/kv.ts';
import { openDb, sublevel, type Db } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import { LevelOutbox } from '../../src/store/level/outbox/outbox.ts';
import { MatchStore } from '../../src/store/matches.ts';
import type { OutboxStore } from '../../src/store/outbox/contract.ts';
import { PgKv } from '../../src/store/postgres/kv.ts';
import { PgOutbox } from '../../src/store/postgres/outbox.ts';
import { openPgPool, type PgPool } from '../../src/store/postgres/pool.ts';
import { SubscriptionStore } from '../../src/store/subscriptions.ts';
import { newJob } from '../support/jobs.ts';
import { pgTestSchema } from '../support/postgres.ts';

const T0 = 1_700_000_000_000;
const FAR = T0 + 1e9;
const MASTER_KEY = randomBytes(32);
const CHAIN = 1;
const BLOCK = { chainId: CHAIN, blockNumber: 100, blockHash: `0x${'aa'.repeat(32)}` };
const KV_SPACES = Object.keys(LEVEL_SUBLEVELS).filter((name) => LEVEL_SUBLEVELS[name] === 'kv');
const quiet = () => ({ logger: createLogger({ level: 'silent' }), registry: new Registry() });

let root: string;
let dataDir: string;
let dbDir: string;
let endpointId: string;
let secrets: string[];
const target = pgTestSchema('copy');
const cliTarget = pgTestSchema('copy_cli');

/**
 * A node's store with one of everything: an endpoint with two secrets (a rotation), two subscriptions,
 * pending jobs (one retried once, one held behind another), a dead letter superseded by its follower
 * and one that is not, match records and a retraction count, a deferred job, attempt pages, a chain
 * cursor with its reorg window and block 0, governance state.
 */
async function buildStore(dir: string): Promise<void> {
  const db = await openDb(dir);
  const kv = new LevelKv(db);
  const endpoints = new EndpointStore(kv, MASTER_KEY);
  await endpoints.verifyMasterKey();
  const created = await endpoints.create({ url: 'https://receiver.example/hook', description: 'moving' }, T0);
  endpointId = created.endpoint.id;
  const rotated = await endpoints.rotateSecret(endpointId, 3_600_000, { now: T0 + 1 });
  secrets = [rotated.secret, created.secret];
  const subscriptions = new SubscriptionStore(kv, endpoints);
  const direct = await subscriptions.create({ endpointId, chainId: CHAIN, addresses: [`0x${'ab'.repeat(20)}`] }, T0);
  const confirmed = await subscriptions.create({ endpointId, chainId: CHAIN, confirmations: 12 }, T0);

  const outbox = await LevelOutbox.open(kv, { now: () => T0 });
  const matches = new MatchStore(kv);
  const deferred = new DeferredJobs(kv);
  const deferredKey = deferred.key(CHAIN, 112, 'msg_deferred');
  await outbox.enqueueBatch(
    [newJob('msg_a', endpointId, {}, T0), newJob('msg_b', endpointId, {}, T0), newJob('msg_x', endpointId, {}, T0)],
    [
      matches.putOp(BLOCK, { logIndex: 0, subscriptionId: direct.id, endpointId }),
      matches.putOp(BLOCK, { logIndex: 1, subscriptionId: confirmed.id, endpointId, deferred: deferredKey }),
      deferred.putOp(deferredKey, newJob('msg_deferred', endpointId, {}, T0)),
      matches.retractionsOp(BLOCK, 2),
    ],
  );
  await outbox.enqueueBatch([newJob('msg_c', endpointId, { follows: 'msg_a' }, T0), newJob('msg_y', endpointId, { follows: 'msg_x' }, T0)]);
  await outbox.enqueueBatch([newJob('msg_z', endpointId, {}, T0)]);
  const attempt = (jobId: string, status: number) => ({ jobId, endpointId, at: T0 + 1, attempt: 1, status, durationMs: 12 });
  expect(await outbox.reschedule('msg_b', T0 + 60_000, attempt('msg_b', 503))).toMatchObject({ attempt: 1 });
  expect(await outbox.deadLetter('msg_x', 'HTTP 500, retries exhausted', attempt('msg_x', 500))).toBe(true);
  expect(await outbox.deadLetter('msg_z', 'HTTP 410', attempt('msg_z', 410))).toBe(true);
  expect(await outbox.getDeadLetter('msg_x')).toMatchObject({ supersededBy: 'msg_y' });
  expect(outbox.depth()).toBe(4);

  const cursors = new CursorStore(kv);
  await cursors.setGenesis(CHAIN, `0x${'00'.repeat(32)}`);
  await cursors.append(CHAIN, { number: 99, hash: '0x99' }, [{ logIndex: 0 }], 90, 64);
  await cursors.append(CHAIN, { number: 100, hash: BLOCK.blockHash }, [], 90, 64);
  await new GovernanceStateStore(kv).commit({ height: 7, keys: [{ keyId: 'k1', publicKey: 'pk1' }], genesis: ['k1'] });
  await outbox.idle();
  await db.close();
}

function pool(schema: string): Promise<PgPool> {
  return openPgPool({ url: target.url, schema, ...quiet() });
}

/** Runs `fn` on the source store (opened, then closed). */
async function withSource<T>(fn: (kv: LevelKv, db: Db) => Promise<T>): Promise<T> {
  const db = await openDb(dbDir);
  try {
    return await fn(new LevelKv(db), db);
  } finally {
    await db.close();
  }
}

/** Runs `fn` on the target schema (a pool opened, then closed). */
async function withTarget<T>(schema: string, fn: (kv: PgKv, pool: PgPool) => Promise<T>): Promise<T> {
  const p = await pool(schema);
  try {
    return await fn(new PgKv(p), p);
  } finally {
    await p.close();
  }
}

/** Every table of the target as text, in key order: what a second copy must leave as it was. */
async function tables(schema: string): Promise<unknown[]> {
  return withTarget(schema, (_, p) =>
    p.run('test.tables', async (c) => [
      (await c.query('SELECT space, key, value::text FROM kv ORDER BY space, key')).rows,
      (await c.query('SELECT id, endpoint_id, due_at, held_by, claimed_by, claim_until, job::text FROM outbox_jobs ORDER BY id')).rows,
      (await c.query('SELECT id, endpoint_id, dead_at, superseded_by, letter::text FROM outbox_dead ORDER BY id')).rows,
    ]),
  );
}

/** What an outbox holds, through the contract: due jobs in order with their bodies, a held job, dead letters, counts, attempts. */
async function outboxView(outbox: OutboxStore) {
  const due = await outbox.due(FAR, 100);
  return {
    due: due.map((job) => ({ job, body: outbox.bodyOf(job).toString('utf8') })),
    held: await outbox.get('msg_c'),
    deadLetters: await outbox.listDeadLetters(),
    depth: outbox.depth(),
    dead: outbox.deadLetterCount(),
    attempts: await outbox.attempts.list(endpointId),
  };
}

let first: StoreCopySummary;
const progress: Array<[string, unknown]> = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ethhook-store-copy-'));
  dataDir = join(root, 'node');
  dbDir = join(dataDir, 'db');
  await buildStore(dbDir);
  first = await copyLevelToPostgres({
    levelDir: dbDir,
    url: target.url,
    schema: target.schema,
    pageSize: 2,
    ...quiet(),
    onCopied: (kind, copied) => progress.push([kind, copied]),
  });
}, 60_000);
afterAll(async () => {
  if (root !== undefined) await rm(root, { recursive: true, force: true });
});

describe('the source', () => {
  it('holds every sublevel the copy knows, and is found from the data dir or the db dir', async () => {
    const names = await withSource(async (_, db) => {
      const found = new Set<string>();
      for await (const key of db.keys()) found.add(/^!([^!]*)!/.exec(key)![1]!);
      return [...found].sort();
    });
    expect(names).toEqual(Object.keys(LEVEL_SUBLEVELS).sort());
    expect(await levelStoreDir(dataDir)).toBe(dbDir);
    expect(await levelStoreDir(dbDir)).toBe(dbDir);
    expect(await levelStoreDir(root)).toBeUndefined();
  });
});

describe('copy', () => {
  it('migrates the target and counts what it copied, kind by kind', async () => {
    expect(first.migrated).toEqual((await readMigrations()).map((m) => m.version));
    expect(first.schema).toBe(target.schema);
    expect(first.kv).toMatchObject({
      endpoints: 1,
      subscriptions: 2,
      'subscriptions-by-endpoint': 2,
      matches: 2,
      'match-retractions': 1,
      'deferred-jobs': 1,
      governance: 1,
    });
    expect(first.kv.cursors).toBeGreaterThanOrEqual(5);
    expect(first.kv.attempts).toBeGreaterThanOrEqual(1);
    expect(first.jobs).toEqual({ copied: 4, held: 1, new: 4 });
    expect(first.deadLetters).toEqual({ copied: 2, superseded: 1, new: 2 });
    expect(progress.map(([kind]) => kind)).toEqual([...KV_SPACES, 'jobs', 'dead letters']);
  });

  it('analyzes the tables it filled, so the node plans its first claims knowing the rows', async () => {
    const analyzed = () =>
      withTarget(target.schema, (_, p) =>
        p.run('test.analyzed', async (c) =>
          (
            await c.query<{ relname: string }>(
              'SELECT relname FROM pg_stat_user_tables WHERE schemaname = $1 AND last_analyze IS NOT NULL ORDER BY relname',
              [target.schema],
            )
          ).rows.map((r) => r.relname),
        ),
      );
    await expect.poll(analyzed, { timeout: 10_000 }).toEqual(expect.arrayContaining(['kv', 'outbox_dead', 'outbox_jobs']));
  });

  it('copies every key-value space entry for entry', async () => {
    const read = (kv: Kv) => Promise.all(KV_SPACES.map((space) => kv.space(space).entries()));
    const source = await withSource((kv) => read(kv));
    expect(await withTarget(target.schema, (kv) => read(kv))).toEqual(source);
    expect(source.map((entries) => entries.length)).toEqual(KV_SPACES.map((space) => first.kv[space]));
  });

  it('keeps secrets sealed as they were: they open with the same master key, and with no other', async () => {
    const sealed = await withSource((kv) => kv.space('endpoints').get(endpointId));
    await withTarget(target.schema, async (kv) => {
      expect(await kv.space('endpoints').get(endpointId)).toEqual(sealed);
      const endpoints = new EndpointStore(kv, MASTER_KEY);
      const endpoint = (await endpoints.get(endpointId))!;
      expect(endpoints.activeSecrets(endpoint, T0 + 2)).toEqual(secrets);
      await expect(new EndpointStore(kv, randomBytes(32)).verifyMasterKey()).rejects.toMatchObject({
        code: 'ETHHOOK_ERR_MASTER_KEY_MISMATCH',
      });
    });
  });

  it('reads back equal through the stores: subscriptions, cursor and reorg window, matches, deferred jobs, governance', async () => {
    const read = async (kv: Kv) => {
      const endpoints = new EndpointStore(kv, MASTER_KEY);
      const cursors = new CursorStore(kv);
      const matches = new MatchStore(kv);
      return {
        subscriptions: await new SubscriptionStore(kv, endpoints).list({ endpointId }),
        cursor: await cursors.load(CHAIN, 64),
        genesis: await cursors.genesis(CHAIN),
        logs: await cursors.logs(CHAIN, 99),
        matches: await matches.forBlock(BLOCK),
        retractions: await matches.retractions(BLOCK),
        deferred: await new DeferredJobs(kv).due(CHAIN, 200, 10),
        governance: (await new GovernanceStateStore(kv).load([{ keyId: 'k1', publicKey: 'pk1' }])).state,
      };
    };
    const source = await withSource(read);
    expect(source.subscriptions).toHaveLength(2);
    expect(source.cursor).toMatchObject({ next: 101, floor: 90 });
    expect(source.cursor!.blocks.map((b) => b.number)).toEqual([99, 100]);
    expect(source.matches).toHaveLength(2);
    expect(source.retractions).toBe(2);
    expect(source.deferred.map(([, job]) => job.id)).toEqual(['msg_deferred']);
    expect(source.governance.height).toBe(7);
    expect(await withTarget(target.schema, read)).toEqual(source);
  });

  it('copies the outbox: due order, attempt counts, body bytes, the held follower, dead letters, counts and attempts', async () => {
    const source = await withSource(async (kv) => outboxView(await LevelOutbox.open(kv)));
    expect(source).toMatchObject({ depth: 4, dead: 2, held: { id: 'msg_c', follows: 'msg_a' } });
    expect(source.due.map((d) => [d.job.id, d.job.attempt])).toEqual([
      ['msg_a', 0],
      ['msg_y', 0],
      ['msg_b', 1],
    ]);
    expect(source.deadLetters.map((l) => [l.id, l.supersededBy])).toEqual([
      ['msg_x', 'msg_y'],
      ['msg_z', undefined],
    ]);
    const copied = await withTarget(target.schema, async (kv, p) => {
      // The node's own id: the claims this read takes are released when the node opens it below.
      const outbox = await PgOutbox.open(p, kv, { owner: 'node' });
      try {
        return await outboxView(outbox);
      } finally {
        await outbox.close();
      }
    });
    expect(copied).toEqual(source);
  });

  it('run again, copies the same counts and leaves every row as it was', async () => {
    const before = await tables(target.schema);
    const again = await copyLevelToPostgres({ levelDir: dbDir, url: target.url, schema: target.schema, ...quiet() });
    expect(again).toMatchObject({
      migrated: [],
      kv: first.kv,
      jobs: { copied: 4, held: 1, new: 0 },
      deadLetters: { copied: 2, superseded: 1, new: 0 },
    });
    expect(await tables(target.schema)).toEqual(before);
  });

  it('leaves a store a node runs on: the held follower is due once its leader completes, the superseded letter refuses replay', async () => {
    await withTarget(target.schema, async (kv, p) => {
      const outbox = await PgOutbox.open(p, kv, { owner: 'node', now: () => T0 + 10 });
      try {
        const ids = async () => (await outbox.due(FAR, 100)).map((j) => j.id);
        expect(await ids()).toEqual(['msg_a', 'msg_y', 'msg_b']);
        expect(await outbox.complete('msg_a')).toBe(true);
        expect(await ids()).toEqual(['msg_c', 'msg_y', 'msg_b']);
        await expect(outbox.replayDeadLetter('msg_x')).rejects.toMatchObject({ code: 'ETHHOOK_ERR_DEAD_LETTER_SUPERSEDED' });
        expect(await outbox.replayDeadLetter('msg_z')).toMatchObject({ id: 'msg_z', attempt: 0, nextAttemptAt: T0 + 10 });
      } finally {
        await outbox.close();
      }
    });
  });

  it('refuses a store with a sublevel it does not know, before it writes anything', async () => {
    const dir = join(root, 'unknown');
    const db = await openDb(dir);
    await sublevel<string>(db, 'mystery').put('k', 'v');
    await db.close();
    const schema = `${target.schema}_unknown`;
    await expect(copyLevelToPostgres({ levelDir: dir, url: target.url, schema, ...quiet() })).rejects.toThrow(
      /does not know how to copy: mystery .*nothing was copied/,
    );
    const client = new pg.Client({ connectionString: target.url });
    await client.connect();
    try {
      expect((await client.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [schema])).rowCount).toBe(0);
    } finally {
      await client.end();
    }
  });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The CLI as operators run it: a child process through bin/ethhook.mjs, with only PATH from the environment, plus `env`. */
function ethhook(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['bin/ethhook.mjs', ...args],
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
      },
    );
  });
}

describe('ethhook store copy', () => {
  it('copies from the data dir, prints a count per kind and one JSON summary as its last line, and never the password', async () => {
    const run = await ethhook(['store', 'copy', '--from', `level:${dataDir}`, '--to', 'postgres:', '--schema', cliTarget.schema], {
      ETHHOOK_STORE__URL: cliTarget.url,
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`copying level:${dbDir} into schema ${cliTarget.schema} on postgres:${redactUrl(cliTarget.url)}`);
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}endpoints +1$/));
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}jobs +4 \(1 held, 4 new\)$/));
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}dead letters +2 \(1 superseded, 2 new\)$/));
    expect(run.stdout).toContain('master key');
    const summary = JSON.parse(lines.at(-1)!) as StoreCopySummary;
    expect(summary).toMatchObject({
      from: `level:${dbDir}`,
      schema: cliTarget.schema,
      migrated: first.migrated,
      kv: first.kv,
      jobs: first.jobs,
    });
    const password = new URL(cliTarget.url).password;
    if (password !== '') expect(run.stdout + run.stderr).not.toContain(password);
    const [kv, jobs, dead] = (await tables(cliTarget.schema)) as unknown[][];
    expect([kv!.length, jobs!.length, dead!.length]).toEqual([Object.values(first.kv).reduce((a, b) => a + b), 4, 2]);
  }, 90_000);

  it('refuses a store a running process holds, saying so', async () => {
    const held = await openDb(dbDir);
    try {
      const run = await ethhook([
        'store',
        'copy',
        '--from',
        `level:${dataDir}`,
        '--to',
        `postgres:${cliTarget.url}`,
        '--schema',
        cliTarget.schema,
      ]);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`the LevelDB store ${dbDir} is held by a running node`);
      expect(run.stderr).toContain('stop the node, then copy its store [ETHHOOK_ERR_STORE_LOCKED]');
      expect(run.stdout).not.toContain('{');
    } finally {
      await held.close();
    }
  }, 90_000);

  it('refuses a directory without a store, and a command line without --from or --to', async () => {
    const to = `postgres:${cliTarget.url}`;
    const [none, noFrom, noTo, noPrefix, noUrl, badSchema] = await Promise.all([
      ethhook(['store', 'copy', '--from', `level:${root}`, '--to', to]),
      ethhook(['store', 'copy', '--to', to]),
      ethhook(['store', 'copy', '--from', `level:${dataDir}`]),
      ethhook(['store', 'copy', '--from', dataDir, '--to', to]),
      ethhook(['store', 'copy', '--from', `level:${dataDir}`, '--to', 'postgres:']),
      ethhook(['store', 'copy', '--from', `level:${dataDir}`, '--to', to, '--schema', 'Bad-Name']),
    ]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`no LevelDB store in ${root}`);
    for (const run of [noFrom, noTo, noPrefix, noUrl, badSchema]) expect(run.code).toBe(2);
    expect(noFrom.stderr).toContain('needs --from level:DIR');
    expect(noTo.stderr).toContain('needs --to postgres:URL');
    expect(noUrl.stderr).toContain('ETHHOOK_STORE__URL, which is not set');
    expect(badSchema.stderr).toContain('--schema must be a lower-case SQL identifier');
  }, 90_000);
});
