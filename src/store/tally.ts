/**
 * Counts per key (an endpoint id): what the outbox keeps of its pending jobs, and its due window of its
 * entries, so a scan that skips endpoints knows how many jobs the others have. One map entry per key
 * whose count is above zero: bounded by the keys that have something counted.
 */
export class Tally {
  private readonly counts = new Map<string, number>();

  add(key: string, delta: number): void {
    const n = (this.counts.get(key) ?? 0) + delta;
    if (n <= 0) this.counts.delete(key);
    else this.counts.set(key, n);
  }

  /** `total` less the counts of `keys`: what the other keys hold, when `total` is the sum of all. */
  outside(total: number, keys?: ReadonlySet<string>): number {
    let n = total;
    if (keys !== undefined) for (const key of keys) n -= this.counts.get(key) ?? 0;
    return n;
  }
}
