/**
 * The admin API's route table. A route is plain data: method, path pattern, the role it needs, zod
 * schemas for its body and query, an optional audit action, and a handler. Other modules
 * (`/v1/endpoints`, `/v1/subscriptions`, the chain and governance routes) export arrays of routes and hand
 * them to the admin behaviour; the server (server.ts) does authentication, parsing, errors and audit for all of them.
 *
 * - Patterns are literal segments and `:name` parameters (`/v1/endpoints/:id`); params are
 *   URI-decoded. A trailing slash is ignored. `HEAD` is served by the `GET` route.
 * - A handler returns `{ status?, json }` or `{ status?, text, contentType }`; a handler that answers
 *   on `res` itself (a stream) returns nothing.
 * - Handlers throw `EthhookError`s; their catalog status becomes the HTTP status.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import type { Logger } from '../../runtime/log.ts';
import type { Principal, RouteAuth } from './auth.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RouteRequest<B = unknown, Q = unknown> {
  params: Readonly<Record<string, string>>;
  body: B;
  query: Q;
  /** Null on public routes. */
  principal: Principal | null;
  log: Logger;
  req: IncomingMessage;
  res: ServerResponse;
}

export type RouteResult =
  | { status?: number; json: unknown; headers?: Record<string, string> }
  | { status?: number; text: string; contentType: string; headers?: Record<string, string> }
  | void;

export interface Route<B = unknown, Q = unknown> {
  method: HttpMethod;
  path: string;
  auth: RouteAuth;
  body?: z.ZodType<B>;
  query?: z.ZodType<Q>;
  /** Audited routes log one `audit: true` line per request, whatever its outcome. */
  audit?: { action: string; target?(input: { body: B; params: Readonly<Record<string, string>> }): string | undefined };
  handle(request: RouteRequest<B, Q>): RouteResult | Promise<RouteResult>;
}

/** Keeps the body and query types of one route tied to its handler. */
export function defineRoute<B = undefined, Q = undefined>(route: Route<B, Q>): Route {
  return route;
}

export type RouteMatch =
  | { kind: 'route'; route: Route; params: Record<string, string> }
  | { kind: 'method-not-allowed'; allow: HttpMethod[] }
  | { kind: 'not-found' };

interface CompiledRoute {
  route: Route;
  segments: string[];
}

export class RouteTable {
  private readonly routes: CompiledRoute[] = [];

  constructor(routes: readonly Route[] = []) {
    this.add(routes);
  }

  add(routes: readonly Route[]): void {
    for (const route of routes) {
      const segments = splitPath(route.path);
      const clash = this.routes.find((r) => r.route.method === route.method && r.segments.join('/') === segments.join('/'));
      if (clash) throw new TypeError(`admin route ${route.method} ${route.path} is defined twice`);
      this.routes.push({ route, segments });
    }
  }

  match(method: string, pathname: string): RouteMatch {
    const wanted = method === 'HEAD' ? 'GET' : method;
    const parts = splitPath(pathname);
    const allow: HttpMethod[] = [];
    for (const { route, segments } of this.routes) {
      const params = matchSegments(segments, parts);
      if (params === undefined) continue;
      if (route.method === wanted) return { kind: 'route', route, params };
      allow.push(route.method);
    }
    return allow.length > 0 ? { kind: 'method-not-allowed', allow } : { kind: 'not-found' };
  }

  /** Methods served at a path (for `Allow` and CORS preflight answers). */
  methodsAt(pathname: string): HttpMethod[] {
    const parts = splitPath(pathname);
    return this.routes.filter((r) => matchSegments(r.segments, parts) !== undefined).map((r) => r.route.method);
  }
}

function splitPath(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, segment] of pattern.entries()) {
    const part = parts[i]!;
    if (segment.startsWith(':')) {
      try {
        params[segment.slice(1)] = decodeURIComponent(part);
      } catch {
        return undefined;
      }
    } else if (segment !== part) {
      return undefined;
    }
  }
  return params;
}
