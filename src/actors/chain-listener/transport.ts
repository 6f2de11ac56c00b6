/**
 * What the listener needs from a JSON-RPC transport (WebSocket or HTTP), and the errors they share.
 * A transport rejects a call with an EthhookError: ETHHOOK_ERR_RPC_TIMEOUT, ETHHOOK_ERR_RPC_ERROR
 * (context: method, rpcCode, rpcMessage), ETHHOOK_ERR_RPC_MALFORMED or ETHHOOK_ERR_RPC_CLOSED.
 * Problems that belong to no call (a garbage frame, a reply to an id nobody asked) go to `onProblem`.
 */
import { EthhookError } from '../../runtime/errors.ts';
import type { RpcErrorBody } from './frames.ts';
import type { RpcErrorKind } from './metrics.ts';

export interface RpcCall {
  method: string;
  params: unknown[];
}

export interface RpcTransport {
  readonly kind: 'ws' | 'http';
  request(method: string, params: unknown[]): Promise<unknown>;
  /** One round trip for several calls; results in call order; the first error rejects the whole batch. */
  batch(calls: RpcCall[]): Promise<unknown[]>;
  close(): void;
}

export type ProblemHandler = (kind: RpcErrorKind, error: EthhookError) => void;

/**
 * How providers word a rate limit: Alchemy (429, "exceeded its compute units per second capacity"),
 * Infura (-32005, "daily request count exceeded, request rate limited", "project ID request rate
 * exceeded"), QuickNode (-32007, "15/second request limit reached"), generic "too many requests".
 */
const RATE_LIMIT =
  /rate.?limit|request rate|too many requests|request limit reached|per second capacity|request count exceeded|exceeded .*(capacity|quota)/i;

/** A JSON-RPC error answer: ETHHOOK_ERR_RPC_RATE_LIMITED when it reads as a rate limit, else ETHHOOK_ERR_RPC_ERROR. */
export function rpcError(method: string, error: RpcErrorBody): EthhookError {
  if (error.code === 429 || error.code === -429 || RATE_LIMIT.test(error.message))
    return rpcRateLimited(method, error.message.slice(0, 200));
  return new EthhookError('ETHHOOK_ERR_RPC_ERROR', `${method} failed: ${error.message.slice(0, 200)}`, {
    method,
    rpcCode: error.code,
    rpcMessage: error.message.slice(0, 200),
  });
}

/** `retryAfterMs`: what the provider asked for (HTTP Retry-After), when it said. */
export function rpcRateLimited(method: string, why: string, retryAfterMs?: number): EthhookError {
  return new EthhookError('ETHHOOK_ERR_RPC_RATE_LIMITED', `${method} rate-limited by the provider: ${why}`, {
    method,
    rpcMessage: why,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });
}

export function rpcTimeout(method: string, timeoutMs: number): EthhookError {
  return new EthhookError('ETHHOOK_ERR_RPC_TIMEOUT', `${method} got no answer in ${timeoutMs} ms`, { method, timeoutMs });
}

export function rpcClosed(method: string, why: string): EthhookError {
  return new EthhookError('ETHHOOK_ERR_RPC_CLOSED', `${method}: connection closed (${why})`, { method, why });
}

/** An answer above maxFrameBytes: context.reason is `frame-too-large` (a log range gets split on it). */
export function frameTooLarge(method: string, maxFrameBytes: number): EthhookError {
  return new EthhookError('ETHHOOK_ERR_RPC_MALFORMED', `${method}: answer larger than maxFrameBytes`, {
    method,
    reason: 'frame-too-large',
    maxFrameBytes,
  });
}
