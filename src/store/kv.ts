/**
 * The key-value engine under the node's stores: named spaces of string keys and JSON values, ordered
 * bytewise by key, and atomic batches across spaces. Endpoints, subscriptions, chain cursors, match
 * records, deferred jobs, attempt pages and governance state are written once, over this contract, and
 * run on either engine: LevelDB (src/store/level/kv.ts, one sublevel per space) or PostgreSQL
 * (src/store/postgres/kv.ts, rows of one table keyed by space and key, `COLLATE "C"` so that the order
 * is LevelDB's). The outbox has an implementation per engine of its own (src/store/outbox/contract.ts).
 *
 * Keys are built so that bytewise order is the order wanted (keys.ts: zero-padded numbers, `!`
 * separators, `\xff` closing a prefix range). Values are JSON values; what a space reads back is the
 * JSON of what was written (a JSON object's own fields, in order).
 *
 * A batch lands whole or not at all (one LevelDB `batch`, one PostgreSQL transaction); ops apply in
 * array order, so a later op on the same key wins. A `fence` op (KvFence) makes the batch conditional on
 * a lease.
 */

/** A key range: lower and upper bounds (each optional), at most `limit` keys, in `reverse` order. */
export interface KvRange {
  gt?: string;
  gte?: string;
  lt?: string;
  lte?: string;
  /** At most this many entries (default: no limit). */
  limit?: number;
  reverse?: boolean;
}

/**
 * A batch's condition: the batch lands only while `holder` holds lease `lease` at `epoch` (src/cluster/
 * coordinator.ts). On PostgreSQL it is checked in the batch's transaction, the lease row locked (`FOR SHARE`)
 * until the commit, so a lease taken over meanwhile waits for the commit or fails the batch whole with
 * ETHHOOK_ERR_LEASE_LOST; an instance paused past its lease writes nothing. LevelDB skips it: a LevelDB
 * directory has one process, which holds every lease.
 */
export interface KvFence {
  type: 'fence';
  lease: string;
  holder: string;
  epoch: number;
}

/** One operation of an atomic batch across spaces. */
export type KvOp = { type: 'put'; space: string; key: string; value: unknown } | { type: 'del'; space: string; key: string } | KvFence;

/** One named space of the engine; `V` is what its values are read as. */
export interface KvSpace<V> {
  readonly name: string;
  get(key: string): Promise<V | undefined>;
  getMany(keys: readonly string[]): Promise<Array<V | undefined>>;
  /** Whether each key is there, without reading its value out. */
  has(keys: readonly string[]): Promise<boolean[]>;
  put(key: string, value: V): Promise<void>;
  del(key: string): Promise<void>;
  /** The entries in `range`, read at once: give a `limit` or a range known to be small. */
  entries(range?: KvRange): Promise<Array<[string, V]>>;
  keys(range?: KvRange): Promise<string[]>;
  values(range?: KvRange): Promise<V[]>;
  /** The entries in `range`, read a page at a time: for ranges of any size. */
  scan(range?: KvRange): AsyncIterable<[string, V]>;
  /** Deletes every entry in `range`. */
  clear(range?: KvRange): Promise<void>;
  putOp(key: string, value: V): KvOp;
  delOp(key: string): KvOp;
}

export type KvKind = 'level' | 'postgres';

export interface Kv {
  readonly kind: KvKind;
  space<V>(name: string): KvSpace<V>;
  /** Applies `ops` in one atomic write. */
  batch(ops: readonly KvOp[]): Promise<void>;
}
