/**
 * The LevelDB outbox's dead letters: jobs parked after their last attempt, with the reason, until an
 * operator replays them. Sublevels, written in the outbox's batches (the job's delete and its letter
 * land together):
 *   outbox-dead             <jobId>                           -> DeadLetter
 *   outbox-dead-by-time     <deadAt 15d>!<jobId>              -> jobId
 *   outbox-dead-by-endpoint <endpointId>!<deadAt 15d>!<jobId> -> jobId
 *
 * `count` is kept in memory (counted once at open, then maintained by the outbox's writes), so the
 * dead-letter gauge costs nothing. `list` reads an index range and then the letters in one read (db.ts `readMany`);
 * `replayable` walks an endpoint's letters in chunks of REPLAY_CHUNK, leaving out the superseded ones
 * (src/store/outbox/contract.ts).
 */
import { padNumber, PREFIX_END } from '../../keys.ts';
import type { DeadLetterQuery } from '../../outbox/contract.ts';
import { replayable, type DeadLetter } from '../../outbox/job.ts';
import { readMany, sublevel, type BatchOp, type Db } from '../db.ts';

/** Letters read per step of a replay of an endpoint's dead letters. */
export const REPLAY_CHUNK = 500;

export class DeadLetters {
  /** Dead letters stored. */
  count = 0;
  /** The letters' key prefix: an enqueue reads them raw at the root, beside the jobs. */
  readonly prefix: string;
  private readonly letters;
  private readonly byTime;
  private readonly byEndpoint;

  constructor(db: Db) {
    this.letters = sublevel<DeadLetter>(db, 'outbox-dead');
    this.prefix = this.letters.prefix;
    this.byTime = sublevel<string>(db, 'outbox-dead-by-time');
    this.byEndpoint = sublevel<string>(db, 'outbox-dead-by-endpoint');
  }

  /** Counts the stored letters: once, at open. */
  async countStored(): Promise<void> {
    for await (const _ of this.letters.keys()) this.count++;
  }

  get(id: string): Promise<DeadLetter | undefined> {
    return this.letters.get(id);
  }

  /** Parked at or after `since` (ms, default 0), oldest first, optionally of one endpoint. */
  async list(options: DeadLetterQuery = {}): Promise<DeadLetter[]> {
    const since = padNumber(options.since ?? 0);
    const limit = options.limit ?? 100;
    const ids =
      options.endpointId === undefined
        ? await this.byTime.values({ gte: since, limit }).all()
        : await this.byEndpoint.values({ gte: `${options.endpointId}!${since}`, lt: `${options.endpointId}!${PREFIX_END}`, limit }).all();
    if (ids.length === 0) return [];
    return (await readMany<DeadLetter>(this.letters, ids)).filter((d): d is DeadLetter => d !== undefined);
  }

  /** The replayable letters of `endpointId` parked at or after `since`, a chunk at a time, oldest first. */
  async *replayable(endpointId: string, since = 0): AsyncGenerator<DeadLetter[]> {
    const prefix = `${endpointId}!`;
    let from = `${prefix}${padNumber(since)}`;
    for (;;) {
      const entries = await this.byEndpoint.iterator({ gte: from, lt: `${prefix}${PREFIX_END}`, limit: REPLAY_CHUNK }).all();
      if (entries.length === 0) return;
      const letters = (
        await readMany<DeadLetter>(
          this.letters,
          entries.map(([, id]) => id),
        )
      ).filter(replayable);
      if (letters.length > 0) yield letters;
      from = `${entries[entries.length - 1]![0]}\x00`;
    }
  }

  /** Every stored letter's JSON text, in id order (an export). */
  stored(): AsyncIterable<Buffer> {
    return this.letters.values<string, Buffer>({ valueEncoding: 'buffer' });
  }

  /** The operations that park `letter`. */
  putOps(letter: DeadLetter): BatchOp[] {
    const at = padNumber(letter.deadAt);
    return [
      { type: 'put', sublevel: this.letters, key: letter.id, value: letter },
      { type: 'put', sublevel: this.byTime, key: `${at}!${letter.id}`, value: letter.id },
      { type: 'put', sublevel: this.byEndpoint, key: `${letter.job.endpointId}!${at}!${letter.id}`, value: letter.id },
    ];
  }

  /** The operation that rewrites a parked letter (its indexes unchanged: marked superseded). */
  updateOp(letter: DeadLetter): BatchOp {
    return { type: 'put', sublevel: this.letters, key: letter.id, value: letter };
  }

  /** The operations that take `letter` out (replayed). */
  delOps(letter: DeadLetter): BatchOp[] {
    const at = padNumber(letter.deadAt);
    return [
      { type: 'del', sublevel: this.letters, key: letter.id },
      { type: 'del', sublevel: this.byTime, key: `${at}!${letter.id}` },
      { type: 'del', sublevel: this.byEndpoint, key: `${letter.job.endpointId}!${at}!${letter.id}` },
    ];
  }
}
