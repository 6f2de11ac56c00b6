/**
 * The audit trail of the admin API: one log line per admin action, whatever its outcome, marked
 * `audit: true` so a log pipeline can route them apart. A line says who (the token's role and
 * fingerprint, or null when no valid token was shown), what (`action`, `target`), from where
 * (`remote`) and how it ended (`outcome`, HTTP `status`, error `code`). Tokens never appear.
 */
import type { Logger } from '../../runtime/log.ts';
import type { Principal } from './auth.ts';

export type AuditOutcome = 'ok' | 'accepted' | 'denied' | 'rejected' | 'failed';

export interface AuditEntry {
  action: string;
  target?: string;
  who: Principal | null;
  outcome: AuditOutcome;
  status: number;
  code?: string;
  remote?: string;
}

export function outcomeOf(status: number): AuditOutcome {
  if (status === 202) return 'accepted';
  if (status < 300) return 'ok';
  if (status === 401 || status === 403) return 'denied';
  if (status < 500) return 'rejected';
  return 'failed';
}

export function audit(log: Logger, entry: AuditEntry): void {
  log.info({ audit: true, ...entry }, `admin ${entry.action} ${entry.outcome}`);
}
