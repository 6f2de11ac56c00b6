/**
 * BackfillPace: how long the backfills of one chain wait between reads, so that they take at most
 * `blocksPerSec` blocks and `requestsPerSec` JSON-RPC calls per second from the chain's provider. A pure
 * state machine, the clock an argument.
 *
 * Each resource keeps the time at which what was spent so far is paid for (a virtual clock, as GCRA
 * does): a read of `blocks` blocks costing `requests` calls moves each clock to `max(clock, now)` plus
 * its cost at its rate. The next read may start once both clocks are at `now`: `waitMs(now)`. A read
 * is charged after it is made (its cost is known only then), so a burst is at most one read.
 */
export class BackfillPace {
  private blocksPaidAt = 0;
  private requestsPaidAt = 0;

  constructor(
    readonly blocksPerSec: number,
    readonly requestsPerSec: number,
  ) {}

  charge(blocks: number, requests: number, now: number): void {
    this.blocksPaidAt = Math.max(this.blocksPaidAt, now) + (blocks * 1000) / this.blocksPerSec;
    this.requestsPaidAt = Math.max(this.requestsPaidAt, now) + (requests * 1000) / this.requestsPerSec;
  }

  waitMs(now: number): number {
    return Math.max(0, this.blocksPaidAt - now, this.requestsPaidAt - now);
  }
}
