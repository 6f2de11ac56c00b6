/**
 * Serialization of read-modify-write operations inside one store instance (LevelDB has no
 * transactions). `Serial` runs operations one after another; `KeyedSerial` only orders operations on
 * the same key, so unrelated jobs complete concurrently. A failed operation does not block the next.
 */

export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(op: () => Promise<T>): Promise<T> {
    const result = this.tail.then(op, op);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

export class KeyedSerial {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, op: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const result = prev.then(op, op);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    // Forget the key once nothing else queued behind it, so the map stays as small as the work in flight.
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}
