// Properties of the /v1 admin API's parsers and of attempt paging (fast-check). Paging runs against a
// real AttemptLog on a real LevelDB dir, since its cursor is only as good as the store's key order.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attemptPage } from '../../src/actors/admin/v1/endpoints.ts';
import { AttemptListQuery, DeadLetterListQuery, SubscriptionCreateBody } from '../../src/actors/admin/v1/schemas.ts';
import { AttemptLog } from '../../src/store/attempts.ts';
import { openDb, type Db } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import { subscriptionCreateSchema } from '../../src/store/subscriptions.ts';

let dir: string;
let db: Db;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ethhook-admin-v1-props-'));
  db = await openDb(dir);
});

afterAll(async () => {
  await db?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const hex = (bytes: number) => fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => `0x${Buffer.from(b).toString('hex')}`);
/** A 32-byte topic in either hex case (eth_getLogs takes both). */
const topic = fc.tuple(hex(32), fc.boolean()).map(([t, upper]) => (upper ? `0x${t.slice(2).toUpperCase()}` : t));
const position = fc.oneof(fc.constant(null), topic, fc.array(topic, { maxLength: 4 }));
/** Strings that are not a 32-byte hex topic. */
const notATopic = fc.oneof(
  hex(31),
  hex(33),
  fc.string({ maxLength: 70 }).filter((s) => !/^0x[0-9a-fA-F]{64}$/.test(s)),
);

describe('subscription body', () => {
  // Whatever the API accepts, the store accepts, and stores what it would store from the raw body.
  it('accepts topic filters of up to 4 positions (null, a topic, or up to 4 alternatives; either hex case), storing what the store would from the raw body', () => {
    fc.assert(
      fc.property(fc.array(position, { maxLength: 4 }), (topics) => {
        const body = { endpointId: 'ep_x', chainId: 1, topics };
        const api = SubscriptionCreateBody.safeParse(body);
        expect(api.success).toBe(true);
        expect(subscriptionCreateSchema.parse(api.data)).toEqual(subscriptionCreateSchema.parse(body));
      }),
    );
  });

  // A bad value anywhere is reported at its own position: `topics[i]` or `topics[i][j]`.
  it('names the position of a bad topic', () => {
    fc.assert(
      fc.property(fc.array(position, { minLength: 1, maxLength: 4 }), fc.nat(), notATopic, fc.boolean(), (topics, at, bad, nested) => {
        const i = at % topics.length;
        const broken = [...topics];
        broken[i] = nested ? [bad] : bad;
        const result = SubscriptionCreateBody.safeParse({ endpointId: 'ep_x', chainId: 1, topics: broken });
        expect(result.success).toBe(false);
        expect(result.error!.issues[0]!.path.slice(0, 2)).toEqual(['topics', i]);
      }),
    );
  });
});

describe('time filters', () => {
  // `since` and `before` take ms or ISO 8601, and both name the same instant.
  it('reads milliseconds and ISO 8601 as the same instant', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 8_640_000_000_000 }), (ms) => {
        expect(DeadLetterListQuery.parse({ since: String(ms) }).since).toBe(ms);
        expect(DeadLetterListQuery.parse({ since: new Date(ms).toISOString() }).since).toBe(ms);
        expect(AttemptListQuery.parse({ before: new Date(ms).toISOString() }).before).toBe(ms);
      }),
    );
  });

  it('refuses anything else, naming the field', () => {
    fc.assert(
      fc.property(
        fc.string().filter((s) => !/^\d{1,15}$/.test(s) && Number.isNaN(Date.parse(s))),
        (s) => {
          const result = DeadLetterListQuery.safeParse({ since: s });
          expect(result.success).toBe(false);
          expect(result.error!.issues[0]!.path).toEqual(['since']);
        },
      ),
    );
  });
});

describe('attempt paging', () => {
  // Paging by time visits every record exactly once, newest first, whatever the limit and however many
  // records share a millisecond; a page exceeds the limit only to hold one whole millisecond.
  it('visits every attempt once, in order, for any times and page size', async () => {
    const log = new AttemptLog(new LevelKv(db), 50);
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 0, maxLength: 30 }),
        fc.integer({ min: 1, max: 6 }),
        async (offsets, limit) => {
          const endpointId = `ep_prop${run++}`;
          for (const [i, offset] of offsets.entries()) {
            await log.record({ jobId: `msg_${i}`, endpointId, at: 1_700_000_000_000 + offset, durationMs: 1 });
          }
          const everything = (await log.list(endpointId, { limit: 1000 })).map((r) => r.jobId);
          const seen: string[] = [];
          let before: number | undefined;
          for (let pages = 0; pages <= offsets.length + 1; pages++) {
            const page = await attemptPage(log, endpointId, limit, before);
            const times = new Set(page.data.map((r) => r.at));
            if (page.data.length > limit) expect(times.size).toBe(1);
            seen.push(...page.data.map((r) => r.jobId));
            if (page.next === null) break;
            before = page.next;
          }
          expect(seen).toEqual(everything);
          expect(seen).toHaveLength(offsets.length);
        },
      ),
      { numRuns: 60 },
    );
  });
});
