/**
 * The admin API's HTTP server (node `http`). For every request, in this order:
 *   1. common headers (`Cache-Control: no-store`, `X-Content-Type-Options: nosniff`) and CORS when the
 *      `Origin` is in `corsOrigins` (`*` allows any); `OPTIONS` answers preflights with 204;
 *   2. route lookup: 404 ETHHOOK_ERR_ADMIN_ROUTE_NOT_FOUND, 405 with `Allow`;
 *   3. authentication for non-public routes: 401 (with `WWW-Authenticate: Bearer`) without a known token,
 *      403 when its role is too low — before any body is read;
 *   4. query and body through the route's zod schemas: bodies must be sent as `application/json` (415
 *      otherwise, a missing Content-Type included), at most `maxBodyBytes` (413), and a bad field gives
 *      400 with `field`; a body the client abandons half-way is ETHHOOK_ERR_ADMIN_REQUEST_ABORTED (400,
 *      logged at debug like any client error, never as a failure of the node);
 *   5. the handler; thrown `EthhookError`s answer with their catalog status and `{ error: { code,
 *      message, field? } }`, anything else with a generic 500 (details only in the log);
 *   6. an audit line for audited routes, and a debug line for every request.
 * Closing stops accepting, lets requests in flight finish for a short grace, then cuts the rest.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { z } from 'zod';
import { formatPath } from '../../config/path.ts';
import { EthhookError, describeError, type ErrorCatalog } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log.ts';
import { roleAllows, type Principal, type TokenTable } from './auth.ts';
import { audit, outcomeOf } from './audit.ts';
import type { Route, RouteResult, RouteTable } from './router.ts';

export interface AdminServerOptions {
  host: string;
  port: number;
  tokens: TokenTable;
  routes: RouteTable;
  corsOrigins: readonly string[];
  maxBodyBytes: number;
  requestTimeoutMs: number;
  log: Logger;
  /** Maps error codes to HTTP statuses. */
  catalog: ErrorCatalog;
  /** Requests in flight get this long to finish when the server closes. Default 1000 ms. */
  closeGraceMs?: number;
  /** Handles HTTP upgrade requests (the WebSocket streams); without it they are refused by node. */
  upgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /**
   * True once the node is draining (a shutdown began): requests other than GET and HEAD answer 503
   * ETHHOOK_ERR_ADMIN_STOPPING, so a client sends them to another instance instead of to a node whose
   * pipeline may already have stopped.
   */
  stopping?: () => boolean;
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

export class AdminServer {
  readonly server: Server;
  private readonly options: AdminServerOptions;

  constructor(options: AdminServerOptions) {
    this.options = options;
    this.server = createServer((req, res) => void this.handle(req, res));
    if (options.upgrade) this.server.on('upgrade', options.upgrade);
    this.server.requestTimeout = options.requestTimeoutMs;
    this.server.headersTimeout = Math.min(options.requestTimeoutMs, 60_000);
  }

  listen(): Promise<AddressInfo> {
    const { host, port } = this.options;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        reject(
          new EthhookError(
            'ETHHOOK_ERR_ADMIN_LISTEN',
            `admin API cannot listen on ${host}:${port}: ${err.code ?? err.message}`,
            { host, port },
            { cause: err },
          ),
        );
      };
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  address(): AddressInfo | null {
    const address = this.server.address();
    return typeof address === 'object' ? address : null;
  }

