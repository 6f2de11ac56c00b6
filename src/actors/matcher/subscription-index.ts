/**
 * The Matcher's in-memory index of subscriptions: chain -> address -> topic0 -> bucket, with a wildcard
 * branch at each level (subscriptions without addresses, and those whose topic0 is any). A log
 * therefore reaches four buckets at most — (its address, its topic0), (its address, any),
 * (any, its topic0), (any, any) — and a subscription sits in exactly one of them for a given log
 * (its addresses and topic0 alternatives are deduplicated), so results need no deduplication.
 *
 * A bucket whose subscriptions constrain none of topics 1..3 is just their list. Otherwise it is a
 * leaf: each subscription is filed under its first constrained position among topics 1..3
 * (topic -> subscriptions), or in `rest` when it constrains none. "Transfers of token X to my wallet"
 * is the common shape and thousands of them share one (address, topic0): this second level keeps the
 * candidates of a log close to its real matches. Candidates then get the exact check of the topic
 * count and of the constrained positions after the one they are filed under, with go-ethereum's
 * `filterLogs` rules (see src/store/subscriptions.ts). Never a scan of all subscriptions.
 *
 * `match` yields `{ id, endpointId, spec }`: all the Matcher needs to build a job, `spec` being what
 * `add` was given with the subscription (the Matcher's decoding spec, src/abi/log-decoder.ts, kept in
 * the slot rather than in a map by id of its own). `add` replaces a subscription with the same id. Addresses and topics must be lowercase (the store and the
 * listener's schema guarantee it).
 *
 * Memory (100,000 subscriptions is the design point: ~215 B each, against ~560 B for a tree of
 * per-subscription objects; bench/match.bench.ts prints it):
 * - a subscription is a slot number: its id, its endpoint id, its spec and its topic count live in
 *   per-slot arrays, and buckets hold slot numbers, a bucket of one being the number itself; the rare filters
 *   with more than one constrained position among topics 1..3 keep their extra checks in a side map;
 * - endpoint ids and topics are interned (each parsed record carries its own copies; one wallet
 *   topic can key hundreds of leaves), addresses are held once as keys;
 * - a node of up to 8 keys is a flat `[key, value, …]` array: a `Map` costs 190 B and more at any
 *   size, and most nodes hold a few keys;
 * - `remove` only empties the slot (O(1)): buckets keep the dead number, skipped by `match`, until
 *   dead slots outnumber half the live ones (and 1,024); then one pass over the index drops them,
 *   frees their slots for reuse and rebuilds the intern pool.
 */
import type { Subscription, TopicPosition } from '../../store/subscriptions.ts';

/** The parts of a log the filter reads. */
export interface MatchableLog {
  readonly address: string;
  readonly topics: readonly string[];
}

/** A subscription that accepts a log: what a job needs. */
export interface MatchedSubscription<S = unknown> {
  readonly id: string;
  readonly endpointId: string;
  /** What `add` was given with the subscription. */
  readonly spec: S | undefined;
}

/** The key of the wildcard branch (addresses and topics are 0x-hex, never empty). */
const ANY = '';
/** Bits 0..2 of a slot's flags: the topic count its filter requires. Bit 3: it has extra checks. */
const MIN_TOPICS = 0b0111;
const HAS_CHECKS = 0b1000;
const COMPACT_AFTER = 1024;

/** Slot numbers of the subscriptions in a bucket; a bucket of one is the number itself. */
type Slots = number | number[];

/**
 * A map from topic (or address) to V: up to SMALL keys a flat `[key, value, key, value, …]` array
 * (a `Map` costs 190 B and more at any size, and most nodes hold a few keys), beyond that a `Map`.
 */
type Keyed<V> = unknown[] | Map<string, V>;
const SMALL = 8;

/** A bucket holding subscriptions that constrain topics 1..3, filed by their first such position. */
class Leaf {
  p1: Keyed<Slots> | undefined = undefined;
  p2: Keyed<Slots> | undefined = undefined;
  p3: Keyed<Slots> | undefined = undefined;
  constructor(public rest: Slots | undefined) {}
}
type Bucket = Slots | Leaf;
/** topic0 (or ANY) -> bucket. */
type TopicNode = Keyed<Bucket>;

class ChainNode {
  readonly byAddress = new Map<string, TopicNode>();
  any: TopicNode | undefined = undefined;
}

/** One more condition of a filter: the log's topic at `position` is `accepts` (or one of them). */
interface Check {
  readonly position: 1 | 2 | 3;
  readonly accepts: string | ReadonlySet<string>;
}

