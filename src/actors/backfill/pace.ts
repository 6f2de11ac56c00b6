/**
 * BackfillPace: how long the backfills of one chain wait before their next step, so that they take at
 * most `blocksPerSec` blocks and `requestsPerSec` JSON-RPC calls per second from the chain's provider,
 * and hand at most `logsPerSec` logs per second to the Matcher (each becomes jobs to write and webhooks
 * to send, on the cores the live path uses). A pure state machine, the clock an argument.
 *
 * Each resource keeps the time at which what was spent so far is paid for (a virtual clock, as GCRA
 * does): spending `n` moves its clock to `max(clock, now)` plus `n` at its rate. The next read may
 * start once the blocks and calls are paid for (`readWaitMs(now)`), the next message to the Matcher
 * once the logs are (`logsWaitMs(now)`): the messages of a page wait on the logs alone, so a page takes
 * the longer of its read's time and its logs' time, not their sum. A step is charged after it is made
 * (a read's cost is known only then), so a burst is at most one step.
 */
export class BackfillPace {
  private blocksPaidAt = 0;
  private requestsPaidAt = 0;
  private logsPaidAt = 0;

  constructor(
    readonly blocksPerSec: number,
    readonly requestsPerSec: number,
    readonly logsPerSec: number,
  ) {}

  /** A read of `blocks` blocks that took `requests` calls. */
  chargeRead(blocks: number, requests: number, now: number): void {
    this.blocksPaidAt = Math.max(this.blocksPaidAt, now) + (blocks * 1000) / this.blocksPerSec;
    this.requestsPaidAt = Math.max(this.requestsPaidAt, now) + (requests * 1000) / this.requestsPerSec;
  }

  /** `logs` logs handed to the Matcher. */
  chargeLogs(logs: number, now: number): void {
    this.logsPaidAt = Math.max(this.logsPaidAt, now) + (logs * 1000) / this.logsPerSec;
  }

  readWaitMs(now: number): number {
    return Math.max(0, this.blocksPaidAt - now, this.requestsPaidAt - now);
  }

  logsWaitMs(now: number): number {
    return Math.max(0, this.logsPaidAt - now);
  }
}
