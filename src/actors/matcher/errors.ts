/**
 * Error codes of the Matcher. Gathered into the one catalog (`src/errors.ts`).
 */
import { defineErrorCodes } from '../../runtime/errors.ts';

export const matcherErrorCodes = defineErrorCodes({
  ETHHOOK_ERR_MATCHER_BAD_MESSAGE: {
    summary: 'the Matcher received a message that is not a valid chain.block or subscriptions.changed',
    httpStatus: 400,
  },
  ETHHOOK_ERR_BACKFILL_STALE: {
    summary:
      'a backfilled page holds a block above the chain cursor or on another branch than the cursor has: nothing of it was written, the Backfill reads it again',
    httpStatus: 409,
  },
  ETHHOOK_ERR_FINALITY_UNANCHORED: {
    summary:
      'a chain.finality message names a final block the chain cursor does not hold (above the processed height, or another hash there): nothing released, the listener tells it again after its next poll',
    httpStatus: 409,
  },
});
