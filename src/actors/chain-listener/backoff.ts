/**
 * Retry timing. `backoffDelay`: exponential from `minMs` by `factor`, capped at `maxMs`, with uniform
 * jitter of ±`jitter` (clamped back into [minMs, maxMs]) so that many listeners do not retry in step;
 * `attempt` counts from 1. `sleep` resolves early (without error) when the signal aborts; `orStop`
 * rejects with ETHHOOK_ERR_LISTENER_STOPPED as soon as the signal aborts, whatever the promise does.
 */
import { EthhookError } from '../../runtime/errors.ts';
import type { ReconnectConfig } from './config.ts';

export function backoffDelay(attempt: number, cfg: ReconnectConfig, random: () => number = Math.random): number {
  const base = Math.min(cfg.maxMs, cfg.minMs * cfg.factor ** Math.max(0, attempt - 1));
  const jittered = base * (1 - cfg.jitter + 2 * cfg.jitter * random());
  return Math.round(Math.min(cfg.maxMs, Math.max(cfg.minMs, jittered)));
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

export function orStop<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  const stopped = () => new EthhookError('ETHHOOK_ERR_LISTENER_STOPPED', 'the chain listener was stopped', {});
  if (signal.aborted) return Promise.reject(stopped());
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(stopped());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
