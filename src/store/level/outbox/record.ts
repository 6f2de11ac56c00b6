/**
 * How the LevelDB outbox stores a job: the sublevels and their keys, and the job record's bytes.
 *
 * Sublevels (the whole layout, with the dead letters' own: dead-letters.ts):
 *   outbox-jobs             <jobId>                         -> Job (its body spliced in: below)
 *   outbox-due              <nextAttemptAt 15d>!<jobId>     -> endpointId (the Deliverer's scan order)
 *   outbox-held             <jobId>                         -> Held[] (the jobs waiting for that job to leave)
 *
 * A job's record is its body (the payload's JSON, UTF-8) spliced as the last field into the rest of
 * the job's JSON (`encodeWithBody`): the same value the JSON encoding would write, with the body's
 * bytes at its end, so that `bodyOf(job)` serves them whether this instance wrote the job or read it
 * back (`bodyIn`). The payload is serialized and encoded once per job, not for the store and again for
 * every attempt.
 */
import { EthhookError } from '../../../runtime/errors.ts';
import { padNumber } from '../../keys.ts';
import type { Job } from '../../outbox/job.ts';

export const JOBS_SUBLEVEL = 'outbox-jobs';
export const DUE_SUBLEVEL = 'outbox-due';
export const HELD_SUBLEVEL = 'outbox-held';

/** A job held until the job it follows leaves the outbox: what making it due writes and counts. */
export interface Held {
  id: string;
  /** Its nextAttemptAt, the time in its due key. */
  at: number;
  endpointId: string;
}

/** Where the job id starts in a due-index key (after the 15-digit time and `!`). */
export const DUE_ID_AT = 16;

/** A job's key in the due index: its due time, then its id. */
export function dueKey(job: Pick<Job, 'id' | 'nextAttemptAt'>): string {
  return `${padNumber(job.nextAttemptAt)}!${job.id}`;
}

/** A JSON value read as bytes, or undefined when absent. */
export function decoded<T>(value: Buffer | undefined): T | undefined {
  return value === undefined ? undefined : (JSON.parse(value.toString('utf8')) as T);
}

const PAYLOAD_FIELD = Buffer.from('"payload":');

/**
 * The body in a stored record (`encodeWithBody`): the bytes after the first `"payload":` and before the
 * closing brace. The first occurrence is the field itself: the other fields come before it, and a JSON
 * string cannot hold that text (its quotes would be escaped).
 */
export function bodyIn(record: Buffer): Buffer {
  const at = record.indexOf(PAYLOAD_FIELD);
  if (at < 0 || record[record.length - 1] !== 0x7d)
    throw new EthhookError('ETHHOOK_ERR_INVALID_INPUT', 'stored job record without its payload', {});
  return record.subarray(at + PAYLOAD_FIELD.length, record.length - 1);
}

/** The job's JSON with `body` as its payload: `{...the other fields,"payload":<body>}`, UTF-8. */
export function encodeWithBody(job: Job, body: Buffer): Buffer {
  const rest = JSON.stringify({ ...job, payload: undefined });
  const head = `${rest.slice(0, -1)},"payload":`;
  const headLength = Buffer.byteLength(head);
  const value = Buffer.allocUnsafe(headLength + body.length + 1);
  value.write(head, 0);
  body.copy(value, headLength);
  value[value.length - 1] = 0x7d; // }
  return value;
}

/**
 * Whether a stored record ends with its payload (written by `encodeWithBody`), so that its body is its
 * tail: a record whose payload is not its last field has no body at its end, and its payload is
 * encoded again, so a webhook never carries the fields after it.
 */
export function payloadIsLast(job: Job): boolean {
  const fields = Object.keys(job);
  return fields[fields.length - 1] === 'payload';
}
