/**
 * Serial: runs asynchronous operations one after another, each starting once the previous one settled.
 * A failed operation does not block the next; its caller gets the rejection. Supervisors run every
 * operation on their children through one (a restart never interleaves with another), and each store
 * its read-modify-write operations (LevelDB has no transactions).
 */

export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(op: () => Promise<T>): Promise<T> {
    const result = this.tail.then(op, op);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Resolves once every operation run so far has settled. */
  async settled(): Promise<void> {
    await this.tail;
  }
}
