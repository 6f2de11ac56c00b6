/**
 * Tells the pipeline what changed in the store, after the write. Both writers of endpoints and
 * subscriptions send these notices: the admin API (src/actors/admin/v1/) and the governance stream's
 * store applier (src/actors/governance/store-applier.ts).
 * - the Matcher (`ACTOR_PATHS.matcher`) gets `subscriptions.changed` with the upserted or removed ids,
 *   so its index follows without a restart;
 * - the Deliverer (`ACTOR_PATHS.deliverer`) gets `deliverer.endpoint-changed` (with `deleted` on a
 *   delete), so an edit, rotation, pause or re-enabling applies to the next attempt.
 *
 * Each notice is an `ask`, so when the writer answers, the change is live in the actor. A notice that
 * fails (actor stopped, or slow past the timeout, 2 s by default) does not fail the write: it is
 * durable, a queued notice is still applied, and both actors reload from the store when they start.
 * It is logged as a warning with the error code, on the writer's logger, at most once per actor and
 * code every NOTICE_WARNING_INTERVAL_MS: the next warning counts the ones left out (`suppressed`), so a
 * stopped Matcher under a stream of writes (a governance replay) logs a line every 10 s, not one per
 * write. An actor this node does not run has nothing to update (debug line).
 */
import type { DelivererMessage } from './actors/deliverer/messages.ts';
import type { SubscriptionsChanged } from './actors/matcher/messages.ts';
import { isEthhookError } from './runtime/errors.ts';
import type { Logger } from './runtime/log.ts';
import type { ActorRef } from './runtime/types.ts';
import { ACTOR_PATHS } from './tree.ts';

/** How long a writer waits for a notice's acknowledgement. A stopped actor keeps it queued, unanswered. */
export const DEFAULT_NOTICE_TIMEOUT_MS = 2_000;

/** At most one failed-notice warning per actor and error code in this period. */
export const NOTICE_WARNING_INTERVAL_MS = 10_000;

export type Lookup = (path: string) => ActorRef | undefined;

type EndpointChanged = Extract<DelivererMessage, { type: 'deliverer.endpoint-changed' }>;
type Notice = SubscriptionsChanged | EndpointChanged;

export interface PipelineNotices {
  subscriptionsChanged(change: Omit<SubscriptionsChanged, 'type'>, log: Logger): Promise<void>;
  endpointChanged(endpointId: string, log: Logger, deleted?: boolean): Promise<void>;
}

export function pipelineNotices(lookup: Lookup, timeoutMs = DEFAULT_NOTICE_TIMEOUT_MS): PipelineNotices {
  // The last warning per actor and code, and how many failures went unlogged since: one entry per
  // (two actors) × (the codes an ask fails with).
  const warned = new Map<string, { at: number; suppressed: number }>();
  const notify = async (path: string, msg: Notice, log: Logger) => {
    const ref = lookup(path);
    if (ref === undefined) {
      log.debug({ to: path, messageType: msg.type }, 'change notice not sent: this node runs no such actor');
      return;
    }
    try {
      await ref.ask(msg, { timeoutMs });
    } catch (err) {
      const code = isEthhookError(err) ? err.code : undefined;
      const key = `${path}|${code ?? ''}`;
      const last = warned.get(key);
      const now = Date.now();
      if (last !== undefined && now - last.at < NOTICE_WARNING_INTERVAL_MS) {
        last.suppressed++;
        return;
      }
      warned.set(key, { at: now, suppressed: 0 });
      log.warn(
        { to: path, messageType: msg.type, code, error: (err as Error).message, suppressed: last?.suppressed ?? 0 },
        'change notice not acknowledged; the store write stands',
      );
    }
  };
  return {
    subscriptionsChanged: (change, log) => notify(ACTOR_PATHS.matcher, { type: 'subscriptions.changed', ...change }, log),
    endpointChanged: (endpointId, log, deleted) =>
      notify(ACTOR_PATHS.deliverer, { type: 'deliverer.endpoint-changed', endpointId, ...(deleted ? { deleted: true } : {}) }, log),
  };
}
