/**
 * Mailbox: a bounded FIFO ring buffer of user messages plus a system lane that is always drained first.
 *
 * - Capacity is fixed at creation. `offer` never grows the ring: under `backpressure` a full mailbox
 *   refuses the message (the sender's `tell` returns false; `send` waits for room through `waitForRoom`);
 *   under `drop-newest` the offered message is dropped; under `drop-oldest` the head is evicted to make
 *   room. Whatever is refused or evicted is returned to the caller, which sends it to dead letters:
 *   the mailbox itself never loses a message silently.
 * - Each slot carries an optional reply (the pending `ask`), so a message and its answer travel together.
 * - The system lane (stop, health probes) is a small unbounded queue: it holds kernel signals, at most a
 *   few per actor, and the dispatcher takes from it before any user message.
 */
import type { OverflowPolicy } from './types.ts';

export interface Reply {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export interface SystemSignal {
  kind: 'stop' | 'health';
  done(value?: unknown): void;
}

export type OfferResult =
  { accepted: true; evicted?: undefined } | { accepted: true; evicted: { msg: unknown; reply: Reply | undefined } } | { accepted: false };

const ACCEPTED: OfferResult = { accepted: true };
const REFUSED: OfferResult = { accepted: false };

export class Mailbox<M = unknown> {
  readonly capacity: number;
  readonly overflow: OverflowPolicy;
  private readonly msgs: (M | undefined)[];
  private readonly replies: (Reply | undefined)[];
  private head = 0;
  private count = 0;
  private readonly system: SystemSignal[] = [];
  private roomWaiters: (() => void)[] = [];

  constructor(capacity: number, overflow: OverflowPolicy) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`mailbox capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.overflow = overflow;
    this.msgs = new Array<M | undefined>(capacity);
    this.replies = new Array<Reply | undefined>(capacity);
  }

  get size(): number {
    return this.count;
  }

  get hasSystem(): boolean {
    return this.system.length > 0;
  }

  isEmpty(): boolean {
    return this.count === 0 && this.system.length === 0;
  }

  offer(msg: M, reply?: Reply): OfferResult {
    if (this.count < this.capacity) {
      this.put(msg, reply);
      return ACCEPTED;
    }
    if (this.overflow === 'drop-oldest') {
      const evictedReply = this.replies[this.head];
      const evictedMsg = this.takeHead();
      this.put(msg, reply);
      return { accepted: true, evicted: { msg: evictedMsg, reply: evictedReply } };
    }
    return REFUSED;
  }

  /** Takes the head message; its reply (if any) is handed to `onReply` before the slot is cleared. */
  shift(): { msg: M; reply: Reply | undefined } | undefined {
    if (this.count === 0) return undefined;
    const reply = this.replies[this.head];
    const msg = this.takeHead();
    return { msg, reply };
  }

  /** Hot-path variant of `shift` for the dispatcher: returns the message and leaves its reply in `lastReply`. */
  lastReply: Reply | undefined = undefined;
  take(): M {
    this.lastReply = this.replies[this.head];
    return this.takeHead();
  }

  pushSystem(signal: SystemSignal): void {
    this.system.push(signal);
  }

  shiftSystem(): SystemSignal | undefined {
    return this.system.shift();
  }

  /** Resolves when there is room for one more message (immediately if there is already). */
  waitForRoom(): Promise<void> {
    if (this.count < this.capacity) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** Empties the mailbox, returning what it held (for dead letters at shutdown). */
  drainAll(): { msg: M; reply: Reply | undefined }[] {
    const out: { msg: M; reply: Reply | undefined }[] = [];
    for (let e = this.shift(); e; e = this.shift()) out.push(e);
    return out;
  }

  private put(msg: M, reply: Reply | undefined): void {
    let tail = this.head + this.count;
    if (tail >= this.capacity) tail -= this.capacity;
    this.msgs[tail] = msg;
    this.replies[tail] = reply;
    this.count++;
  }

  private takeHead(): M {
    const h = this.head;
    const msg = this.msgs[h] as M;
    this.msgs[h] = undefined;
    this.replies[h] = undefined;
    this.head = h + 1 === this.capacity ? 0 : h + 1;
    this.count--;
    if (this.roomWaiters.length > 0) this.roomWaiters.shift()!();
    return msg;
  }
}
