/** Error codes of the ChainListener domain (gathered into the node's catalog by src/errors.ts). */
import { defineErrorCodes } from '../../runtime/errors.ts';

export const chainErrorCodes = defineErrorCodes({
  ETHHOOK_ERR_RPC_TIMEOUT: { summary: 'a JSON-RPC request to the chain node got no answer in time', httpStatus: 504 },
  ETHHOOK_ERR_RPC_ERROR: { summary: 'the chain node answered a JSON-RPC request with an error', httpStatus: 502 },
  ETHHOOK_ERR_RPC_MALFORMED: { summary: 'the chain node sent a frame or result that is not valid', httpStatus: 502 },
  ETHHOOK_ERR_RPC_CLOSED: { summary: 'the connection to the chain node closed before the answer', httpStatus: 502 },
  ETHHOOK_ERR_RPC_RANGE_TOO_LARGE: { summary: 'the chain node refused an eth_getLogs range as too large', httpStatus: 502 },
  ETHHOOK_ERR_RPC_RATE_LIMITED: {
    summary: 'the chain provider rate-limited a request (HTTP 429 or its rate-limit error); the listener slows down',
    httpStatus: 429,
  },
  ETHHOOK_ERR_RPC_INCOMPLETE: {
    summary:
      'a chain provider answered less than it has (no logs for a block whose bloom says it has some, blocks below its own head missing)',
    httpStatus: 502,
  },
  ETHHOOK_ERR_PROVIDER_DISAGREES: {
    summary: 'the provider read from shows a block hash the other providers do not; another provider is used',
    httpStatus: 502,
  },
  ETHHOOK_ERR_PROVIDER_UNKNOWN: { summary: 'the chain has no provider of that name', httpStatus: 404 },
  ETHHOOK_ERR_NO_OTHER_PROVIDER: { summary: 'no other healthy provider to move the chain to', httpStatus: 409 },
  ETHHOOK_ERR_CHAIN_INCONSISTENT: { summary: 'the chain changed while a range was read; it is read again', httpStatus: 502 },
  ETHHOOK_ERR_REORG_TOO_DEEP: { summary: 'a reorg went deeper than maxReorgDepth; the listener stopped', httpStatus: 500 },
  ETHHOOK_ERR_CURSOR_CORRUPT: {
    summary: 'the cursor store lacks the logs emitted for an orphaned block; the listener stopped',
    httpStatus: 500,
  },
  ETHHOOK_ERR_CHAIN_MISMATCH: { summary: 'the node serves another chain than configured or than the cursor was built on', httpStatus: 500 },
  ETHHOOK_ERR_CHAIN_NOT_CONFIGURED: { summary: 'no chain with this chainId is configured on this node', httpStatus: 404 },
  ETHHOOK_ERR_LISTENER_FAILED: { summary: 'the chain listener failed on an unexpected error; its supervisor restarts it', httpStatus: 500 },
  ETHHOOK_ERR_LISTENER_STOPPED: { summary: 'the chain listener was stopped while it worked', httpStatus: 503 },
  ETHHOOK_ERR_CHAIN_UNKNOWN_MESSAGE: { summary: 'the chain listener was sent a message it does not handle', httpStatus: 400 },
  ETHHOOK_ERR_DEV_CHAIN: { summary: 'the embedded dev chain (anvil) could not start or run', httpStatus: 500 },
});

export type ChainErrorCode = keyof typeof chainErrorCodes;
