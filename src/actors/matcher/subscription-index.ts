/**
 * The Matcher's in-memory index of subscriptions: chain -> address -> topic0 -> subscriptions, with a
 * wildcard bucket at each level (subscriptions without addresses, and those whose topic0 is any).
 * A log therefore looks at four buckets at most — (its address, its topic0), (its address, any),
 * (any, its topic0), (any, any) — and a subscription sits in exactly one of them for a given log
 * (its addresses and topic0 alternatives are deduplicated), so results need no deduplication.
 * Candidates then get the exact check of topics 1..3 and of the topic count, with go-ethereum's
 * `filterLogs` rules (see src/store/subscriptions.ts). Never a scan of all subscriptions.
 *
 * `add` replaces a subscription with the same id; `remove` is O(size of its buckets). Addresses and
 * topics must be lowercase (the store and the listener's schema guarantee it).
 */
import type { Subscription } from '../../store/subscriptions.ts';

/** The parts of a log the filter reads. */
export interface MatchableLog {
  readonly address: string;
  readonly topics: readonly string[];
}

type Position = null | string | ReadonlySet<string>;

interface Entry {
  readonly sub: Subscription;
  readonly minTopics: number;
  readonly t1: Position;
  readonly t2: Position;
  readonly t3: Position;
}

interface TopicBuckets {
  readonly byTopic0: Map<string, Entry[]>;
  readonly anyTopic0: Entry[];
}

interface ChainBuckets {
  readonly byAddress: Map<string, TopicBuckets>;
  readonly anyAddress: TopicBuckets;
}

const NONE: readonly Subscription[] = Object.freeze([]);

export class SubscriptionIndex {
  private readonly chains = new Map<number, ChainBuckets>();
  private readonly entries = new Map<string, Entry>();

  get size(): number {
    return this.entries.size;
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  add(sub: Subscription): void {
    this.remove(sub.id);
    const topics = sub.topics ?? [];
    const entry: Entry = {
      sub,
      minTopics: topics.length,
      t1: compilePosition(topics[1]),
      t2: compilePosition(topics[2]),
      t3: compilePosition(topics[3]),
    };
    this.entries.set(sub.id, entry);
    let chain = this.chains.get(sub.chainId);
    if (!chain) {
      chain = { byAddress: new Map(), anyAddress: newTopicBuckets() };
      this.chains.set(sub.chainId, chain);
    }
    for (const buckets of addressBuckets(chain, sub, true)) {
      for (const list of topicLists(buckets, sub, true)) list.push(entry);
    }
  }

  remove(id: string): boolean {
    const entry = this.entries.get(id);
    if (!entry) return false;
    this.entries.delete(id);
    const { sub } = entry;
    const chain = this.chains.get(sub.chainId)!;
    for (const buckets of addressBuckets(chain, sub, false)) {
      for (const list of topicLists(buckets, sub, false)) {
        const i = list.indexOf(entry);
        // Order inside a bucket carries no meaning: swap with the last and pop.
        if (i >= 0) {
          list[i] = list[list.length - 1]!;
          list.pop();
        }
      }
      for (const t0 of topic0Keys(sub)) if (buckets.byTopic0.get(t0)?.length === 0) buckets.byTopic0.delete(t0);
    }
    for (const a of sub.addresses ?? []) {
      const b = chain.byAddress.get(a);
      if (b && b.byTopic0.size === 0 && b.anyTopic0.length === 0) chain.byAddress.delete(a);
    }
    if (chain.byAddress.size === 0 && chain.anyAddress.byTopic0.size === 0 && chain.anyAddress.anyTopic0.length === 0) {
      this.chains.delete(sub.chainId);
    }
    return true;
  }

  clear(): void {
    this.chains.clear();
    this.entries.clear();
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
}

function collect(buckets: TopicBuckets, log: MatchableLog, out: Subscription[] | undefined): Subscription[] | undefined {
  const t0 = log.topics[0];
  if (t0 !== undefined) {
    const list = buckets.byTopic0.get(t0);
    if (list) out = check(list, log, out);
  }
  if (buckets.anyTopic0.length > 0) out = check(buckets.anyTopic0, log, out);
  return out;
}

function check(list: readonly Entry[], log: MatchableLog, out: Subscription[] | undefined): Subscription[] | undefined {
  const topics = log.topics;
  for (let i = 0; i < list.length; i++) {
    const e = list[i]!;
    if (topics.length < e.minTopics) continue;
    if (e.t1 !== null && !accepts(e.t1, topics[1]!)) continue;
    if (e.t2 !== null && !accepts(e.t2, topics[2]!)) continue;
    if (e.t3 !== null && !accepts(e.t3, topics[3]!)) continue;
    (out ??= []).push(e.sub);
  }
  return out;
}

function accepts(position: string | ReadonlySet<string>, topic: string): boolean {
  return typeof position === 'string' ? position === topic : position.has(topic);
}

function compilePosition(p: null | string | string[] | undefined): Position {
  if (p === null || p === undefined) return null;
  if (typeof p === 'string') return p;
  if (p.length === 0) return null;
  return p.length === 1 ? p[0]! : new Set(p);
}

function newTopicBuckets(): TopicBuckets {
  return { byTopic0: new Map(), anyTopic0: [] };
}

function topic0Keys(sub: Subscription): string[] {
  const t0 = sub.topics?.[0];
  if (t0 === null || t0 === undefined) return [];
  return typeof t0 === 'string' ? [t0] : [...new Set(t0)];
}

function addressBuckets(chain: ChainBuckets, sub: Subscription, create: boolean): TopicBuckets[] {
  if (!sub.addresses || sub.addresses.length === 0) return [chain.anyAddress];
  const out: TopicBuckets[] = [];
  for (const a of new Set(sub.addresses)) {
    let b = chain.byAddress.get(a);
    if (!b && create) {
      b = newTopicBuckets();
      chain.byAddress.set(a, b);
    }
    if (b) out.push(b);
  }
  return out;
}

function topicLists(buckets: TopicBuckets, sub: Subscription, create: boolean): Entry[][] {
  const keys = topic0Keys(sub);
  if (keys.length === 0) return [buckets.anyTopic0];
  const out: Entry[][] = [];
  for (const t0 of keys) {
    let list = buckets.byTopic0.get(t0);
    if (!list && create) {
      list = [];
      buckets.byTopic0.set(t0, list);
    }
    if (list) out.push(list);
  }
  return out;
}
