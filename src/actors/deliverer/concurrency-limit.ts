/**
 * A global limit on concurrent operations (a counting semaphore) in callback form, so the hot path
 * allocates no promise: `acquire(start)` calls `start` at once when fewer than `limit` slots are taken,
 * otherwise queues it (FIFO); each started operation calls `release()` exactly once when it ends, which
 * hands its slot straight to the next waiter. A waiter is started from a microtask, never inside
 * `release()`: operations that end synchronously (a closed client refusing each at once) would
 * otherwise recurse through the whole queue.
 */

export class ConcurrencyLimit {
  private running = 0;
  // A FIFO as an array and a head index: Array#shift is O(n) once thousands wait.
  private queue: Array<() => void> = [];
  private head = 0;

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`concurrency limit must be a positive integer, got ${limit}`);
  }

  get active(): number {
    return this.running;
  }

  get waiting(): number {
    return this.queue.length - this.head;
  }

  acquire(start: () => void): void {
    if (this.running < this.limit) {
      this.running++;
      start();
    } else {
      this.queue.push(start);
    }
  }

  /** Takes a slot when one is free (true; release it later), without queueing: the caller's fast path, no callback. */
  tryAcquire(): boolean {
    if (this.running >= this.limit) return false;
    this.running++;
    return true;
  }

  release(): void {
    if (this.running === 0) throw new RangeError('release() without a matching acquire()');
    // Hand the slot straight to the next waiter, so `running` never dips and lets a newcomer jump the queue.
    const next = this.head < this.queue.length ? this.queue[this.head++] : undefined;
    if (this.head === this.queue.length || (this.head > 1024 && this.head * 2 > this.queue.length)) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (next) queueMicrotask(next);
    else this.running--;
  }
}
