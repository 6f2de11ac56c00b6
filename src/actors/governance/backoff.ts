/**
 * Delays of the governance stream: reconnects and repeated re-requests. Exponential from `minMs`
 * (doubling), capped at `maxMs`, with full-range jitter of ±50% clamped back into [minMs, maxMs], so a
 * cluster of nodes that lost the same server does not come back in step. `attempt` counts from 1.
 */
export interface ReconnectSpec {
  minMs: number;
  maxMs: number;
}

export function governanceDelay(attempt: number, spec: ReconnectSpec, random: () => number = Math.random): number {
  const base = Math.min(spec.maxMs, spec.minMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  const jittered = base * (0.5 + random());
  return Math.round(Math.min(spec.maxMs, Math.max(spec.minMs, jittered)));
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
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
