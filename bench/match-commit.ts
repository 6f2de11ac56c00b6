/**
 * bench:match's commit phase (`--store postgres`): the Matcher's store work per block, on LevelDB and
 * on PostgreSQL in the same run, in logs/s.
 *
 * `commitPhase({ chunks, makeBlocks, matchBlock })`: `chunks` chunks of blocks (`makeBlocks`, the
 * bench's), each block's matches made untimed (`matchBlock`: the jobs and the (log, subscription)
 * records, as the Matcher's `emit` builds them), then committed block after block, timed, into a fresh
 * LevelDB outbox and a fresh PostgreSQL outbox in turn (the same blocks, chunk by chunk, so a burst of
 * outside load hits both alike). Per block, exactly what `emit` asks of the store: the two reads
 * (`MatchStore.existing` for every record's key and `retractions`, at once), then ONE `enqueueBatch`
 * with the jobs and a match-record put per pair (`MatchStore.putOp`). Blocks without a match cost
 * nothing in either (emit returns before the store) and are passed over.
 * PostgreSQL: an embedded server this phase starts and stops (bench/postgres.ts, durability defaults),
 * a migrated schema of its own, the pool's defaults (PgKv, PgOutbox); LevelDB: a directory under
 * os.tmpdir() (LevelKv, LevelOutbox). Each is removed after.
 * Result: logs/s (every log of the blocks committed, matched or not, over the time spent in commits)
 * for each engine, and jobs/s.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import type { ChainBlockMessage } from '../src/actors/matcher/messages.ts';
import { createLogger } from '../src/runtime/log.ts';
import type { Kv, KvOp } from '../src/store/kv.ts';
import { openDb } from '../src/store/level/db.ts';
import { LevelKv } from '../src/store/level/kv.ts';
import { LevelOutbox } from '../src/store/level/outbox/outbox.ts';
import { MatchStore, type MatchRecord } from '../src/store/matches.ts';
import type { OutboxStore } from '../src/store/outbox/contract.ts';
import type { NewJob } from '../src/store/outbox/job.ts';
import { PgKv } from '../src/store/postgres/kv.ts';
import { migrate } from '../src/store/postgres/migrate.ts';
import { PgOutbox } from '../src/store/postgres/outbox.ts';
import { openPgPool } from '../src/store/postgres/pool.ts';
import { dropSchema, startBenchPostgres } from './postgres.ts';

export interface BlockMatches {
  jobs: NewJob[];
  records: MatchRecord[];
}

export interface CommitRun {
  chunks: number;
  makeBlocks: () => ChainBlockMessage[];
  matchBlock: (block: ChainBlockMessage) => BlockMatches;
}

export interface CommitFigures {
  levelLogsPerS: number;
  postgresLogsPerS: number;
  levelJobsPerS: number;
  postgresJobsPerS: number;
  logs: number;
  jobs: number;
}

interface Engine {
  kv: Kv;
  outbox: OutboxStore;
  ms: number;
}

/** One block as the Matcher's emit commits it (see the module header). */
async function commitBlock(engine: Engine, matches: MatchStore, block: ChainBlockMessage, m: BlockMatches): Promise<void> {
  await Promise.all([matches.existing(m.records.map((r) => matches.key(block, r.logIndex, r.subscriptionId))), matches.retractions(block)]);
  const ops: KvOp[] = m.records.map((r) => matches.putOp(block, r));
  await engine.outbox.enqueueBatch(m.jobs, ops);
}

export async function commitPhase(run: CommitRun): Promise<CommitFigures> {
  const logger = createLogger({ level: 'warn' });
  const dir = await mkdtemp(join(tmpdir(), 'ethhook-bench-match-'));
  const db = await openDb(dir);
  const server = await startBenchPostgres();
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const pool = await openPgPool({ url: server.url, schema, logger, registry: new Registry() });
  let pgOutbox: PgOutbox | undefined;
  try {
    await migrate(pool);
    const levelKv = new LevelKv(db);
    const pgKv = new PgKv(pool);
    pgOutbox = await PgOutbox.open(pool, pgKv, { owner: 'bench' });
    const level: Engine = { kv: levelKv, outbox: await LevelOutbox.open(levelKv), ms: 0 };
    const postgres: Engine = { kv: pgKv, outbox: pgOutbox, ms: 0 };
    const levelMatches = new MatchStore(levelKv);
    const pgMatches = new MatchStore(pgKv);
    let logs = 0;
    let jobs = 0;
    for (let c = 0; c < run.chunks; c++) {
      const blocks = run.makeBlocks().map((block) => ({ block, m: run.matchBlock(block) }));
      for (const { block, m } of blocks) {
        logs += block.logs.length;
        jobs += m.jobs.length;
      }
      const withMatches = blocks.filter(({ m }) => m.records.length > 0);
      for (const [engine, matches] of [
        [level, levelMatches],
        [postgres, pgMatches],
      ] as const) {
        const started = performance.now();
        for (const { block, m } of withMatches) await commitBlock(engine, matches, block, m);
        engine.ms += performance.now() - started;
      }
    }
    await level.outbox.idle();
    return {
      levelLogsPerS: logs / (level.ms / 1000),
      postgresLogsPerS: logs / (postgres.ms / 1000),
      levelJobsPerS: jobs / (level.ms / 1000),
      postgresJobsPerS: jobs / (postgres.ms / 1000),
      logs,
      jobs,
    };
  } finally {
    await pgOutbox?.close();
    await pool.close();
    await dropSchema(server.url, schema).catch(() => undefined);
    await server.stop();
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
}
