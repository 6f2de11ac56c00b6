/**
 * The Matcher's in-memory index of subscriptions: chain -> address -> topic0 -> leaf, with a wildcard
 * branch at each level (subscriptions without addresses, and those whose topic0 is any). A log
 * therefore reaches four leaves at most — (its address, its topic0), (its address, any),
 * (any, its topic0), (any, any) — and a subscription sits in exactly one of them for a given log
 * (its addresses and topic0 alternatives are deduplicated), so results need no deduplication.
 *
 * Inside a leaf, a subscription is filed under its first constrained position among topics 1..3
 * (`byTopic[1..3]`: topic -> subscriptions), or in `rest` when it constrains none. "Transfers of token X
 * to my wallet" is the common shape and thousands of them share one (address, topic0): this second
 * level keeps the candidates of a log close to its real matches. Candidates then get the exact check of
 * topics 1..3 and of the topic count, with go-ethereum's `filterLogs` rules (see
 * src/store/subscriptions.ts). Never a scan of all subscriptions.
 *
 * `add` replaces a subscription with the same id; `remove` is O(size of its buckets). Addresses and
 * topics must be lowercase (the store and the listener's schema guarantee it).
 *
 * Memory (100,000 subscriptions is the design point): the index keeps its own copy of each
 * subscription with interned strings — subscriptions parsed from the store each carry their own copy
 * of the same token addresses, event signatures and endpoint ids — and lists of one are stored as the
 * entry itself, not as an array. The intern pool is swept once removals reach half the live count.
 */
import type { Subscription } from '../../store/subscriptions.ts';

/** The parts of a log the filter reads. */
export interface MatchableLog {
  readonly address: string;
  readonly topics: readonly string[];
}

type Position = null | string | ReadonlySet<string>;
type KeyPosition = 0 | 1 | 2 | 3;
/** A list of entries; a list of one is the entry itself (most topic keys have a single subscriber). */
type Entries = Entry | Entry[];

class Entry {
  constructor(
    readonly sub: Subscription,
    readonly minTopics: number,
    readonly t1: Position,
    readonly t2: Position,
    readonly t3: Position,
    /** The position (1..3) the entry is filed under inside a leaf, 0 for the leaf's `rest`. */
    readonly keyPosition: KeyPosition,
  ) {}
}

/** Subscriptions sharing (address or any, topic0 or any), filed by their first constrained topic. */
class Leaf {
  p1: Map<string, Entries> | undefined = undefined;
  p2: Map<string, Entries> | undefined = undefined;
  p3: Map<string, Entries> | undefined = undefined;
  rest: Entries | undefined = undefined;
  size = 0;
}

class TopicBranches {
  readonly byTopic0 = new Map<string, Leaf>();
  anyTopic0: Leaf | undefined = undefined;
}

class ChainBranches {
  readonly byAddress = new Map<string, TopicBranches>();
  readonly anyAddress = new TopicBranches();
}

const NONE: readonly Subscription[] = Object.freeze([]);

export class SubscriptionIndex {
  private readonly chains = new Map<number, ChainBranches>();
  private readonly entries = new Map<string, Entry>();
  private pool = new Map<string, string>();
  private removedSinceSweep = 0;

