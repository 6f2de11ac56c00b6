/**
 * Dispatcher: runs ready actors in turns. An actor that receives a message while idle is queued here;
 * a run drains each queued actor up to its throughput, round robin, and stops after `turnBudget`
 * messages, yielding to the event loop with `setImmediate` (never one `setImmediate` per message).
 * Within a budget the next run is a microtask, so a quiet system answers an ask without waiting for
 * an event-loop turn.
 */

export interface Runnable {
  /** Handles up to `max` messages; returns how many it handled and whether it still has work. */
  runSlice(max: number): { handled: number; more: boolean };
}

export class Dispatcher {
  private readonly ready: Runnable[] = [];
  private readIndex = 0;
  private scheduled = false;
  private usedThisTurn = 0;
  private turnResetPending = false;
  private readonly runBound = () => this.run();
  private readonly resetTurn = () => {
    this.usedThisTurn = 0;
    this.turnResetPending = false;
  };

  constructor(
    readonly throughput = 256,
    readonly turnBudget = 4096,
  ) {}

  schedule(actor: Runnable): void {
    this.ready.push(actor);
    if (!this.scheduled) {
      this.scheduled = true;
      if (this.usedThisTurn < this.turnBudget) queueMicrotask(this.runBound);
      else setImmediate(this.runBound);
    }
  }

  private run(): void {
    this.scheduled = false;
    if (!this.turnResetPending) {
      this.turnResetPending = true;
      setImmediate(this.resetTurn);
    }
    while (this.readIndex < this.ready.length) {
      if (this.usedThisTurn >= this.turnBudget) {
        this.scheduled = true;
        setImmediate(this.runBound);
        this.compact();
        return;
      }
      const actor = this.ready[this.readIndex++]!;
      const { handled, more } = actor.runSlice(Math.min(this.throughput, this.turnBudget - this.usedThisTurn));
      this.usedThisTurn += handled;
      if (more) this.ready.push(actor);
    }
    this.ready.length = 0;
    this.readIndex = 0;
  }

  private compact(): void {
    this.ready.splice(0, this.readIndex);
    this.readIndex = 0;
  }
}