const NONE: readonly MatchedSubscription<never>[] = Object.freeze([]);

/** `S`: what the caller keeps with each subscription (`add`'s `spec`, given back by `match` and `spec`). */
export class SubscriptionIndex<S = undefined> {
  private readonly chains = new Map<number, ChainNode>();
  private readonly slotOf = new Map<string, number>();
  private ids: (string | undefined)[] = [];
  private endpointIds: (string | undefined)[] = [];
  private specs: (S | undefined)[] = [];
  private flags = new Uint8Array(1024);
  private readonly checks = new Map<number, readonly Check[]>();
  private pool = new Map<string, string>();
  private free: number[] = [];
  private dead = 0;
  private readonly compactAfter: number;

  /** `compactAfter`: dead slots tolerated before a compaction, at least (default 1,024; tests use less). */
  constructor(options: { compactAfter?: number } = {}) {
    this.compactAfter = options.compactAfter ?? COMPACT_AFTER;
  }

  get size(): number {
    return this.slotOf.size;
  }

  has(id: string): boolean {
    return this.slotOf.has(id);
  }

  /** What `add` was given with the subscription `id`; undefined when none, or when it is not indexed. */
  spec(id: string): S | undefined {
    const slot = this.slotOf.get(id);
    return slot === undefined ? undefined : this.specs[slot];
  }

  add(sub: Subscription, spec?: S): void {
    this.remove(sub.id);
    const topics = sub.topics ?? [];
    const keyPosition = ([1, 2, 3] as const).find((p) => alternatives(topics[p]).length > 0) ?? 0;
    const checks: Check[] = [];
    for (const position of [2, 3] as const) {
      const alts = alternatives(topics[position]);
      if (position > keyPosition && keyPosition > 0 && alts.length > 0)
        checks.push({ position, accepts: alts.length === 1 ? alts[0]! : new Set(alts) });
    }
    const slot = this.allocate(sub.id, this.intern(sub.endpointId), spec, topics.length | (checks.length > 0 ? HAS_CHECKS : 0));
    if (checks.length > 0) this.checks.set(slot, checks);

    let chain = this.chains.get(sub.chainId);
    if (!chain) {
      chain = new ChainNode();
      this.chains.set(sub.chainId, chain);
    }
    const topic0s = alternatives(topics[0]).map((t) => this.intern(t));
    const keys = keyPosition === 0 ? [] : alternatives(topics[keyPosition]).map((t) => this.intern(t));
    const fileInto = (node: TopicNode | undefined): TopicNode => {
      for (const t0 of topic0s.length > 0 ? topic0s : [ANY]) node = put(node, t0, fileSlot(get(node, t0), slot, keyPosition, keys));
      return node!;
    };
    const addresses = sub.addresses && sub.addresses.length > 0 ? new Set(sub.addresses) : undefined;
    if (addresses === undefined) chain.any = fileInto(chain.any);
    else for (const a of addresses) chain.byAddress.set(a, fileInto(chain.byAddress.get(a)));
  }

  remove(id: string): boolean {
    const slot = this.slotOf.get(id);
    if (slot === undefined) return false;
    this.slotOf.delete(id);
    this.ids[slot] = undefined;
    this.endpointIds[slot] = undefined;
    this.specs[slot] = undefined;
    this.checks.delete(slot);
    this.dead++;
    if (this.slotOf.size === 0) this.clear();
    else if (this.dead > this.compactAfter && this.dead > this.slotOf.size / 2) this.compact();
    return true;
  }

  clear(): void {
    this.chains.clear();
    this.slotOf.clear();
    this.ids = [];
    this.endpointIds = [];
    this.specs = [];
    this.flags = new Uint8Array(1024);
    this.checks.clear();
    this.pool = new Map();
    this.free = [];
    this.dead = 0;
  }

  /** Every subscription of `chainId` whose filter accepts `log`. */
  match(chainId: number, log: MatchableLog): readonly MatchedSubscription<S>[] {
    const chain = this.chains.get(chainId);
    if (chain === undefined) return NONE;
    let out: MatchedSubscription<S>[] | undefined;
    const byAddress = chain.byAddress.get(log.address);
    if (byAddress !== undefined) out = this.fromNode(byAddress, log.topics, out);
    if (chain.any !== undefined) out = this.fromNode(chain.any, log.topics, out);
    return out ?? NONE;
  }

