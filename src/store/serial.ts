/**
 * Serialization of read-modify-write operations inside one store instance (LevelDB has no
 * transactions). `Serial` runs operations one after another; a failed operation does not block the next.
 */

export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(op: () => Promise<T>): Promise<T> {
    const result = this.tail.then(op, op);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
