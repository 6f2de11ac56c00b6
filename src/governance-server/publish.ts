/**
 * The reference server's publishing endpoint, so that operators (and drills) can publish changes to a
 * running server: `POST /messages` with `Authorization: Bearer <token>` and a JSON body
 * `{ "type": "<governance type>", "payload": { ... } }` appends one message — validated with the
 * protocol's schemas, signed with the server's current key, written to its log, streamed to every node —
 * and answers `201 { "seq": n }`. `key.rotate` is refused here (it needs the new key's file: use
 * `rotateKey`).
 *
 * Enabled only with a token (`--publish-token-file`, at least 16 characters); without one, and on every
 * other path, a plain HTTP request gets the 426 "connect with a WebSocket" answer it always got.
 * Errors are JSON `{ error: { code, message, field? } }`: 401 missing or wrong token (compared in
 * constant time, never logged), 405 another method, 413 a body over 256 KiB, 400 a body that is not
 * JSON, an unknown type (`field: "type"`) or a payload the nodes would reject (`field: "payload.<path>"`).
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { GOVERNANCE_TYPES, parsePayload, type GovernanceType } from '../governance-protocol/protocol.ts';
import type { Logger } from '../runtime/log.ts';

export const PUBLISH_PATH = '/messages';
export const MIN_PUBLISH_TOKEN_LENGTH = 16;
const MAX_BODY_BYTES = 256 * 1024;

const publishableTypes = GOVERNANCE_TYPES.filter((t) => t !== 'key.rotate') as [GovernanceType, ...GovernanceType[]];
const bodySchema = z.strictObject({ type: z.enum(publishableTypes), payload: z.unknown() });

export interface PublishOptions {
  token: string;
  append: (type: GovernanceType, payload: unknown) => Promise<number>;
  logger?: Logger;
}

/** Handles the request when it is for the publishing endpoint (true), or leaves it (false). */
export function handlePublish(req: IncomingMessage, res: ServerResponse, options: PublishOptions): boolean {
  if (new URL(req.url ?? '/', 'http://x').pathname !== PUBLISH_PATH) return false;
  if (req.method !== 'POST') {
    fail(res, 405, 'ETHHOOK_ERR_INVALID_INPUT', `use POST ${PUBLISH_PATH}`);
    return true;
  }
  if (!authorized(req.headers.authorization, options.token)) {
    req.resume();
    fail(res, 401, 'ETHHOOK_ERR_ADMIN_UNAUTHORIZED', 'a bearer token is missing or wrong');
    return true;
  }
  void readBody(req).then(
    async (text) => {
      if (text === null) return fail(res, 413, 'ETHHOOK_ERR_INVALID_INPUT', `the body is over ${MAX_BODY_BYTES} bytes`);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        return fail(res, 400, 'ETHHOOK_ERR_INVALID_INPUT', 'the body is not JSON');
      }
      const body = bodySchema.safeParse(json);
      if (!body.success) {
        const issue = body.error.issues[0];
        return fail(res, 400, 'ETHHOOK_ERR_INVALID_INPUT', issue?.message ?? 'invalid body', issue?.path.join('.') || undefined);
      }
      const payload = parsePayload(body.data.type, body.data.payload);
      if (!payload.success) {
        const issue = payload.error.issues[0];
        return fail(
          res,
          400,
          'ETHHOOK_ERR_GOVERNANCE_MESSAGE_INVALID',
          `invalid ${body.data.type} payload: ${issue?.message ?? ''}`,
          ['payload', ...(issue?.path ?? [])].join('.'),
        );
      }
      try {
        const seq = await options.append(body.data.type, body.data.payload);
        res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ seq }));
      } catch (err) {
        options.logger?.error({ err: (err as Error).message, type: body.data.type }, 'governance server: publishing failed');
        fail(res, 500, 'ETHHOOK_ERR_GOVERNANCE_SERVER', `publishing failed: ${(err as Error).message}`);
      }
    },
    () => fail(res, 400, 'ETHHOOK_ERR_INVALID_INPUT', 'the body could not be read'),
  );
  return true;
}

function authorized(header: string | undefined, token: string): boolean {
  const given = header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : '';
  // Hashes of equal length: the comparison takes the same time whatever was sent.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(token).digest();
  return given.length > 0 && timingSafeEqual(a, b);
}

/** The body as text, or null past MAX_BODY_BYTES (the rest is not read). */
function readBody(req: IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.removeAllListeners('data');
        req.resume();
        resolve(null);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function fail(res: ServerResponse, status: number, code: string, message: string, field?: string): void {
  if (res.headersSent) return;
  const error = field === undefined ? { code, message } : { code, message, field };
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error }));
}
