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

/**
 * A loop's pause that another part can end early: `wait(ms)` resolves `woken` when `wake()` is called
 * (or the signal aborts) and `timeout` after `ms`. A `wake()` while nobody waits is lost: the loop
 * checks its state after every pause. One waiter at a time.
 */
export class Wakeup {
  private end: () => void = () => {};

  constructor(private readonly signal: AbortSignal) {}

  wake(): void {
    this.end();
  }

  wait(timeoutMs: number): Promise<'woken' | 'timeout'> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish('timeout'), timeoutMs);
      const finish = (outcome: 'woken' | 'timeout') => {
        clearTimeout(timer);
        this.end = () => {};
        resolve(outcome);
      };
      this.end = () => finish('woken');
      if (this.signal.aborted) finish('woken');
    });
  }
}