  private fromNode(
    node: TopicNode,
    topics: readonly string[],
    out: MatchedSubscription<S>[] | undefined,
  ): MatchedSubscription<S>[] | undefined {
    const t0 = topics[0];
    if (t0 !== undefined && t0 !== ANY) {
      const bucket = get(node, t0);
      if (bucket !== undefined) out = this.fromBucket(bucket, topics, out);
    }
    const anyTopic0 = get(node, ANY);
    return anyTopic0 === undefined ? out : this.fromBucket(anyTopic0, topics, out);
  }

  private fromBucket(
    bucket: Bucket,
    topics: readonly string[],
    out: MatchedSubscription<S>[] | undefined,
  ): MatchedSubscription<S>[] | undefined {
    if (!(bucket instanceof Leaf)) return this.fromSlots(bucket, topics, out);
    const n = topics.length;
    if (bucket.p1 !== undefined && n > 1) out = this.fromSlots(get(bucket.p1, topics[1]!), topics, out);
    if (bucket.p2 !== undefined && n > 2) out = this.fromSlots(get(bucket.p2, topics[2]!), topics, out);
    if (bucket.p3 !== undefined && n > 3) out = this.fromSlots(get(bucket.p3, topics[3]!), topics, out);
    return this.fromSlots(bucket.rest, topics, out);
  }

  private fromSlots(
    slots: Slots | undefined,
    topics: readonly string[],
    out: MatchedSubscription<S>[] | undefined,
  ): MatchedSubscription<S>[] | undefined {
    if (slots === undefined) return out;
    if (typeof slots === 'number') return this.accepts(slots, topics) ? push(out, this.matched(slots)) : out;
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i]!;
      if (this.accepts(slot, topics)) out = push(out, this.matched(slot));
    }
    return out;
  }

  /** The topic count and the positions after the filed one (address, topic0 and that position were settled by the path). */
  private accepts(slot: number, topics: readonly string[]): boolean {
    if (this.ids[slot] === undefined) return false;
    const flags = this.flags[slot]!;
    if (topics.length < (flags & MIN_TOPICS)) return false;
    if ((flags & HAS_CHECKS) === 0) return true;
    for (const c of this.checks.get(slot)!) {
      const topic = topics[c.position]!;
      if (typeof c.accepts === 'string' ? c.accepts !== topic : !c.accepts.has(topic)) return false;
    }
    return true;
  }

  private matched(slot: number): MatchedSubscription<S> {
    return { id: this.ids[slot]!, endpointId: this.endpointIds[slot]!, spec: this.specs[slot] };
  }

  private allocate(id: string, endpointId: string, spec: S | undefined, flags: number): number {
    const slot = this.free.pop() ?? this.ids.length;
    if (slot >= this.flags.length) {
      const grown = new Uint8Array(this.flags.length * 2);
      grown.set(this.flags);
      this.flags = grown;
    }
    this.ids[slot] = id;
    this.endpointIds[slot] = endpointId;
    this.specs[slot] = spec;
    this.flags[slot] = flags;
    this.slotOf.set(id, slot);
    return slot;
  }

  /** One copy of each endpoint id and topic: every parsed record carries its own copies of them. */
  private intern(s: string): string {
    const known = this.pool.get(s);
    if (known !== undefined) return known;
    this.pool.set(s, s);
    return s;
  }

  /** Drops dead slot numbers from every bucket, frees those slots, and rebuilds the intern pool. */
  private compact(): void {
    const pool = new Map<string, string>();
    const keep = (key: string) => {
      pool.set(key, key);
      return key;
    };
    const live = (s: number) => this.ids[s] !== undefined;
    const pruneSlots = (slots: Slots): Slots | undefined => {
      if (typeof slots === 'number') return live(slots) ? slots : undefined;
      const kept = slots.filter(live);
      return kept.length === 0 ? undefined : kept.length === 1 ? kept[0] : kept;
    };
    const pruneBucket = (bucket: Bucket): Bucket | undefined => {
      if (!(bucket instanceof Leaf)) return pruneSlots(bucket);
      bucket.rest = bucket.rest === undefined ? undefined : pruneSlots(bucket.rest);
      bucket.p1 = bucket.p1 && pruneKeyed(bucket.p1, pruneSlots, keep);
      bucket.p2 = bucket.p2 && pruneKeyed(bucket.p2, pruneSlots, keep);
      bucket.p3 = bucket.p3 && pruneKeyed(bucket.p3, pruneSlots, keep);
      if (bucket.p1 === undefined && bucket.p2 === undefined && bucket.p3 === undefined) return bucket.rest;
      return bucket;
    };
    for (const [chainId, chain] of this.chains) {
      for (const [address, node] of chain.byAddress) {
        const kept = pruneKeyed(node, pruneBucket, keep);
        if (kept === undefined) chain.byAddress.delete(address);
        else chain.byAddress.set(address, kept);
      }
      chain.any = chain.any && pruneKeyed(chain.any, pruneBucket, keep);
      if (chain.byAddress.size === 0 && chain.any === undefined) this.chains.delete(chainId);
    }
    this.free = [];
    for (let s = this.ids.length - 1; s >= 0; s--) {
      if (this.ids[s] === undefined) this.free.push(s);
      else keep(this.endpointIds[s]!);
    }
    this.pool = pool;
    this.dead = 0;
  }
}

