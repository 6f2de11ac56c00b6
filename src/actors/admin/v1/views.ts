/**
 * What the `/v1` routes answer with, and how much of it each role sees.
 *
 * - `operate` sees whole records (secrets only as ids and dates, never their value).
 * - `read` sees the operational state only: an endpoint without its URL's path, query and
 *   description (webhook URLs often carry a capability token; descriptions are the customer's text),
 *   reduced to `origin`; a subscription without its address and topic filters. Such views carry
 *   `redacted: true`.
 * - Lists answer `{ data, next }`: `next` is the cursor of the following page (`after` for ids,
 *   `before` for attempts), null on the last page.
 */
import type { AdminRole } from '../../../config/schema.ts';
import { endpointView, type Endpoint, type EndpointView } from '../../../store/endpoints.ts';
import type { DeadLetter } from '../../../store/outbox/job.ts';
import type { Subscription } from '../../../store/subscriptions.ts';

export type RedactedEndpointView = Omit<EndpointView, 'url' | 'description'> & { origin: string; redacted: true };
export type RedactedSubscriptionView = Omit<Subscription, 'addresses' | 'topics'> & { redacted: true };

export interface Page<T, C> {
  data: T[];
  next: C | null;
}

export function endpointFor(role: AdminRole, endpoint: Endpoint): EndpointView | RedactedEndpointView {
  const view = endpointView(endpoint);
  if (role === 'operate') return view;
  const { url, description: _text, ...rest } = view;
  return { ...rest, origin: new URL(url).origin, redacted: true };
}

export function subscriptionFor(role: AdminRole, sub: Subscription): Subscription | RedactedSubscriptionView {
  if (role === 'operate') return sub;
  const { addresses: _addresses, topics: _topics, ...rest } = sub;
  return { ...rest, redacted: true };
}

export function deadLetterView(letter: DeadLetter) {
  const { job } = letter;
  return {
    id: letter.id,
    endpointId: job.endpointId,
    subscriptionId: job.subscriptionId,
    type: job.type,
    reason: letter.reason,
    deadAt: letter.deadAt,
    attempts: job.attempt,
    createdAt: job.createdAt,
    payload: job.payload,
    ...(letter.supersededBy !== undefined ? { supersededBy: letter.supersededBy } : {}),
  };
}

/** A page from `limit + 1` rows fetched in key order: the extra row only says whether more exist. */
export function pageById<T extends { id: string }>(rows: T[], limit: number): Page<T, string> {
  const data = rows.slice(0, limit);
  return { data, next: rows.length > limit ? data[data.length - 1]!.id : null };
}
