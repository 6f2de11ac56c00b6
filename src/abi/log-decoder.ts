/**
 * The abis and filters of indexed subscriptions, and the decoding of a candidate log under them: what the
 * Matcher (and anything building jobs the way it does) asks once the topic index has found a log's
 * candidates.
 *
 * - `set(sub)` takes a stored subscription: its `abi` (canonical declarations) and its `filter`; one with
 *   neither is forgotten (`spec` answers undefined: nothing to decode, nothing to filter).
 * - `decode(spec, log)`: the log decoded as the spec's event for its topic0 (`LogDecoding`: the event's
 *   declaration, the webhook's `event`, null when the log does not decode, and viem's args), or
 *   undefined when the spec has no abi. A log that does not decode calls `onDecodeFailure` once.
 * - `accepts(spec, log, decoding)`: the spec's filter on the log (filter.ts); true without a filter.
 * - `eventOf(declaration, log)`: the webhook `event` of a log decoded as the event of that declaration,
 *   for a retraction (the match record names the declaration; its subscription may be gone or changed).
 *
 * Caches, each with its bound:
 * - event sets, interned by the subscription's abi (its declarations): one per distinct abi among the
 *   subscriptions set here, dropped with the last of them (reference counts), so 100,000 subscriptions
 *   sharing an abi hold one copy of it; and parsed events, interned by declaration: one per distinct
 *   event among those sets (a parsed event is about a kilobyte), dropped with the last set naming it.
 *   Filters are compiled per subscription (plain data, a hundred bytes or so each).
 * - the decodings of the log being matched: one per event it was decoded as, dropped when another log
 *   comes (the Matcher takes a block's logs one after the other, and all of a log's candidates
 *   together), so a log is decoded once however many subscriptions share its event.
 * - declarations parsed for `eventOf` that no set holds: at most 256, the oldest dropped first.
 */
import { decodeLog, type WebhookEvent } from './decode.ts';
import { eventFromDeclaration, type ChosenEvent } from './events.ts';
import { compileFilter, type CompiledFilter, type FilterLog } from './filter.ts';

/** The parts of a stored subscription read here. */
export interface DecodingSubscription {
  readonly id: string;
  readonly abi?: readonly string[] | undefined;
  readonly filter?: unknown;
}

/** The parts of a log read here. */
export interface DecodableLog extends FilterLog {
  readonly topics: readonly string[];
  readonly data: string;
}

interface EventSet {
  readonly key: string;
  readonly byTopic0: ReadonlyMap<string, ChosenEvent>;
  refs: number;
}

export interface DecodingSpec {
  readonly events: EventSet | undefined;
  readonly filter: CompiledFilter | undefined;
}

export interface LogDecoding {
  /** The declaration of the event the log was decoded as. */
  readonly declaration: string;
  /** The webhook's `data.event`: null when the log does not decode. */
  readonly event: WebhookEvent | null;
  /** viem's decoded arguments, for filters; undefined when the log does not decode. */
  readonly args: unknown;
}

const RETRACTION_CACHE = 256;

export class LogDecoder {
  private readonly specs = new Map<string, DecodingSpec>();
  private readonly sets = new Map<string, EventSet>();
  private readonly events = new Map<string, { event: ChosenEvent; refs: number }>();
  private current: DecodableLog | undefined;
  private readonly decodings = new Map<ChosenEvent, LogDecoding>();
  private readonly parsed = new Map<string, ChosenEvent>();

  constructor(private readonly onDecodeFailure: () => void = () => {}) {}

  /** Subscriptions with an abi or a filter. */
  get size(): number {
    return this.specs.size;
  }

  set(sub: DecodingSubscription): void {
    this.delete(sub.id);
    if (sub.abi === undefined && sub.filter === undefined) return;
    const events = sub.abi === undefined ? undefined : this.intern(sub.abi);
    const filter = sub.filter === undefined ? undefined : compileFilter(sub.filter, events && [...events.byTopic0.values()]);
    this.specs.set(sub.id, { events, filter });
  }

  delete(id: string): void {
    const spec = this.specs.get(id);
    if (spec === undefined) return;
    this.specs.delete(id);
    if (spec.events === undefined || --spec.events.refs > 0) return;
    this.sets.delete(spec.events.key);
    for (const event of spec.events.byTopic0.values()) {
      const known = this.events.get(event.declaration)!;
      if (--known.refs === 0) this.events.delete(event.declaration);
    }
  }

  clear(): void {
    this.specs.clear();
    this.sets.clear();
    this.events.clear();
    this.forgetLog();
  }

  spec(id: string): DecodingSpec | undefined {
    return this.specs.get(id);
  }

  decode(spec: DecodingSpec, log: DecodableLog): LogDecoding | undefined {
    const event = spec.events?.byTopic0.get(log.topics[0] ?? '');
    if (event === undefined) return undefined;
    if (log !== this.current) {
      this.decodings.clear();
      this.current = log;
    }
    let decoding = this.decodings.get(event);
    if (decoding === undefined) {
      decoding = this.decodeAs(event, log);
      if (decoding.event === null) this.onDecodeFailure();
      this.decodings.set(event, decoding);
    }
    return decoding;
  }

  accepts(spec: DecodingSpec, log: DecodableLog, decoding: LogDecoding | undefined): boolean {
    return spec.filter === undefined || spec.filter.test(log, decoding?.args);
  }

  eventOf(declaration: string, log: DecodableLog): WebhookEvent | null {
    let event = this.parsed.get(declaration);
    if (event === undefined) {
      const known = this.events.get(declaration);
      if (known !== undefined) return this.decodeAs(known.event, log).event;
      event = eventFromDeclaration(declaration);
      if (this.parsed.size >= RETRACTION_CACHE) this.parsed.delete(this.parsed.keys().next().value!);
      this.parsed.set(declaration, event);
    }
    return this.decodeAs(event, log).event;
  }

  /** Drops the decodings of the last log (the caller is done with its logs). */
  forgetLog(): void {
    this.current = undefined;
    this.decodings.clear();
  }

  private decodeAs(event: ChosenEvent, log: DecodableLog): LogDecoding {
    const decoded = decodeLog(event, log.topics, log.data);
    return { declaration: event.declaration, event: decoded?.event ?? null, args: decoded?.args };
  }

  private intern(abi: readonly string[]): EventSet {
    const key = abi.join('\n');
    let set = this.sets.get(key);
    if (set === undefined) {
      const byTopic0 = new Map<string, ChosenEvent>();
      for (const declaration of abi) {
        let known = this.events.get(declaration);
        if (known === undefined) {
          known = { event: eventFromDeclaration(declaration), refs: 0 };
          this.events.set(declaration, known);
        }
        known.refs++;
        byTopic0.set(known.event.topic0, known.event);
      }
      set = { key, byTopic0, refs: 0 };
      this.sets.set(key, set);
    }
    set.refs++;
    return set;
  }
}
