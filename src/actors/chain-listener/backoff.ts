/**
 * Retry timing of the listener: the node's shared `backoffDelay` (supervision/backoff.ts) with the
 * chain's `reconnect` settings, the shared abortable `sleep`, and `orStop`, which rejects with
 * ETHHOOK_ERR_LISTENER_STOPPED as soon as the signal aborts, whatever the promise does.
 */
import { EthhookError } from '../../runtime/errors.ts';

export { backoffDelay } from '../../supervision/backoff.ts';
export { sleep } from '../../runtime/timers.ts';

export function orStop<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  const stopped = () => new EthhookError('ETHHOOK_ERR_LISTENER_STOPPED', 'the chain listener was stopped', {});
  if (signal.aborted) return Promise.reject(stopped());
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(stopped());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