  async close(): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.closeGraceMs ?? 1000)));
    await Promise.race([closed, grace]);
    clearTimeout(timer);
    this.server.closeAllConnections();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const pathname = queryAt < 0 ? url : url.slice(0, queryAt);
    const search = queryAt < 0 ? '' : url.slice(queryAt + 1);
    let route: Route | undefined;
    let principal: Principal | null = null;
    let target: string | undefined;
    let errorCode: string | undefined;
    try {
      this.commonHeaders(req, res);
      if (method === 'OPTIONS') return this.preflight(req, res, pathname);
      const match = this.options.routes.match(method, pathname);
      if (match.kind === 'not-found') throw new EthhookError('ETHHOOK_ERR_ADMIN_ROUTE_NOT_FOUND', `no route ${method} ${pathname}`);
      if (match.kind === 'method-not-allowed') {
        res.setHeader('Allow', match.allow.join(', '));
        throw new EthhookError('ETHHOOK_ERR_ADMIN_METHOD_NOT_ALLOWED', `${pathname} accepts ${match.allow.join(', ')}`);
      }
      route = match.route;
      principal = this.authenticate(route, req, res);
      if (principal !== null && !roleAllows(principal.role, route.auth)) {
        throw new EthhookError('ETHHOOK_ERR_ADMIN_FORBIDDEN', `this action needs the ${route.auth} role; the token has ${principal.role}`, {
          role: principal.role,
        });
      }
      if (method !== 'GET' && method !== 'HEAD' && this.options.stopping?.() === true) {
        throw new EthhookError(
          'ETHHOOK_ERR_ADMIN_STOPPING',
          'the node is stopping: send this request to another instance, or again once it is back',
        );
      }
      const query = route.query ? await parseInput(route.query, Object.fromEntries(new URLSearchParams(search)), 'query') : undefined;
      const body = route.body ? await parseInput(route.body, await this.readJson(req, res), 'body') : undefined;
      target = route.audit?.target?.({ body, params: match.params });
      const result = await route.handle({ params: match.params, body, query, principal, log: this.options.log, req, res });
      this.respond(res, result);
    } catch (err) {
      errorCode = this.respondError(res, err, route);
    } finally {
      const status = res.statusCode;
      if (route?.audit) {
        audit(this.options.log, {
          action: route.audit.action,
          target,
          who: principal,
          outcome: outcomeOf(status),
          status,
          code: errorCode,
          remote: req.socket.remoteAddress,
        });
      }
      this.options.log.debug(
        { method, path: pathname, status, ms: Math.round(performance.now() - started), role: principal?.role },
        'admin request',
      );
    }
  }

  private commonHeaders(req: IncomingMessage, res: ServerResponse): void {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    const origin = req.headers.origin;
    if (origin === undefined || this.options.corsOrigins.length === 0) return;
    res.setHeader('Vary', 'Origin');
    if (this.options.corsOrigins.includes('*') || this.options.corsOrigins.includes(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
    }
  }

  private preflight(req: IncomingMessage, res: ServerResponse, pathname: string): void {
    const methods = this.options.routes.methodsAt(pathname);
    if (methods.length === 0) throw new EthhookError('ETHHOOK_ERR_ADMIN_ROUTE_NOT_FOUND', `no route at ${pathname}`);
    res.setHeader('Allow', [...methods, 'OPTIONS'].join(', '));
    if (res.hasHeader('Access-Control-Allow-Origin') && req.headers['access-control-request-method'] !== undefined) {
      res.setHeader('Access-Control-Allow-Methods', methods.join(', '));
      res.setHeader('Access-Control-Allow-Headers', 'authorization, content-type');
      res.setHeader('Access-Control-Max-Age', '600');
    }
    res.writeHead(204).end();
  }

  /** The token's principal (null on public routes); 401 without a known token. */
  private authenticate(route: Route, req: IncomingMessage, res: ServerResponse): Principal | null {
    if (route.auth === 'public') return null;
    const principal = this.options.tokens.authenticate(req.headers.authorization);
    if (!principal) {
      res.setHeader('WWW-Authenticate', principal === null ? 'Bearer realm="ethhook", error="invalid_token"' : 'Bearer realm="ethhook"');
      throw new EthhookError(
        'ETHHOOK_ERR_ADMIN_UNAUTHORIZED',
        principal === null ? 'the bearer token is not valid' : 'a bearer token is required (Authorization: Bearer <token>)',
      );
    }
    return principal;
  }

  private async readJson(req: IncomingMessage, res: ServerResponse): Promise<unknown> {
    const type = req.headers['content-type'];
    const bodyless = req.headers['transfer-encoding'] === undefined && Number(req.headers['content-length'] ?? 0) === 0;
    if (bodyless) throw new EthhookError('ETHHOOK_ERR_ADMIN_INVALID_REQUEST', 'the request body is empty; send a JSON object');
    if (type === undefined) {
      throw new EthhookError(
        'ETHHOOK_ERR_ADMIN_UNSUPPORTED_MEDIA_TYPE',
        'the request has no Content-Type; send the body as application/json',
      );
    }
    if (!JSON_TYPE.test(type)) {
      throw new EthhookError('ETHHOOK_ERR_ADMIN_UNSUPPORTED_MEDIA_TYPE', `Content-Type ${type} is not JSON; send application/json`);
    }
    const limit = this.options.maxBodyBytes;
    const tooLarge = () => {
      // The rest of the body stays unread: the connection cannot be reused.
      res.setHeader('Connection', 'close');
      return new EthhookError('ETHHOOK_ERR_ADMIN_BODY_TOO_LARGE', `request bodies are limited to ${limit} bytes`, { limit });
    };
    if (Number(req.headers['content-length'] ?? 0) > limit) throw tooLarge();
    const text = await new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size <= limit) return void chunks.push(chunk);
        req.off('data', onData);
        reject(tooLarge());
      };
      req.on('data', onData);
      req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      // A client that goes away mid-body is not a failure of the node: no 500, no error line.
      const aborted = () =>
        reject(new EthhookError('ETHHOOK_ERR_ADMIN_REQUEST_ABORTED', 'the client closed the connection before the whole body arrived'));
      req.once('error', aborted);
      req.once('close', () => {
        if (!req.complete) aborted();
      });
    });
    if (text.trim() === '') throw new EthhookError('ETHHOOK_ERR_ADMIN_INVALID_REQUEST', 'the request body is empty; send a JSON object');
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new EthhookError('ETHHOOK_ERR_ADMIN_INVALID_REQUEST', `the request body is not valid JSON: ${(err as Error).message}`);
    }
  }

  private respond(res: ServerResponse, result: RouteResult): void {
    if (res.headersSent || res.writableEnded) return;
    if (result === undefined) {
      res.writeHead(204).end();
      return;
    }
    for (const [name, value] of Object.entries(result.headers ?? {})) res.setHeader(name, value);
    if ('json' in result) sendJson(res, result.status ?? 200, result.json);
    else res.writeHead(result.status ?? 200, { 'Content-Type': result.contentType }).end(result.text);
  }

  /** Answers with the error body; returns the code it answered with. */
  private respondError(res: ServerResponse, err: unknown, route: Route | undefined): string {
    const known = err instanceof EthhookError ? err : undefined;
    const status = known ? (this.options.catalog[known.code]?.httpStatus ?? 500) : 500;
    if (status >= 500) this.options.log.error({ err: describeError(err), route: route?.path }, 'admin request failed');
    const code = known?.code ?? 'ETHHOOK_ERR_ADMIN_INTERNAL';
    if (res.headersSent) {
      res.destroy();
      return code;
    }
    const field = typeof known?.context.field === 'string' ? known.context.field : undefined;
    const message = known ? known.message : 'the admin API failed unexpectedly; see the node log';
    sendJson(res, status, { error: { code, message, ...(field !== undefined ? { field } : {}) } });
    return code;
  }
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) }).end(body);
}

/**
 * Parses with the route's schema (asynchronously: a check may load what it needs, as a subscription's
 * abi check loads viem); the first problem becomes a 400 naming its field.
 */
async function parseInput<T>(schema: z.ZodType<T>, input: unknown, where: 'body' | 'query'): Promise<T> {
  const result = await schema.safeParseAsync(input, {
    error: (issue) => (issue.code === 'invalid_type' && issue.input === undefined ? 'required' : undefined),
  });
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
  const field = formatPath(path);
  const message = issue.code === 'unrecognized_keys' ? 'unknown field' : issue.message;
  throw new EthhookError('ETHHOOK_ERR_ADMIN_INVALID_REQUEST', `${where}${field ? `.${field}` : ''}: ${message}`, field ? { field } : {});
}
