/**
 * Tells the pipeline what the admin API changed in the store, after the write:
 * - the Matcher (`/pipeline/matcher`) gets `subscriptions.changed` with the upserted or removed ids,
 *   so its index follows without a restart;
 * - the Deliverer (`/pipeline/deliverer`) gets `deliverer.endpoint-changed` (with `deleted` on a
 *   delete), so an edit, rotation, pause or re-enabling applies to the next attempt.
 *
 * Each notice is an `ask`, so when the API answers, the change is live in the actor. A notice that
 * fails (actor stopped, or slow past the timeout, 2 s by default) does not fail the request: the write
 * is durable, a queued notice is still applied, and both actors reload from the store when they start.
 * It is logged as a warning with the error code. An actor this node does not run has nothing to update (debug line).
 */
import { isEthhookError } from '../../../runtime/errors.ts';
import type { Logger } from '../../../runtime/log.ts';
import type { ActorRef } from '../../../runtime/types.ts';
import { ACTOR_PATHS } from '../../../tree.ts';

export const MATCHER_PATH = ACTOR_PATHS.matcher;
export const DELIVERER_PATH = ACTOR_PATHS.deliverer;
/** How long a request waits for a notice's acknowledgement. A stopped actor keeps it queued, unanswered. */
export const DEFAULT_NOTICE_TIMEOUT_MS = 2_000;

export type Lookup = (path: string) => ActorRef | undefined;

export interface PipelineNotices {
  subscriptionsChanged(change: { upserted?: string[]; removed?: string[] }, log: Logger): Promise<void>;
  endpointChanged(endpointId: string, log: Logger, deleted?: boolean): Promise<void>;
}

export function pipelineNotices(lookup: Lookup, timeoutMs = DEFAULT_NOTICE_TIMEOUT_MS): PipelineNotices {
  const notify = async (path: string, msg: Record<string, unknown>, log: Logger) => {
    const ref = lookup(path);
    if (ref === undefined) {
      log.debug({ to: path, messageType: msg.type }, 'admin change notice not sent: this node runs no such actor');
      return;
    }
    try {
      await ref.ask(msg, { timeoutMs });
    } catch (err) {
      const code = isEthhookError(err) ? err.code : undefined;
      log.warn({ to: path, messageType: msg.type, code, error: (err as Error).message }, 'admin change notice not acknowledged; the store write stands');
    }
  };
  return {
    subscriptionsChanged: (change, log) => notify(MATCHER_PATH, { type: 'subscriptions.changed', ...change }, log),
    endpointChanged: (endpointId, log, deleted) =>
      notify(DELIVERER_PATH, { type: 'deliverer.endpoint-changed', endpointId, ...(deleted ? { deleted: true } : {}) }, log),
  };
}
