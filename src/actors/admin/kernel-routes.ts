/**
 * The admin routes over the actor kernel:
 *
 *   GET  /health                 public   liveness: the process answers            200 { status: "ok" }
 *   GET  /ready                  public   the node can do its work: 200 | 503      { ready, reasons, manuallyStopped }
 *                                          every permanent actor running or manually stopped, and no
 *                                          `readiness` reason (a chain not reached yet); an actor an
 *                                          operator stopped is listed in `manuallyStopped`, not a reason
 *   GET  /metrics                read     Prometheus text of the node's registry
 *   GET  /actors/health          read     the tree: path, state, mailbox, restarts, panics (the last one's message), placement, pid
 *   POST /admin/actors/restart   operate  { "actor": "<path or name>" }            200 { actor: <snapshot> }
 *   POST /admin/actors/stop      operate  likewise
 *   POST /admin/actors/start     operate  likewise
 *
 * Restarting the Admin actor itself (or a supervisor above it) would close the server before it could
 * answer, so that request is accepted with 202, runs right after the answer, and its outcome is audited
 * a second time when it is known, with the status the client got (202) and `outcome` ok or failed.
 * Stopping them is refused with 409 ETHHOOK_ERR_ADMIN_STOP_REFUSED (field `actor`): a stopped Admin
 * actor locks every operator out until the process restarts, and a stopped root leaves a process with
 * nothing running. The node is stopped with SIGTERM (the documented shutdown and its exit code).
 */
import type { Registry } from 'prom-client';
import { EthhookError, isEthhookError } from '../../runtime/errors.ts';
import type { Readiness } from '../../runtime/system.ts';
import type { ActorSnapshot } from '../../runtime/types.ts';
import { audit } from './audit.ts';
import { ACTOR_ACTIONS, ActorActionBody, type ActorAction } from './messages.ts';
import { defineRoute, type Route } from './router.ts';

/** The part of the ActorSystem the admin API drives. */
export interface AdminSystem {
  /** A shutdown began: writes are refused (server.ts). */
  readonly stopping?: boolean;
  snapshot(): ActorSnapshot;
  readiness(): Readiness;
  restartActor(pathOrName: string): Promise<ActorSnapshot>;
  stopActor(pathOrName: string): Promise<ActorSnapshot>;
  startActor(pathOrName: string): Promise<ActorSnapshot>;
}

export interface KernelRoutesOptions {
  /** Undefined while the node is still starting (the API listens before the tree is complete). */
  system: () => AdminSystem | undefined;
  registry: Registry;
  /** The Admin actor's own path. */
  selfPath: string;
  /** Reasons, beyond the tree's, for /ready to say not ready (chains not reached yet). */
  readiness?: () => string[];
}

export function kernelRoutes({ system, registry, selfPath, readiness }: KernelRoutesOptions): Route[] {
  const running = (): AdminSystem => {
    const sys = system();
    if (sys === undefined) throw new EthhookError('ETHHOOK_ERR_ADMIN_NOT_READY', 'the node is still starting');
    return sys;
  };
  return [
    defineRoute({ method: 'GET', path: '/health', auth: 'public', handle: () => ({ json: { status: 'ok' } }) }),
    defineRoute({
      method: 'GET',
      path: '/ready',
      auth: 'public',
      handle: () => {
        const tree = system()?.readiness() ?? { ready: false, reasons: ['the node is starting'], manuallyStopped: [] };
        const reasons = [...tree.reasons, ...(readiness?.() ?? [])];
        const ready = reasons.length === 0;
        return { status: ready ? 200 : 503, json: { ready, reasons, manuallyStopped: tree.manuallyStopped } };
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/metrics',
      auth: 'read',
      handle: async () => ({ text: await registry.metrics(), contentType: registry.contentType }),
    }),
    defineRoute({ method: 'GET', path: '/actors/health', auth: 'read', handle: () => ({ json: { tree: running().snapshot() } }) }),
    ...ACTOR_ACTIONS.map((action) => actorActionRoute(action, running, selfPath)),
  ];
}

function actorActionRoute(action: ActorAction, running: () => AdminSystem, selfPath: string): Route {
  return defineRoute<ActorActionBody>({
    method: 'POST',
    path: `/admin/actors/${action}`,
    auth: 'operate',
    body: ActorActionBody,
    audit: { action: `actor.${action}`, target: ({ body }) => body.actor },
    handle: async ({ body, principal, log }) => {
      const sys = running();
      const perform = () => operate(sys, action, body.actor);
      const path = findPath(sys.snapshot(), body.actor);
      if (action !== 'start' && path !== undefined && isSelfOrAncestor(path, selfPath)) {
        if (action === 'stop') {
          throw new EthhookError(
            'ETHHOOK_ERR_ADMIN_STOP_REFUSED',
            `stopping ${path} would stop the admin API and lock operators out; stop the node with SIGTERM, or restart ${path} instead`,
            { actor: path, field: 'actor' },
          );
        }
        setImmediate(() => {
          perform().then(
            () => audit(log, { action: `actor.${action}`, target: path, who: principal, outcome: 'ok', status: 202 }),
            (err: unknown) =>
              audit(log, {
                action: `actor.${action}`,
                target: path,
                who: principal,
                outcome: 'failed',
                status: 202,
                code: isEthhookError(err) ? err.code : undefined,
              }),
          );
        });
        return { status: 202, json: { accepted: true, action, actor: path } };
      }
      return { json: { actor: await perform() } };
    },
  });
}

async function operate(sys: AdminSystem, action: ActorAction, actor: string): Promise<ActorSnapshot> {
  try {
    if (action === 'restart') return await sys.restartActor(actor);
    if (action === 'stop') return await sys.stopActor(actor);
    return await sys.startActor(actor);
  } catch (err) {
    // Lookup failures are about the request's `actor` field.
    if (isEthhookError(err, 'ETHHOOK_ERR_ACTOR_NOT_FOUND') || isEthhookError(err, 'ETHHOOK_ERR_ACTOR_AMBIGUOUS')) {
      throw new EthhookError(err.code, err.message, { ...err.context, field: 'actor' });
    }
    throw err;
  }
}

/** The path of the one node named or pathed `actor`; undefined when none or several (the system will say). */
function findPath(root: ActorSnapshot, actor: string): string | undefined {
  const found: string[] = [];
  const walk = (node: ActorSnapshot) => {
    if (node.path === actor || node.name === actor) found.push(node.path);
    node.children?.forEach(walk);
  };
  walk(root);
  return found.length === 1 ? found[0] : undefined;
}

function isSelfOrAncestor(path: string, selfPath: string): boolean {
  return path === selfPath || path === '/' || selfPath.startsWith(`${path}/`);
}
