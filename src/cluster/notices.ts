/**
 * Pipeline notices across a cluster. A change to endpoints or subscriptions is written once into the
 * shared store by whichever instance took it (its admin API, or the governance lease holder), and every
 * instance's Matcher and Deliverer must hear of it: the Matcher of the instance ingesting a chain needs
 * the new subscription in its index. `clusterNotices(local, bus)` is the PipelineNotices the writers use:
 * each notice goes to this instance's actors first (as src/pipeline-notices.ts does), then onto the
 * bus (src/store/postgres/notice-bus.ts: PostgreSQL NOTIFY), whose other instances pass it to their own
 * actors (`applyClusterNotice`). A LevelDB node has no bus: a cluster of one.
 *
 * The bus is best effort, never in the writer's way: a notice lost with a dropped connection is made
 * good by a full reload of the Matcher's index when the connection is back (`reloadAll`); the Deliverer
 * reads every endpoint again within its cache's TTL (1 s) anyway. A notice received is checked
 * (`clusterNoticeSchema`, at most MAX_IDS ids): a bad one is logged and dropped.
 */
import { z } from 'zod';
import type { Logger } from '../runtime/log.ts';
import type { PipelineNotices } from '../pipeline-notices.ts';

/** Ids one notice may carry; more are sent as a full reload. */
export const MAX_IDS = 100;

const ids = z.array(z.string().min(1).max(128)).max(MAX_IDS);

export const clusterNoticeSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('subscriptions'), upserted: ids.optional(), removed: ids.optional() }),
  z.strictObject({ kind: z.literal('endpoint'), endpointId: z.string().min(1).max(128), deleted: z.boolean().optional() }),
  z.strictObject({ kind: z.literal('reload') }),
]);
export type ClusterNotice = z.infer<typeof clusterNoticeSchema>;

export interface NoticeBus {
  /** Sends `notice` to the other instances; never throws, never waits for them. */
  publish(notice: ClusterNotice): void;
}

export function clusterNotices(local: PipelineNotices, bus: NoticeBus | undefined): PipelineNotices {
  if (bus === undefined) return local;
  return {
    async subscriptionsChanged(change, log) {
      await local.subscriptionsChanged(change, log);
      const count = (change.upserted?.length ?? 0) + (change.removed?.length ?? 0);
      const whole = (change.upserted === undefined && change.removed === undefined) || count > MAX_IDS;
      bus.publish(
        whole
          ? { kind: 'reload' }
          : {
              kind: 'subscriptions',
              ...(change.upserted ? { upserted: change.upserted } : {}),
              ...(change.removed ? { removed: change.removed } : {}),
            },
      );
    },
    async endpointChanged(endpointId, log, deleted) {
      await local.endpointChanged(endpointId, log, deleted);
      bus.publish({ kind: 'endpoint', endpointId, ...(deleted ? { deleted: true } : {}) });
    },
  };
}

/** A notice from another instance, told to this instance's actors. */
export async function applyClusterNotice(local: PipelineNotices, notice: ClusterNotice, log: Logger): Promise<void> {
  switch (notice.kind) {
    case 'subscriptions':
      return local.subscriptionsChanged({ upserted: notice.upserted ?? [], removed: notice.removed ?? [] }, log);
    case 'endpoint':
      return local.endpointChanged(notice.endpointId, log, notice.deleted);
    case 'reload':
      return reloadAll(local, log);
  }
}

/** What may have been missed: the Matcher reloads its whole index. */
export function reloadAll(local: PipelineNotices, log: Logger): Promise<void> {
  return local.subscriptionsChanged({}, log);
}
