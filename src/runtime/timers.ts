/**
 * Timers for loops that must stop promptly: `sleep` resolves after `ms`, or at once (never rejecting)
 * when the signal aborts, and leaves no timer or listener behind either way.
 */
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
