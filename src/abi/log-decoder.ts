/**
 * The abis and filters of indexed subscriptions, and the decoding of a candidate log under them: what the
 * Matcher (and anything building jobs the way it does) asks once the topic index has found a log's
 * candidates.
 *
 * - `acquire(sub)` makes the spec of a stored subscription from its `abi` (canonical declarations) and its
 *   `filter`: undefined for one with neither (nothing to decode, nothing to filter). The caller keeps the
 *   spec with the subscription (the Matcher's index holds it in the subscription's slot: no map by id
 *   here) and gives it back with `release(spec)` when the subscription changes or goes.
 * - `decode(spec, log)`: the log decoded as the spec's event for its topic0 (`LogDecoding`: the event's
 *   declaration, the arguments the filters read, and the webhook's `event`, null when the log does not
 *   decode), or undefined when the spec has no abi. A log that does not decode calls `onDecodeFailure`
 *   once. The arguments are decoded at once (filters need them); the webhook's `event` (checksummed
 *   addresses, integers as strings) the first time it is read, so a log every filter drops never pays
 *   for it (decode.ts).
 * - `accepts(spec, log, decoding)`: the spec's filter on the log (filter.ts); true without a filter.
 * - `eventOf(declaration, log)`: the webhook `event` of a log decoded as the event of that declaration,
 *   for a retraction (the match record names the declaration; its subscription may be gone or changed).
 *
 * Memory, each with its bound (100,000 subscriptions is the design point; bench:match's decoded case
 * prints the total):
 * - per subscription: its spec (its event set and its compiled filter, filter.ts), held by the caller:
 *   127 B with a filter of one condition on an integer (measured on node 20), 226 B on average in
 *   bench:match's decoded case (a quarter of its filters are an `or` of two conditions);
 * - event sets, interned by the subscription's abi: one per distinct abi among the subscriptions set
 *   here, dropped with the last of them (reference counts), so 100,000 subscriptions sharing an abi hold
 *   one copy of it. A set is keyed by its events' numbers (declarations run to hundreds of characters)
 *   and holds up to 8 events in a list, more in a `Map` by topic0;
 * - events, interned by declaration: one parsed event and its decoder (decode.ts) per distinct event
 *   among those sets (about a kilobyte each), dropped with the last set naming it;
 * - the decodings of the log being matched: one per event it was decoded as, dropped when another log
 *   comes (the Matcher takes a block's logs one after the other, and all of a log's candidates
 *   together), so a log is decoded once however many subscriptions share its event;
 * - declarations parsed for `eventOf` that no set holds: at most 256, the oldest dropped first.
 */
import { EventDecoder, type DecodedArgs, type WebhookEvent } from './decode.ts';
import { eventFromDeclaration } from './events.ts';
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

/** The events of one abi: a few kept in a list (a `Map` costs 190 B and more), many in a `Map` by topic0. */
interface EventSet {
  readonly key: string;
  readonly events: readonly EventDecoder[] | ReadonlyMap<string, EventDecoder>;
  refs: number;
}

interface KnownEvent {
  readonly decoder: EventDecoder;
  /** The event's number in set keys. */
  readonly n: number;
  refs: number;
}

const SMALL_SET = 8;

export interface DecodingSpec {
  readonly events: EventSet | undefined;
  readonly filter: CompiledFilter | undefined;
}

/**
 * A log decoded as one event. `event`, the webhook's rendering (addresses checksummed, integers as
 * strings), is made the first time it is read, so a log every filter drops never pays for it.
 */
export class LogDecoding {
  private rendered: WebhookEvent | null | undefined = undefined;

  constructor(
    private readonly decoder: EventDecoder,
    /** The event's arguments for filters (decode.ts); undefined when the log does not decode. */
    readonly args: DecodedArgs | undefined,
  ) {}

  /** The declaration of the event the log was decoded as. */
  get declaration(): string {
    return this.decoder.event.declaration;
  }

  /** The webhook's `data.event`: null when the log does not decode. */
  get event(): WebhookEvent | null {
    if (this.rendered === undefined) this.rendered = this.args === undefined ? null : this.decoder.render(this.args);
    return this.rendered;
  }
}

const RETRACTION_CACHE = 256;

export class LogDecoder {
  private readonly sets = new Map<string, EventSet>();
  private readonly events = new Map<string, KnownEvent>();
  private nextEvent = 0;
  private current: DecodableLog | undefined;
  private readonly decodings = new Map<EventDecoder, LogDecoding>();
  private readonly parsed = new Map<string, EventDecoder>();

