/**
 * The key-value engine (src/store/kv.ts) on LevelDB: each space is a sublevel of the node's database
 * (made once, then cached), with JSON values, and a batch is ONE `db.batch` at the root.
 *
 * Batch operations are written at the root with their full key (the space's sublevel prefix and the
 * key) and their value already JSON text (`levelBatchOps`): abstract-level's per-operation sublevel
 * work (copying each operation, looking its encodings up, prefixing) cost about as much as the write
 * itself on the hot paths (a block's match records, a group commit's attempt pages). The LevelDB
 * outbox puts the KvOps it is handed into its own batches the same way. A `fence` op is skipped: the
 * directory's one process holds every lease (src/store/kv.ts, KvFence).
 *
 * `has` reads with point reads, values left raw, not `hasMany`: classic-level answers that with an
 * iterator seek per key, which walks over the tombstones deleted records leave behind. Point reads of
 * a few keys are answered synchronously (db.ts, `readMany`).
 */
import type { Kv, KvOp, KvRange, KvSpace } from '../kv.ts';
import { readMany, sublevel, type BatchOp, type Db } from './db.ts';

type Sublevel<V> = ReturnType<typeof sublevel<V>>;

export class LevelKv implements Kv {
  readonly kind = 'level' as const;
  private readonly spaces = new Map<string, LevelSpace<unknown>>();

  constructor(readonly db: Db) {}

  space<V>(name: string): KvSpace<V> {
    return this.spaceOf<V>(name);
  }

  /** The key prefix of a space's sublevel: what a root batch operation on that space puts before its key. */
  prefix(space: string): string {
    return this.spaceOf(space).level.prefix;
  }

  async batch(ops: readonly KvOp[]): Promise<void> {
    if (ops.length > 0) await this.db.batch(levelBatchOps(this, ops));
  }

  private spaceOf<V>(name: string): LevelSpace<V> {
    let space = this.spaces.get(name);
    if (space === undefined) this.spaces.set(name, (space = new LevelSpace<unknown>(name, sublevel<unknown>(this.db, name))));
    return space as LevelSpace<V>;
  }
}

/** `ops` as LevelDB batch operations at the root (see the header), appended to `into`. */
export function levelBatchOps(kv: LevelKv, ops: readonly KvOp[], into: BatchOp[] = []): BatchOp[] {
  for (const op of ops) {
    if (op.type === 'fence') continue;
    // The checks a sublevel operation would make: a bad operation fails the whole batch, not one key.
    if (typeof op.key !== 'string') throw new TypeError(`key-value batch: the key of a ${op.type} in ${op.space} must be a string`);
    if (op.type === 'put' && op.value === undefined)
      throw new TypeError(`key-value batch: the put of ${op.key} in ${op.space} has no value`);
    const key = kv.prefix(op.space) + op.key;
    if (op.type === 'put') into.push({ type: 'put', key, value: JSON.stringify(op.value), valueEncoding: 'utf8' });
    else into.push({ type: 'del', key });
  }
  return into;
}

class LevelSpace<V> implements KvSpace<V> {
  constructor(
    readonly name: string,
    readonly level: Sublevel<V>,
  ) {}

  async get(key: string): Promise<V | undefined> {
    return (await readMany<V>(this.level, [key]))[0];
  }

  getMany(keys: readonly string[]): Promise<Array<V | undefined>> {
    return readMany<V>(this.level, keys);
  }

  async has(keys: readonly string[]): Promise<boolean[]> {
    return (await readMany<Buffer>(this.level, keys, 'buffer')).map((v) => v !== undefined);
  }

  put(key: string, value: V): Promise<void> {
    return this.level.put(key, value);
  }

  del(key: string): Promise<void> {
    return this.level.del(key);
  }

  entries(range?: KvRange): Promise<Array<[string, V]>> {
    return this.level.iterator(levelRange(range)).all();
  }

  keys(range?: KvRange): Promise<string[]> {
    return this.level.keys(levelRange(range)).all();
  }

  values(range?: KvRange): Promise<V[]> {
    return this.level.values(levelRange(range)).all();
  }

  scan(range?: KvRange): AsyncIterable<[string, V]> {
    return this.level.iterator(levelRange(range));
  }

  clear(range?: KvRange): Promise<void> {
    return this.level.clear(levelRange(range));
  }

  putOp(key: string, value: V): KvOp {
    return { type: 'put', space: this.name, key, value };
  }

  delOp(key: string): KvOp {
    return { type: 'del', space: this.name, key };
  }
}

/** A KvRange as abstract-level options: only the bounds given (an undefined bound would be encoded as a key). */
function levelRange(range: KvRange | undefined): { gt?: string; gte?: string; lt?: string; lte?: string; limit: number; reverse: boolean } {
  const options: { gt?: string; gte?: string; lt?: string; lte?: string; limit: number; reverse: boolean } = {
    limit: range?.limit ?? -1,
    reverse: range?.reverse ?? false,
  };
  if (range === undefined) return options;
  if (range.gt !== undefined) options.gt = range.gt;
  if (range.gte !== undefined) options.gte = range.gte;
  if (range.lt !== undefined) options.lt = range.lt;
  if (range.lte !== undefined) options.lte = range.lte;
  return options;
}
