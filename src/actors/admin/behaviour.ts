/**
 * The Admin actor: the node's HTTP surface as a supervised behaviour. `preStart` resolves the tokens
 * (configured ones, else the generated dev token, see dev-token.ts) and listens; `postStop` closes.
 * A restart therefore rebinds the port, and a port that cannot be bound is a failed start that the
 * supervisor handles like any other.
 *
 * Use one fresh behaviour per incarnation:
 *   { kind: 'worker', name: 'admin', behaviour: () => createAdminBehaviour({ system: () => sys, config: config.admin,
 *     registry, dataDir: config.node.dataDir, routes: [...endpointRoutes] }) }
 * `system` may be a getter because the API listens while the tree is still starting; until it returns
 * the system, `/ready` says "starting" and system routes answer 503.
 *
 * Mailbox: `{ type: 'address' }` replies with the bound address (port 0 picks a free port).
 *
 * `streams` (optional) serves the live event streams (src/streams/) on the same port: built in each
 * preStart with the resolved tokens, its routes join the table, it gets the upgrade requests, and its
 * `close` runs alongside the server's in postStop.
 */
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Registry } from 'prom-client';
import type { AdminConfig } from '../../config/schema.ts';
import { ERROR_CATALOG } from '../../errors.ts';
import { EthhookError, type ErrorCatalog } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log.ts';
import type { ActorContext, Behaviour } from '../../runtime/types.ts';
import { TokenTable } from './auth.ts';
import { ensureDevToken } from './dev-token.ts';
import { kernelRoutes, type AdminSystem } from './kernel-routes.ts';
import { AdminMessage } from './messages.ts';
import { RouteTable, type Route } from './router.ts';
import { AdminServer } from './server.ts';

export interface AdminBehaviourOptions {
  system: AdminSystem | (() => AdminSystem | undefined);
  config: AdminConfig;
  /** The node's prom-client registry, served at /metrics. */
  registry: Registry;
  /** Where request and audit lines go. Default: the actor's own logger. */
  logger?: Logger;
  /** Directory of the generated token when `config.tokens` is empty (the node's dataDir). */
  dataDir?: string;
  /** Routes of other modules, served with the same auth, parsing, errors and audit. */
  routes?: readonly Route[];
  /** Reasons, beyond the tree's, for /ready to answer 503 (chains not reached yet). */
  readiness?: () => string[];
  /** Long-lived connections on the admin port (the live event streams), built per incarnation. */
  streams?: (context: AdminStreamsContext) => AdminStreams;
}

/** What the streams share with the admin API. */
export interface AdminStreamsContext {
  tokens: TokenTable;
  corsOrigins: readonly string[];
  log: Logger;
}

export interface AdminStreams {
  /** Served like every other route. */
  routes: readonly Route[];
  /** Every HTTP upgrade request on the admin port. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Ends the open streams. */
  close(): Promise<void>;
}

export interface AdminBehaviour extends Behaviour<AdminMessage> {
  /** Where this incarnation listens; null before preStart and after postStop. */
  address(): AddressInfo | null;
}

/** Every code of the node's catalog, so any layer's error answers with its own status. */
const CATALOG: ErrorCatalog = Object.fromEntries(ERROR_CATALOG.map((e) => [e.code, e]));

export function createAdminBehaviour(options: AdminBehaviourOptions): AdminBehaviour {
  const { config, registry } = options;
  const system = typeof options.system === 'function' ? options.system : () => options.system as AdminSystem;
  let server: AdminServer | null = null;
  let streams: AdminStreams | null = null;

  return {
    async preStart(ctx: ActorContext<AdminMessage>) {
      const log = options.logger ?? ctx.log;
      const tokens = config.tokens.length > 0 ? config.tokens : [await devToken(options.dataDir, log)];
      const tokenTable = new TokenTable(tokens);
      const attached = options.streams?.({ tokens: tokenTable, corsOrigins: config.corsOrigins, log }) ?? null;
      streams = attached;
      const routes = new RouteTable([
        ...kernelRoutes({ system, registry, selfPath: ctx.path, readiness: options.readiness }),
        ...(options.routes ?? []),
        ...(attached?.routes ?? []),
      ]);
      server = new AdminServer({
        host: config.host,
        port: config.port,
        tokens: tokenTable,
        routes,
        corsOrigins: config.corsOrigins,
        maxBodyBytes: config.maxBodyBytes,
        requestTimeoutMs: config.requestTimeoutMs,
        log,
        catalog: CATALOG,
        upgrade: attached ? (req, socket, head) => attached.upgrade(req, socket, head) : undefined,
        stopping: () => system()?.stopping === true,
      });
      const address = await server.listen();
      log.info({ host: address.address, port: address.port, roles: tokens.map((t) => t.role) }, 'admin API listening');
    },

    receive(msg: AdminMessage, ctx: ActorContext<AdminMessage>) {
      const parsed = AdminMessage.safeParse(msg);
      if (!parsed.success) {
        ctx.log.warn(
          { messageType: typeof msg === 'object' && msg !== null ? (msg as { type?: unknown }).type : typeof msg },
          'admin actor ignored an unknown message',
        );
        return undefined;
      }
      return server?.address() ?? null;
    },

    async postStop() {
      const closing = server;
      const ending = streams;
      server = null;
      streams = null;
      await Promise.all([ending?.close(), closing?.close()]);
    },

    health() {
      return server?.server.listening ? { ok: true } : { ok: false, detail: 'the admin API is not listening' };
    },

    address: () => server?.address() ?? null,
  };
}

function devToken(dataDir: string | undefined, log: Logger) {
  if (dataDir === undefined) {
    throw new EthhookError(
      'ETHHOOK_ERR_ADMIN_TOKEN_FILE',
      'no admin tokens are configured and no dataDir was given to keep a generated one',
    );
  }
  return ensureDevToken(dataDir, log);
}
