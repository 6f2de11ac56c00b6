/**
 * Error codes of the Deliverer. Gathered into the one catalog (`src/errors.ts`).
 * Contexts carry the endpoint id and the reason, never a URL's credentials or a secret.
 */
import { defineErrorCodes } from '../../runtime/errors.ts';

export const delivererErrorCodes = defineErrorCodes({
  ETHHOOK_ERR_INVALID_WEBHOOK_SECRET: {
    summary: 'a webhook secret is not "whsec_" followed by 24 to 64 bytes of base64',
    httpStatus: 400,
  },
  ETHHOOK_ERR_DELIVERER_BAD_MESSAGE: {
    summary:
      'the Deliverer received a message that is not one of deliverer.wake, deliverer.endpoint-changed, deliverer.status, deliverer.breaker',
    httpStatus: 400,
  },
  ETHHOOK_ERR_DELIVERER_UNAVAILABLE: {
    summary: 'the Deliverer is not running or did not answer in time (it is restarting, stopped or busy); retry shortly',
    httpStatus: 503,
  },
  ETHHOOK_ERR_TARGET_REFUSED: {
    summary: 'a webhook target URL was refused (scheme, or an address that is private, loopback or reserved)',
    httpStatus: 400,
  },
});
