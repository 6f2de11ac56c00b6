/**
 * Error codes of the Backfill actor. Gathered into the one catalog (`src/errors.ts`); the request
 * codes (ETHHOOK_ERR_BACKFILL_RUNNING, _NOT_RUNNING) are the store's (src/store/errors.ts).
 */
import { defineErrorCodes } from '../../runtime/errors.ts';

export const backfillErrorCodes = defineErrorCodes({
  ETHHOOK_ERR_BACKFILL_BAD_MESSAGE: { summary: 'the Backfill actor received a message that is not backfill.changed', httpStatus: 400 },
});
