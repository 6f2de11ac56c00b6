/**
 * The operator console (src/console/) on the admin port, and what the admin API gives it:
 *
 *   GET /console                  public  the page (HTML, no data in it: it asks for a token and reads the API)
 *   GET /console/assets/:name     public  its script and stylesheet (content-hashed names)
 *   GET /admin/whoami             read    { role, fingerprint }: what the presented token may do
 *   GET /admin/console/snapshot   read    everything the page shows at once (src/console/snapshot.ts)
 *   GET /admin/console/series     read    the last 15 minutes' time series (src/console/series.ts)
 *
 * Console files answer with a Content-Security-Policy allowing only the node's own origin
 * (src/console/assets.ts), `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`, and cache headers:
 * `no-cache` for the page, `immutable` for the hashed assets. An unknown asset is a 404 like any unknown
 * route. The page acts only through the audited routes every client uses (/admin/actors/*,
 * /v1/endpoints/*, /v1/dead-letters/*, /admin/governance/reconnect).
 */
import { EthhookError } from '../../runtime/errors.ts';
import { CONSOLE_CSP, consoleFiles, type ConsoleFile } from '../../console/assets.ts';
import type { ConsoleSeries } from '../../console/series.ts';
import { consoleSnapshot, type ConsoleSnapshotDeps } from '../../console/snapshot.ts';
import { defineRoute, type Route, type RouteResult } from './router.ts';

export interface ConsoleRoutesDeps extends ConsoleSnapshotDeps {
  series: Pick<ConsoleSeries, 'answer'>;
}

export function consoleRoutes(deps: ConsoleRoutesDeps): Route[] {
  return [
    defineRoute({
      method: 'GET',
      path: '/console',
      auth: 'public',
      handle: async () => serve((await consoleFiles()).index),
    }),
    defineRoute({
      method: 'GET',
      path: '/console/assets/:name',
      auth: 'public',
      handle: async ({ params }) => {
        const file = (await consoleFiles()).assets.get(params.name!);
        if (file === undefined) throw new EthhookError('ETHHOOK_ERR_ADMIN_ROUTE_NOT_FOUND', `no console asset ${params.name}`);
        return serve(file);
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/admin/whoami',
      auth: 'read',
      handle: ({ principal }) => ({ json: { role: principal!.role, fingerprint: principal!.fingerprint } }),
    }),
    defineRoute({
      method: 'GET',
      path: '/admin/console/snapshot',
      auth: 'read',
      handle: async ({ principal }) => ({ json: await consoleSnapshot(deps, principal!.role) }),
    }),
    defineRoute({ method: 'GET', path: '/admin/console/series', auth: 'read', handle: () => ({ json: deps.series.answer() }) }),
  ];
}

function serve(file: ConsoleFile): RouteResult {
  return {
    text: file.body,
    contentType: file.contentType,
    headers: {
      'Cache-Control': file.cacheControl,
      'Content-Security-Policy': CONSOLE_CSP,
      'X-Frame-Options': 'DENY',
      'Referrer-Policy': 'no-referrer',
    },
  };
}