function get<V>(keyed: Keyed<V> | undefined, key: string): V | undefined {
  if (keyed === undefined) return undefined;
  if (keyed instanceof Map) return keyed.get(key);
  for (let i = 0; i < keyed.length; i += 2) if (keyed[i] === key) return keyed[i + 1] as V;
  return undefined;
}

/** `keyed` with `key` set to `value`; a flat array grows by copy (exact size) and into a `Map` past SMALL keys. */
function put<V>(keyed: Keyed<V> | undefined, key: string, value: V): Keyed<V> {
  if (keyed === undefined) return [key, value];
  if (keyed instanceof Map) return keyed.set(key, value);
  for (let i = 0; i < keyed.length; i += 2) {
    if (keyed[i] === key) {
      keyed[i + 1] = value;
      return keyed;
    }
  }
  if (keyed.length < SMALL * 2) return [...keyed, key, value];
  const map = new Map<string, V>();
  for (let i = 0; i < keyed.length; i += 2) map.set(keyed[i] as string, keyed[i + 1] as V);
  return map.set(key, value);
}

/**
 * `keyed` with every value pruned (undefined drops the key) and `keep` called with each key kept; a
 * `Map` left with SMALL keys or fewer becomes a flat array again.
 */
function pruneKeyed<V>(keyed: Keyed<V>, prune: (v: V) => V | undefined, keep: (key: string) => string): Keyed<V> | undefined {
  const pairs: unknown[] = [];
  const entries: Iterable<[string, V]> = keyed instanceof Map ? keyed : flatEntries<V>(keyed);
  for (const [key, value] of entries) {
    const v = prune(value);
    if (v !== undefined) pairs.push(keep(key), v);
  }
  if (pairs.length === 0) return undefined;
  if (pairs.length <= SMALL * 2) return pairs;
  const map = new Map<string, V>();
  for (let i = 0; i < pairs.length; i += 2) map.set(pairs[i] as string, pairs[i + 1] as V);
  return map;
}

function* flatEntries<V>(pairs: unknown[]): Generator<[string, V]> {
  for (let i = 0; i < pairs.length; i += 2) yield [pairs[i] as string, pairs[i + 1] as V];
}

function withSlot(slots: Slots | undefined, slot: number): Slots {
  if (slots === undefined) return slot;
  if (typeof slots === 'number') return [slots, slot];
  slots.push(slot);
  return slots;
}

function fileSlot(bucket: Bucket | undefined, slot: number, keyPosition: 0 | 1 | 2 | 3, keys: readonly string[]): Bucket {
  if (keyPosition === 0) {
    if (!(bucket instanceof Leaf)) return withSlot(bucket, slot);
    bucket.rest = withSlot(bucket.rest, slot);
    return bucket;
  }
  const leaf = bucket instanceof Leaf ? bucket : new Leaf(bucket);
  for (const k of keys) {
    if (keyPosition === 1) leaf.p1 = put(leaf.p1, k, withSlot(get(leaf.p1, k), slot));
    else if (keyPosition === 2) leaf.p2 = put(leaf.p2, k, withSlot(get(leaf.p2, k), slot));
    else leaf.p3 = put(leaf.p3, k, withSlot(get(leaf.p3, k), slot));
  }
  return leaf;
}

function push<S>(out: MatchedSubscription<S>[] | undefined, m: MatchedSubscription<S>): MatchedSubscription<S>[] {
  if (out === undefined) return [m];
  out.push(m);
  return out;
}

/** The topics a position accepts, deduplicated; none for a wildcard. */
function alternatives(p: TopicPosition | undefined): string[] {
  if (p === null || p === undefined) return [];
  return typeof p === 'string' ? [p] : [...new Set(p)];
}