  get size(): number {
    return this.entries.size;
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  add(input: Subscription): void {
    this.remove(input.id);
    const sub = this.compact(input);
    const topics = sub.topics ?? [];
    const keyPosition = ([1, 2, 3] as const).find((p) => alternatives(topics[p]).length > 0) ?? 0;
    const entry = new Entry(sub, topics.length, compilePosition(topics[1]), compilePosition(topics[2]), compilePosition(topics[3]), keyPosition);
    this.entries.set(sub.id, entry);
    let chain = this.chains.get(sub.chainId);
    if (!chain) {
      chain = new ChainBranches();
      this.chains.set(sub.chainId, chain);
    }
    for (const branches of addressBranches(chain, sub, true)) {
      for (const leaf of leaves(branches, sub, true)) fileEntry(leaf, entry);
    }
  }

  remove(id: string): boolean {
    const entry = this.entries.get(id);
    if (!entry) return false;
    this.entries.delete(id);
    const { sub } = entry;
    const chain = this.chains.get(sub.chainId)!;
    for (const branches of addressBranches(chain, sub, false)) {
      for (const leaf of leaves(branches, sub, false)) unfileEntry(leaf, entry);
      // Drop what became empty, so a churn of subscriptions does not leave a trail of empty maps.
      for (const t0 of alternatives(sub.topics?.[0])) if (branches.byTopic0.get(t0)?.size === 0) branches.byTopic0.delete(t0);
      if (branches.anyTopic0?.size === 0) branches.anyTopic0 = undefined;
    }
    for (const a of sub.addresses ?? []) {
      const b = chain.byAddress.get(a);
      if (b && b.byTopic0.size === 0 && b.anyTopic0 === undefined) chain.byAddress.delete(a);
    }
    if (chain.byAddress.size === 0 && chain.anyAddress.byTopic0.size === 0 && chain.anyAddress.anyTopic0 === undefined) {
      this.chains.delete(sub.chainId);
    }
    if (++this.removedSinceSweep > this.entries.size / 2 + 1024) this.sweepPool();
    return true;
  }

  clear(): void {
    this.chains.clear();
    this.entries.clear();
    this.pool.clear();
    this.removedSinceSweep = 0;
  }

  /** Every subscription of `chainId` whose filter accepts `log`. */
  match(chainId: number, log: MatchableLog): readonly Subscription[] {
    const chain = this.chains.get(chainId);
    if (!chain) return NONE;
    let out: Subscription[] | undefined;
    const byAddress = chain.byAddress.get(log.address);
    if (byAddress) out = collect(byAddress, log, out);
    out = collect(chain.anyAddress, log, out);
    return out ?? NONE;
  }

  private intern(s: string): string {
    const known = this.pool.get(s);
    if (known !== undefined) return known;
    this.pool.set(s, s);
    return s;
  }

  /** A copy of the subscription whose repeated strings are shared with every other copy. */
  private compact(sub: Subscription): Subscription {
    const out: Subscription = { id: sub.id, endpointId: this.intern(sub.endpointId), chainId: sub.chainId, createdAt: sub.createdAt };
    if (sub.addresses) out.addresses = sub.addresses.map((a) => this.intern(a));
    if (sub.topics) out.topics = sub.topics.map((p) => (p === null ? null : typeof p === 'string' ? this.intern(p) : p.map((t) => this.intern(t))));
    if (sub.confirmations !== undefined) out.confirmations = sub.confirmations;
    return out;
  }

  /** Rebuilds the intern pool from the live subscriptions, forgetting strings nobody uses any more. */
  private sweepPool(): void {
    const pool = new Map<string, string>();
    const keep = (s: string) => pool.set(s, s);
    for (const { sub } of this.entries.values()) {
      keep(sub.endpointId);
      sub.addresses?.forEach(keep);
      for (const p of sub.topics ?? []) if (p !== null) (typeof p === 'string' ? keep(p) : p.forEach(keep));
    }
    this.pool = pool;
    this.removedSinceSweep = 0;
  }
}

function collect(branches: TopicBranches, log: MatchableLog, out: Subscription[] | undefined): Subscription[] | undefined {
  const t0 = log.topics[0];
  if (t0 !== undefined) {
    const leaf = branches.byTopic0.get(t0);
    if (leaf !== undefined) out = collectLeaf(leaf, log, out);
  }
  if (branches.anyTopic0 !== undefined) out = collectLeaf(branches.anyTopic0, log, out);
  return out;
}

function collectLeaf(leaf: Leaf, log: MatchableLog, out: Subscription[] | undefined): Subscription[] | undefined {
  const topics = log.topics;
  const n = topics.length;
  if (leaf.p1 !== undefined && n > 1) out = check(leaf.p1.get(topics[1]!), log, out);
  if (leaf.p2 !== undefined && n > 2) out = check(leaf.p2.get(topics[2]!), log, out);
  if (leaf.p3 !== undefined && n > 3) out = check(leaf.p3.get(topics[3]!), log, out);
  return check(leaf.rest, log, out);
}

function check(list: Entries | undefined, log: MatchableLog, out: Subscription[] | undefined): Subscription[] | undefined {
  if (list === undefined) return out;
  if (list instanceof Entry) return accepts(list, log.topics) ? push(out, list.sub) : out;
  for (let i = 0; i < list.length; i++) {
    const e = list[i]!;
    if (accepts(e, log.topics)) out = push(out, e.sub);
  }
  return out;
}

function push(out: Subscription[] | undefined, sub: Subscription): Subscription[] {
  if (out === undefined) return [sub];
  out.push(sub);
  return out;
}

/** Topics 1..3 and the topic count (address and topic0 were settled by the branch and leaf). */
function accepts(e: Entry, topics: readonly string[]): boolean {
  return (
    topics.length >= e.minTopics &&
    (e.t1 === null || holds(e.t1, topics[1]!)) &&
    (e.t2 === null || holds(e.t2, topics[2]!)) &&
    (e.t3 === null || holds(e.t3, topics[3]!))
  );
}

function holds(position: string | ReadonlySet<string>, topic: string): boolean {
  return typeof position === 'string' ? position === topic : position.has(topic);
}

function alternatives(p: null | string | string[] | undefined): string[] {
  if (p === null || p === undefined) return [];
  return typeof p === 'string' ? [p] : [...new Set(p)];
}

function compilePosition(p: null | string | string[] | undefined): Position {
  const alts = alternatives(p);
  if (alts.length === 0) return null;
  return alts.length === 1 ? alts[0]! : new Set(alts);
}

function positionMap(leaf: Leaf, p: 1 | 2 | 3, create: boolean): Map<string, Entries> | undefined {
  if (p === 1) return create ? (leaf.p1 ??= new Map()) : leaf.p1;
  if (p === 2) return create ? (leaf.p2 ??= new Map()) : leaf.p2;
  return create ? (leaf.p3 ??= new Map()) : leaf.p3;
}

function withEntry(list: Entries | undefined, entry: Entry): Entries {
  if (list === undefined) return entry;
  if (list instanceof Entry) return [list, entry];
  list.push(entry);
  return list;
}

/** The list without `entry` (order carries no meaning: swap with the last and pop). */
function withoutEntry(list: Entries | undefined, entry: Entry): Entries | undefined {
  if (list === undefined || list === entry) return undefined;
  if (list instanceof Entry) return list;
  const i = list.indexOf(entry);
  if (i >= 0) {
    list[i] = list[list.length - 1]!;
    list.pop();
  }
  return list.length === 1 ? list[0] : list;
}

function fileEntry(leaf: Leaf, entry: Entry): void {
  leaf.size++;
  if (entry.keyPosition === 0) {
    leaf.rest = withEntry(leaf.rest, entry);
    return;
  }
  const map = positionMap(leaf, entry.keyPosition, true)!;
  for (const k of alternatives(entry.sub.topics![entry.keyPosition])) map.set(k, withEntry(map.get(k), entry));
}

function unfileEntry(leaf: Leaf, entry: Entry): void {
  leaf.size--;
  if (entry.keyPosition === 0) {
    leaf.rest = withoutEntry(leaf.rest, entry);
    return;
  }
  const map = positionMap(leaf, entry.keyPosition, false)!;
  for (const k of alternatives(entry.sub.topics![entry.keyPosition])) {
    const rest = withoutEntry(map.get(k), entry);
    if (rest === undefined) map.delete(k);
    else map.set(k, rest);
  }
  if (map.size === 0) {
    if (entry.keyPosition === 1) leaf.p1 = undefined;
    else if (entry.keyPosition === 2) leaf.p2 = undefined;
    else leaf.p3 = undefined;
  }
}

function addressBranches(chain: ChainBranches, sub: Subscription, create: boolean): TopicBranches[] {
  if (!sub.addresses || sub.addresses.length === 0) return [chain.anyAddress];
  const out: TopicBranches[] = [];
  for (const a of new Set(sub.addresses)) {
    let b = chain.byAddress.get(a);
    if (!b && create) {
      b = new TopicBranches();
      chain.byAddress.set(a, b);
    }
    if (b) out.push(b);
  }
  return out;
}

function leaves(branches: TopicBranches, sub: Subscription, create: boolean): Leaf[] {
  const keys = alternatives(sub.topics?.[0]);
  if (keys.length === 0) {
    if (!branches.anyTopic0 && create) branches.anyTopic0 = new Leaf();
    return branches.anyTopic0 ? [branches.anyTopic0] : [];
  }
  const out: Leaf[] = [];
  for (const t0 of keys) {
    let leaf = branches.byTopic0.get(t0);
    if (!leaf && create) {
      leaf = new Leaf();
      branches.byTopic0.set(t0, leaf);
    }
    if (leaf) out.push(leaf);
  }
  return out;
}
