/**
 * What the delivery loop needs from the rest of the node: the outbox, the endpoint store and an HTTP
 * client. In-process these are the store's outbox (an `OutboxStore`) and `EndpointStore` and the `WebhookHttpClient`;
 * a Deliverer placed in a child process gets the outbox and endpoints over the `deliverer-store` actor
 * (remote-ports.ts).
 */
import type { Endpoint } from '../../store/endpoints.ts';
import type { OutboxStore } from '../../store/outbox/contract.ts';
import type { FailureStreak } from './disable.ts';
import type { HttpAttempt } from './http-client.ts';

export type OutboxPort = Pick<
  OutboxStore,
  'due' | 'nextDueAt' | 'complete' | 'completeWithGroup' | 'reschedule' | 'postpone' | 'deadLetter' | 'onEnqueue' | 'bodyOf' | 'claimMs'
>;

export interface EndpointPort {
  get(id: string): Promise<Endpoint | undefined>;
  activeSecrets(endpoint: Endpoint, now?: number): string[];
  disable(id: string, reason: string, now?: number): Promise<Endpoint>;
  /** Stores the endpoint's failure streak, so that a restart resumes it (disable.ts). */
  setFailing(id: string, failing: FailureStreak): Promise<unknown>;
}

export interface WebhookPoster {
  post(url: URL, headers: Record<string, string>, body: string | Buffer): Promise<HttpAttempt>;
}
