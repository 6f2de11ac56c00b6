/**
 * What the GovernanceStream actor answers (the admin API asks it):
 * - `{ type: 'governance.reconnect' }`: drops the current connection and connects again now, without
 *   waiting for the backoff; replies `{ ok: true }` once the reconnect is under way.
 * - `{ type: 'governance.status' }`: replies a GovernanceStatus `{ connected, height, trustedKeys,
 *   lastError }` (trustedKeys: fingerprints; lastError: the latest rejection, or the connection error while disconnected; null otherwise).
 * - Anything else is answered (not thrown, so the actor keeps its connection) with
 *   `{ ok: false, error: { code: 'ETHHOOK_ERR_GOVERNANCE_UNKNOWN_MESSAGE', message, context } }`.
 */
import { z } from 'zod';

export const governanceRequestSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('governance.reconnect') }),
  z.object({ type: z.literal('governance.status') }),
]);
export type GovernanceRequest = z.infer<typeof governanceRequestSchema>;

import type { GovernanceStatus } from './stream.ts';

export type { GovernanceStatus };
export type GovernanceReply =
  GovernanceStatus | { ok: true } | { ok: false; error: { code: string; message: string; context: Readonly<Record<string, unknown>> } };
