// Attempt records are checked by hand on the hot write path (AttemptLog.putOp), not parsed with zod:
// over random records, valid and not, putOp accepts exactly what attemptRecordSchema accepts and
// stores exactly the schema's fields.
import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttemptLog, attemptRecordSchema, type AttemptRecord } from '../../src/store/attempts.ts';
import { openDb, type Db } from '../../src/store/db.ts';

let dir: string;
let db: Db;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ethhook-attempts-prop-'));
  db = await openDb(dir);
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

describe('AttemptLog.putOp', () => {
  it('accepts exactly what attemptRecordSchema accepts, and stores only its fields', () => {
    const log = new AttemptLog(db);
    fc.assert(
      fc.property(record, (r) => {
        const parsed = attemptRecordSchema.safeParse(r);
        let op: ReturnType<AttemptLog['putOp']> | undefined;
        let error: unknown;
        try {
          op = log.putOp(r as unknown as AttemptRecord);
        } catch (err) {
          error = err;
        }
        expect(op !== undefined).toBe(parsed.success);
        if (parsed.success) expect(asStored((op as { value: unknown }).value)).toEqual(asStored(parsed.data));
        else expect(error).toMatchObject({ code: 'ETHHOOK_ERR_INVALID_INPUT' });
      }),
      { numRuns: 2000 },
    );
  });
});
