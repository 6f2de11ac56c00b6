/**
 * A global limit on concurrent operations (a counting semaphore): `run(fn)` starts `fn` when fewer
 * than `limit` runs are active, otherwise waits in FIFO order. A run that throws still frees its slot.
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

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.queue.push(resolve));
    else this.running++;
    try {
      return await fn();
    } finally {
      // Hand the slot straight to the next waiter, so `running` never dips and lets a newcomer jump the queue.
      const next = this.head < this.queue.length ? this.queue[this.head++] : undefined;
      if (this.head === this.queue.length || (this.head > 1024 && this.head * 2 > this.queue.length)) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      if (next) next();
      else this.running--;
    }
  }
}