  constructor(private readonly onDecodeFailure: () => void = () => {}) {}

  /** The spec of `sub` (see the header); undefined when it has neither an abi nor a filter. */
  acquire(sub: DecodingSubscription): DecodingSpec | undefined {
    if (sub.abi === undefined && sub.filter === undefined) return undefined;
    const events = sub.abi === undefined ? undefined : this.intern(sub.abi);
    try {
      const filter = sub.filter === undefined ? undefined : compileFilter(sub.filter, events && decoders(events).map((d) => d.event));
      return { events, filter };
    } catch (err) {
      if (events !== undefined) this.releaseSet(events);
      throw err;
    }
  }

  /** Gives back a spec `acquire` made: its event set goes with the last spec holding it. */
  release(spec: DecodingSpec): void {
    if (spec.events !== undefined) this.releaseSet(spec.events);
  }

  /** Forgets every spec and event set (the caller dropped the specs it held). */
  clear(): void {
    this.sets.clear();
    this.events.clear();
    this.forgetLog();
  }

  decode(spec: DecodingSpec, log: DecodableLog): LogDecoding | undefined {
    if (spec.events === undefined) return undefined;
    const decoder = decoderFor(spec.events, log.topics[0]);
    if (decoder === undefined) return undefined;
    if (log !== this.current) {
      this.decodings.clear();
      this.current = log;
    }
    let decoding = this.decodings.get(decoder);
    if (decoding === undefined) {
      decoding = new LogDecoding(decoder, decoder.decode(log.topics, log.data));
      if (decoding.args === undefined) this.onDecodeFailure();
      this.decodings.set(decoder, decoding);
    }
    return decoding;
  }

  accepts(spec: DecodingSpec, log: DecodableLog, decoding: LogDecoding | undefined): boolean {
    return spec.filter === undefined || spec.filter.test(log, decoding?.args);
  }

  eventOf(declaration: string, log: DecodableLog): WebhookEvent | null {
    let decoder = this.events.get(declaration)?.decoder ?? this.parsed.get(declaration);
    if (decoder === undefined) {
      decoder = new EventDecoder(eventFromDeclaration(declaration));
      if (this.parsed.size >= RETRACTION_CACHE) this.parsed.delete(this.parsed.keys().next().value!);
      this.parsed.set(declaration, decoder);
    }
    return new LogDecoding(decoder, decoder.decode(log.topics, log.data)).event;
  }

  /** Drops the decodings of the last log (the caller is done with its logs). */
  forgetLog(): void {
    this.current = undefined;
    this.decodings.clear();
  }

  private releaseSet(set: EventSet): void {
    if (--set.refs > 0) return;
    this.sets.delete(set.key);
    for (const { event } of decoders(set)) {
      const known = this.events.get(event.declaration)!;
      if (--known.refs === 0) this.events.delete(event.declaration);
    }
  }

  private intern(abi: readonly string[]): EventSet {
    const known = [...new Set(abi)].map((declaration) => {
      let event = this.events.get(declaration);
      if (event === undefined) {
        event = { decoder: new EventDecoder(eventFromDeclaration(declaration)), n: this.nextEvent++, refs: 0 };
        this.events.set(declaration, event);
      }
      return event;
    });
    // The key names the events by number: an abi's declarations run to hundreds of characters.
    const key = known.map((e) => e.n).join(',');
    let set = this.sets.get(key);
    if (set === undefined) {
      for (const e of known) e.refs++;
      const list = known.map((e) => e.decoder);
      set = { key, events: list.length <= SMALL_SET ? list : new Map(list.map((d) => [d.event.topic0, d])), refs: 0 };
      this.sets.set(key, set);
    }
    set.refs++;
    return set;
  }
}

function decoders(set: EventSet): EventDecoder[] {
  return set.events instanceof Map
    ? [...(set.events as ReadonlyMap<string, EventDecoder>).values()]
    : [...(set.events as readonly EventDecoder[])];
}

function decoderFor(set: EventSet, topic0: string | undefined): EventDecoder | undefined {
  if (topic0 === undefined) return undefined;
  if (set.events instanceof Map) return (set.events as ReadonlyMap<string, EventDecoder>).get(topic0);
  for (const d of set.events as readonly EventDecoder[]) if (d.event.topic0 === topic0) return d;
  return undefined;
}
