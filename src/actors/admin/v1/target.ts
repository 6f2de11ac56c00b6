/**
 * The check of a webhook target URL when an endpoint is created or its URL changed, so a customer
 * learns at once why a target is refused (the Deliverer checks again at every connection, after DNS,
 * which is what actually stops a rebinding attack: see src/target-policy/ssrf.ts).
 *
 * - `requireHttpsTargets`: a plain `http:` URL is refused.
 * - Unless `allowPrivateTargets`, the host is resolved and every address must be global unicast:
 *   loopback, private, link-local (cloud metadata at 169.254.169.254) and reserved ranges are refused.
 *   A host that does not resolve is refused too: it cannot be shown to be safe, and a typo is caught.
 * - With `allowPrivateTargets` (development) nothing is resolved: every address is acceptable.
 * Refusals are `ETHHOOK_ERR_TARGET_REFUSED` (400) with `field: 'url'` and the reason.
 */
import { EthhookError } from '../../../runtime/errors.ts';
import { checkTarget as defaultCheckTarget, type TargetCheck, type TargetPolicy } from '../../../target-policy/ssrf.ts';

export type CheckTarget = (url: string, policy: TargetPolicy) => Promise<TargetCheck>;

export interface TargetRules {
  allowPrivateTargets: boolean;
  requireHttpsTargets: boolean;
}

export function targetGuard(rules: TargetRules, check: CheckTarget = defaultCheckTarget): (url: string) => Promise<void> {
  return async (url) => {
    if (rules.requireHttpsTargets && new URL(url).protocol !== 'https:') {
      throw refused('plain http targets are not allowed (security.requireHttpsTargets); use https', 'scheme');
    }
    if (rules.allowPrivateTargets) return;
    const verdict = await check(url, { allowPrivate: false });
    if (!verdict.ok) throw refused(verdict.reason, verdict.kind);
  };
}

function refused(reason: string, kind: string): EthhookError {
  return new EthhookError('ETHHOOK_ERR_TARGET_REFUSED', `url refused: ${reason}`, { field: 'url', kind });
}
