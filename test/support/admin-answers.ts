/**
 * The JSON bodies of admin API answers, typed from the views src/actors/admin answers with: a test names
 * the answer it expects (`node.api<EndpointCreated>('POST', '/v1/endpoints', ...)`) and reads it typed.
 */
import type { deadLetterView, Page } from '../../src/actors/admin/v1/views.ts';
import type { ChainFailoverReply, ChainStatus } from '../../src/actors/chain-listener/index.ts';
import type { GovernanceStatus } from '../../src/actors/governance/index.ts';
import type { AttemptRecord } from '../../src/store/attempts.ts';
import type { EndpointView } from '../../src/store/endpoints.ts';
import type { Subscription } from '../../src/store/subscriptions.ts';
import type { BackfillView } from '../../src/store/backfills.ts';

export type { AttemptRecord, EndpointView, Page, Subscription };

/** A refusal: the error catalog's code and the request field it names. */
export interface ErrorAnswer {
  error: { code: string; message: string; field?: string };
}

export interface EndpointAnswer {
  endpoint: EndpointView;
}

/** Create and rotate-secret: the signing secret, shown this once. */
export interface EndpointCreated extends EndpointAnswer {
  secret: string;
}

export interface SubscriptionAnswer {
  subscription: Subscription;
  /** A create with `fromBlock`, and every read (null when the subscription never had a backfill). */
  backfill?: BackfillView | null;
}

/** POST and DELETE /v1/subscriptions/:id/replay. */
export interface BackfillAnswer {
  backfill: BackfillView;
}

export type DeadLetterView = ReturnType<typeof deadLetterView>;

export interface ReplayAnswer {
  replayed: number;
}

/** GET /admin/chains/:chainId. */
export interface ChainAnswer {
  chain: ChainStatus;
}

/** POST /admin/chains/:chainId/failover. */
export interface FailoverAnswer {
  failover: Omit<Extract<ChainFailoverReply, { ok: true }>, 'ok'>;
}

/** GET /admin/governance/status: absent on a node without a governance stream. */
export interface GovernanceStatusAnswer {
  governance?: GovernanceStatus;
}
