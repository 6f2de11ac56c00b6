/** What every `/v1` route module shares: the stores, the pipeline notices, the Deliverer's breakers and the target check. */
import type { AdminRole } from '../../../config/schema.ts';
import type { BreakerAction, BreakerView } from '../../deliverer/circuit-breaker.ts';
import type { EndpointStore } from '../../../store/endpoints.ts';
import type { OutboxStore } from '../../../store/outbox/contract.ts';
import type { SubscriptionStore } from '../../../store/subscriptions.ts';
import type { BackfillStore } from '../../../store/backfills.ts';
import type { Logger } from '../../../runtime/log.ts';
import type { Principal } from '../auth.ts';
import type { PipelineNotices } from '../../../pipeline-notices.ts';

export interface V1Context {
  endpoints: EndpointStore;
  subscriptions: SubscriptionStore;
  outbox: OutboxStore;
  /** The chain ids this node follows, ascending. */
  chains: readonly number[];
  notices: PipelineNotices;
  /** Backfill requests and their progress (src/store/backfills.ts). */
  backfills: BackfillStore;
  /** Tells this node's Backfill actor that the subscription's request changed (best effort: it also polls the store). */
  backfillChanged(subscriptionId: string, log: Logger): Promise<void>;
  /** An endpoint's breaker in this node's Deliverer, after `action`; ETHHOOK_ERR_DELIVERER_UNAVAILABLE when it cannot answer. */
  breaker(endpointId: string, action?: BreakerAction): Promise<BreakerView>;
  /** Throws ETHHOOK_ERR_TARGET_REFUSED (field `url`) for a target the configuration refuses. */
  guardTarget(url: string): Promise<void>;
  /** Overlap of a rotation that does not name one. */
  secretOverlapMs: number;
}

/** Every `/v1` route needs a token, so its principal is there. */
export function roleOf(principal: Principal | null): AdminRole {
  return principal?.role ?? 'read';
}
