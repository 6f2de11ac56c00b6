/** Error codes of the governance domain (gathered into the node's catalog by src/errors.ts). */
import { defineErrorCodes } from '../../runtime/errors.ts';

export const governanceErrorCodes = defineErrorCodes({
  ETHHOOK_ERR_GOVERNANCE_KEY_INVALID: {
    summary: 'a governance key is not an Ed25519 key in PEM or base64 DER (SPKI public, PKCS#8 private)',
    httpStatus: 400,
  },
  ETHHOOK_ERR_GOVERNANCE_MESSAGE_INVALID: {
    summary: 'a governance message or payload failed validation and was not signed or applied',
    httpStatus: 400,
  },
  ETHHOOK_ERR_GOVERNANCE_SIGNATURE: {
    summary: 'a governance message named a key that is not trusted, or its signature does not verify; not applied',
    httpStatus: 400,
  },
  ETHHOOK_ERR_GOVERNANCE_APPLY: {
    summary: 'applying a governance message failed; the stream asks for it again after a backoff',
    httpStatus: 500,
  },
  ETHHOOK_ERR_GOVERNANCE_UNKNOWN_MESSAGE: {
    summary: 'the governance stream actor was sent a message it does not handle',
    httpStatus: 400,
  },
  ETHHOOK_ERR_GOVERNANCE_SKIPPED: {
    summary: 'a governance message named an endpoint that does not exist (a subscription for it, a pause); it was skipped',
    httpStatus: 409,
  },
  ETHHOOK_ERR_GOVERNANCE_SERVER: {
    summary: 'the reference governance server could not start or was given bad arguments',
    httpStatus: 500,
  },
});

export type GovernanceErrorCode = keyof typeof governanceErrorCodes;
