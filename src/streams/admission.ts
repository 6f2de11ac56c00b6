/**
 * Who may open a stream, checked in this order before anything is streamed (and, for WebSockets,
 * before the upgrade, so a refusal is a plain HTTP answer):
 *
 *   1. the bearer token, from `Authorization: Bearer <token>` or, for browsers' WebSocket and
 *      EventSource that cannot set headers, `?access_token=<token>` (the header wins when both are
 *      given). No token or an unknown one: 401 ETHHOOK_ERR_ADMIN_UNAUTHORIZED with `WWW-Authenticate`;
 *      a role below `read`: 403 ETHHOOK_ERR_ADMIN_FORBIDDEN (today every role may read);
 *   2. the `Origin` header, when present, must be in `admin.corsOrigins` (`*` allows any): browsers
 *      do not apply CORS to WebSockets, so the server must. Else 403 ETHHOOK_ERR_STREAM_ORIGIN_FORBIDDEN;
 *   3. the filters (filter.ts): 400 ETHHOOK_ERR_ADMIN_INVALID_REQUEST with `field`;
 *   4. the transport's connection limit: 503 ETHHOOK_ERR_STREAM_LIMIT with `Retry-After`.
 *
 * Tokens in URLs end up in proxy logs: prefer the header, and note that this module never logs the
 * query string.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { roleAllows, type Principal, type TokenTable } from '../actors/admin/auth.ts';
import { adminErrorCodes } from '../actors/admin/errors.ts';
import { isEthhookError } from '../runtime/errors.ts';
import { streamErrorCodes } from './errors.ts';
import { parseStreamQuery, type StreamFilter } from './filter.ts';

export interface Refusal {
  status: number;
  code: string;
  message: string;
  field?: string;
  headers?: Record<string, string>;
}

export type Admission = { ok: true; principal: Principal; filter: StreamFilter } | { ok: false; refusal: Refusal };

export interface AdmissionPolicy {
  tokens: TokenTable;
  corsOrigins: readonly string[];
}

export interface ConnectionLimit {
  /** Connections open now on this transport. */
  open: number;
  max: number;
  /** For the message: `WebSocket` or `SSE`. */
  label: string;
}

/** Retry hint on 503s: the limit frees up as clients leave. */
const RETRY_AFTER_S = '5';

const STATUS: Readonly<Record<string, number>> = Object.fromEntries(
  Object.entries({ ...adminErrorCodes, ...streamErrorCodes }).map(([code, info]) => [code, info.httpStatus]),
);

export function refusal(
  code: keyof typeof adminErrorCodes | keyof typeof streamErrorCodes,
  message: string,
  extra: Pick<Refusal, 'field' | 'headers'> = {},
): Refusal {
  return { status: STATUS[code]!, code, message, ...extra };
}

export function admit(req: IncomingMessage, search: string, policy: AdmissionPolicy, limit: ConnectionLimit): Admission {
  const params = new URLSearchParams(search);
  const principal = authenticate(policy.tokens, req.headers.authorization, params.get('access_token'));
  if (!('role' in principal)) return { ok: false, refusal: principal };
  if (!roleAllows(principal.role, 'read')) {
    return { ok: false, refusal: refusal('ETHHOOK_ERR_ADMIN_FORBIDDEN', `streams need the read role; the token has ${principal.role}`) };
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !policy.corsOrigins.includes('*') && !policy.corsOrigins.includes(origin)) {
    return { ok: false, refusal: refusal('ETHHOOK_ERR_STREAM_ORIGIN_FORBIDDEN', `origin ${origin} is not allowed (admin.corsOrigins)`) };
  }
  let filter: StreamFilter;
  try {
    filter = parseStreamQuery(search).filter;
  } catch (err) {
    if (!isEthhookError(err)) throw err;
    const field = typeof err.context.field === 'string' ? err.context.field : undefined;
    return { ok: false, refusal: refusal('ETHHOOK_ERR_ADMIN_INVALID_REQUEST', err.message, field === undefined ? {} : { field }) };
  }
  if (limit.open >= limit.max) {
    const message = `${limit.label} stream connections are at their limit (${limit.max}); retry later`;
    return { ok: false, refusal: refusal('ETHHOOK_ERR_STREAM_LIMIT', message, { headers: { 'Retry-After': RETRY_AFTER_S } }) };
  }
  return { ok: true, principal, filter };
}

function authenticate(tokens: TokenTable, header: string | undefined, accessToken: string | null): Principal | Refusal {
  const presented = header ?? (accessToken === null ? undefined : `Bearer ${accessToken}`);
  const principal = tokens.authenticate(presented);
  if (principal) return principal;
  const challenge = principal === null ? 'Bearer realm="ethhook", error="invalid_token"' : 'Bearer realm="ethhook"';
  const message =
    principal === null
      ? 'the bearer token is not valid'
      : 'a bearer token is required (Authorization: Bearer <token>, or ?access_token=<token>)';
  return refusal('ETHHOOK_ERR_ADMIN_UNAUTHORIZED', message, { headers: { 'WWW-Authenticate': challenge } });
}

function body(r: Refusal): string {
  return JSON.stringify({ error: { code: r.code, message: r.message, ...(r.field === undefined ? {} : { field: r.field }) } });
}

/** Answers an HTTP request with the refusal. */
export function sendRefusal(res: ServerResponse, r: Refusal): void {
  const text = body(r);
  for (const [name, value] of Object.entries(r.headers ?? {})) res.setHeader(name, value);
  res.writeHead(r.status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) }).end(text);
}

/** Answers an upgrade request with the refusal as plain HTTP, then closes the socket. */
export function refuseUpgrade(socket: Duplex, r: Refusal): void {
  const text = body(r);
  const headers = {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(text)),
    'Cache-Control': 'no-store',
    Connection: 'close',
    ...r.headers,
  };
  const head = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  // Closed once the answer is out: an upgrade socket is ours, and nobody else would ever close it.
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${r.status} ${STATUS_CODES[r.status] ?? ''}\r\n${head}\r\n${text}`);
}
