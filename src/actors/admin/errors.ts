/**
 * Admin API error codes. Every non-2xx answer of the admin API has the body
 * `{ "error": { "code": "ETHHOOK_ERR_...", "message": "...", "field"?: "actor" } }`, with the status
 * given here (or in the catalog of the code that reached it: ETHHOOK_ERR_ACTOR_NOT_FOUND is a 404).
 */
import { defineErrorCodes } from '../../runtime/errors.ts';

export const adminErrorCodes = defineErrorCodes({
  ETHHOOK_ERR_ADMIN_UNAUTHORIZED: { summary: 'a bearer token is missing or unknown', httpStatus: 401 },
  ETHHOOK_ERR_ADMIN_FORBIDDEN: { summary: "the token's role does not allow this action", httpStatus: 403 },
  ETHHOOK_ERR_ADMIN_INVALID_REQUEST: { summary: 'the request body or query is malformed or has a bad field', httpStatus: 400 },
  ETHHOOK_ERR_ADMIN_ROUTE_NOT_FOUND: { summary: 'no admin API route has this path', httpStatus: 404 },
  ETHHOOK_ERR_ADMIN_METHOD_NOT_ALLOWED: { summary: 'the route exists but not with this method', httpStatus: 405 },
  ETHHOOK_ERR_ADMIN_BODY_TOO_LARGE: { summary: 'the request body exceeds admin.maxBodyBytes', httpStatus: 413 },
  ETHHOOK_ERR_ADMIN_UNSUPPORTED_MEDIA_TYPE: { summary: 'request bodies must be application/json', httpStatus: 415 },
  ETHHOOK_ERR_ADMIN_REQUEST_ABORTED: { summary: 'the client closed the connection before sending the whole request body', httpStatus: 400 },
  ETHHOOK_ERR_ADMIN_STOP_REFUSED: {
    summary: 'stopping the Admin actor or a supervisor above it (root) would lock operators out; stop the node with SIGTERM',
    httpStatus: 409,
  },
  ETHHOOK_ERR_ADMIN_NOT_READY: { summary: 'the node is still starting; retry shortly', httpStatus: 503 },
  ETHHOOK_ERR_ADMIN_STOPPING: {
    summary: 'the node is stopping (SIGTERM): it takes no more changes; send them to another instance of the cluster',
    httpStatus: 503,
  },
  ETHHOOK_ERR_ADMIN_INTERNAL: { summary: 'the admin API failed unexpectedly; see the node log', httpStatus: 500 },
  ETHHOOK_ERR_ADMIN_LISTEN: { summary: 'the admin API cannot listen on its host and port', httpStatus: 500 },
  ETHHOOK_ERR_ADMIN_TOKEN_FILE: { summary: 'the generated admin token file cannot be read or written', httpStatus: 500 },
  ETHHOOK_ERR_GOVERNANCE_NOT_CONFIGURED: { summary: 'this node runs no governance stream (governance.url is not set)', httpStatus: 404 },
});

export type AdminErrorCode = keyof typeof adminErrorCodes;
