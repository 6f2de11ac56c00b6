// Attempt records are checked by hand on the hot write path (AttemptLog.check), not parsed with zod:
// over random records, valid and not, check accepts exactly what attemptRecordSchema accepts and keeps
// exactly the schema's fields. And the pages keep exactly each endpoint's newest records, and no more
// than the retention bound of them.
import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttemptLog, attemptRecordSchema, PAGE_MAX, type AttemptRecord } from '../../src/store/attempts.ts';
import { openDb, type Db } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';

let dir: string;
let db: Db;
let kv: LevelKv;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ethhook-attempts-prop-'));
  db = await openDb(dir);
  kv = new LevelKv(db);
});

afterAll(async () => {
  await db.close();
  await rm(dir, { recursive: true, force: true });
});

const anyNumber = fc.oneof(
  fc.integer({ min: -5, max: 2_000_000_000_000 }),
  fc.double({ noDefaultInfinity: false }),
  fc.constantFrom(Number.MAX_SAFE_INTEGER + 2, -0, 0.5),
);
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
const anyValue = fc.oneof(fc.string({ maxLength: 3 }), anyNumber, fc.constant(null), fc.boolean());

const record = fc.record(
  {
    jobId: fc.oneof(fc.string({ maxLength: 8 }), anyValue),
    endpointId: fc.oneof(fc.string({ maxLength: 8 }), anyValue),
    at: anyNumber,
    attempt: maybe(fc.oneof(fc.integer({ min: -2, max: 20 }), anyNumber)),
    status: maybe(fc.oneof(fc.integer({ min: 100, max: 599 }), anyNumber)),
    durationMs: fc.oneof(fc.double({ min: 0, max: 1e6, noNaN: true }), anyNumber),
    error: maybe(fc.oneof(fc.string({ maxLength: 20 }), fc.string({ minLength: 1995, maxLength: 2005 }), anyValue)),
    extra: maybe(fc.string()),
  },
  { requiredKeys: [] },
);

/** What LevelDB's JSON encoding keeps of a value. */
const asStored = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

describe('AttemptLog.check', () => {
  it('accepts exactly what attemptRecordSchema accepts, and keeps only its fields', () => {
    const log = new AttemptLog(kv);
    fc.assert(
      fc.property(record, (r) => {
        const parsed = attemptRecordSchema.safeParse(r);
        let checked: AttemptRecord | undefined;
        let error: unknown;
        try {
          checked = log.check(r as unknown as AttemptRecord);
        } catch (err) {
          error = err;
        }
        expect(checked !== undefined).toBe(parsed.success);
        if (parsed.success) expect(asStored(checked)).toEqual(asStored(parsed.data));
        else expect(error).toMatchObject({ code: 'ETHHOOK_ERR_INVALID_INPUT' });
      }),
      { numRuns: 2000 },
    );
  });
});

// The pages: whatever the sequence of writes over a few endpoints (in batches, across reopenings of
// the log), each endpoint lists exactly its newest keepPerEndpoint records, newest first, and stores
// fewer than 1.5 x keep + PAGE_MAX of them once old pages are removed.
describe('AttemptLog pages', () => {
  it('keeps exactly the newest records of each endpoint, across batches and reopenings', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.array(
          fc.record({
            endpoint: fc.constantFrom('a', 'b'),
            batch: fc.oneof(fc.integer({ min: 1, max: 9 }), fc.constant(PAGE_MAX + 3)),
            reopen: fc.boolean(),
          }),
          { maxLength: 12 },
        ),
        async (keep, writes) => {
          const prefix = `ep_ring${run++}_`;
          let log = new AttemptLog(kv, keep);
          const written: Record<string, AttemptRecord[]> = { a: [], b: [] };
          let at = 1_700_000_000_000;
          for (const w of writes) {
            if (w.reopen) {
              await log.idle();
              log = new AttemptLog(kv, keep);
            }
            const endpointId = `${prefix}${w.endpoint}`;
            const records = Array.from({ length: w.batch }, (_, i) => ({ jobId: `msg_${at}_${i}`, endpointId, at: at++, durationMs: 1 }));
            await log.ready([endpointId]);
            await kv.batch(log.pageOps(endpointId, records));
            log.written();
            written[w.endpoint]!.push(...records);
          }
          for (const e of ['a', 'b'] as const) {
            const listed = await new AttemptLog(kv, keep).list(`${prefix}${e}`, { limit: 1000 });
            const expected = written[e]!.slice(-keep)
              .reverse()
              .map((r) => asStored(r));
            expect(listed.map((r) => asStored(r))).toEqual(expected);
          }
          await log.idle();
          for (const e of ['a', 'b'] as const) {
            const pages = await db
              .sublevel<string, { r: unknown[] }>('attempts', { valueEncoding: 'json' })
              .values({ gt: `${prefix}${e}!`, lt: `${prefix}${e}!\xff` })
              .all();
            const stored = pages.reduce((sum, p) => sum + p.r.length, 0);
            expect(stored).toBeLessThan(1.5 * keep + PAGE_MAX);
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
