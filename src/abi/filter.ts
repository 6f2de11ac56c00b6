/**
 * A subscription's `filter`: a small JSON grammar over a candidate log's decoded arguments, its address
 * and its block number, checked at creation against the subscription's events and compiled into a
 * predicate the Matcher runs on the logs the topic index found.
 *
 *     filter    := { <entry>, ... }            every entry holds (1 to 32 entries)
 *     entry     := "and": [filter, ...]        all hold (1 to 32)
 *                | "or":  [filter, ...]        one holds (1 to 32)
 *                | "not": filter               it does not hold
 *                | <field>: { <op>: value, ... }  every op holds (a range: { "gte": "1", "lt": "10" })
 *     field     := "address" | "blockNumber" | "args.<name>[.<name or index>...]"
 *     op        := eq | ne | in (a list of 1 to 1,000 values) | gt | gte | lt | lte
 *
 * Fields: `args.value` is the argument `value`; a tuple's component by its name (`args.order.maker`), an
 * array's element or an unnamed component by its index (`args.ids.0`). Each field must name a value (not
 * a tuple or an array) of at least one chosen event, of one kind in all of them; `args` fields need an
 * abi. Values by kind: integers (any `intN`/`uintN`, `blockNumber`) as decimal strings or safe-integer
 * numbers, compared as BigInt (`gt`..`lte` apply to integers only); addresses as 20-byte hex and bytes
 * as hex, compared case-insensitively; booleans and strings compared exactly.
 * Limits: 256 objects in all, 16 levels deep, strings of 2,048 characters.
 *
 * At match time: a field the log's event does not have (a filter naming `args.value` on an event
 * without it) fails every op, `ne` included (`not` turns that around). A log that did not decode
 * (`args` undefined) fails the whole filter when it names any `args` field, whatever `not` says, and
 * passes or fails on `address` and `blockNumber` alone otherwise.
 *
 * `compileFilter` throws AbiInputError at the path of the first problem (`filter.and[1]["args.value"].gte`).
 */
import type { AbiParameter } from 'viem';
import { AbiInputError, type ChosenEvent } from './events.ts';

/** The log fields a filter reads besides `args`. */
export interface FilterLog {
  /** Lowercase, as the listener gives it. */
  readonly address: string;
  readonly blockNumber: number;
}

type Kind = 'integer' | 'address' | 'bytes' | 'bool' | 'string';
type Path = (string | number)[];
type Literal = bigint | string | boolean;
/** `address`, `blockNumber`, or the keys down the decoded args. */
type Field = 'address' | 'blockNumber' | readonly (string | number)[];

/**
 * A compiled filter is a tree of small objects, each a node of the grammar with `holds` on its prototype:
 * closures would keep their whole scope (the JSON, the paths) alive, several hundred bytes per
 * subscription at 100,000 of them. The root is the filter: a subscription's filter of one condition is
 * that condition's node and its literal; what a condition compares (its field, kind and operator) is a
 * `Test` shared by every condition with the same three.
 */
export abstract class CompiledFilter {
  /** `args`: the decoded arguments (decode.ts); undefined when the log did not decode or nothing decodes it. */
  test(log: FilterLog, args: unknown): boolean {
    // A log that did not decode fails a filter naming `args`, whatever `not` says (see the header).
    return args === undefined && this.namesArgs() ? false : this.holds(log, args);
  }

  abstract holds(log: FilterLog, args: unknown): boolean;
  /** Some field below is an `args` field. */
  abstract namesArgs(): boolean;
}

class All extends CompiledFilter {
  constructor(private readonly parts: readonly CompiledFilter[]) {
    super();
  }
  holds(log: FilterLog, args: unknown): boolean {
    for (const p of this.parts) if (!p.holds(log, args)) return false;
    return true;
  }
  namesArgs(): boolean {
    return this.parts.some((p) => p.namesArgs());
  }
}

class AnyOf extends CompiledFilter {
  constructor(private readonly parts: readonly CompiledFilter[]) {
    super();
  }
  holds(log: FilterLog, args: unknown): boolean {
    for (const p of this.parts) if (p.holds(log, args)) return true;
    return false;
  }
  namesArgs(): boolean {
    return this.parts.some((p) => p.namesArgs());
  }
}

class Not extends CompiledFilter {
  constructor(private readonly part: CompiledFilter) {
    super();
  }
  holds(log: FilterLog, args: unknown): boolean {
    return !this.part.holds(log, args);
  }
  namesArgs(): boolean {
    return this.part.namesArgs();
  }
}

/** What a condition compares: shared by the conditions with the same field, kind and operator. */
interface Test {
  readonly field: Field;
  readonly kind: Kind;
  readonly op: Op;
}

class Condition extends CompiledFilter {
  constructor(
    private readonly test_: Test,
    private readonly value: Literal | readonly Literal[],
  ) {
    super();
  }
  holds(log: FilterLog, args: unknown): boolean {
    const actual = read(this.test_.field, log, args);
    return actual !== undefined && compare(this.test_.op, this.test_.kind, this.value, actual);
  }
  namesArgs(): boolean {
    return typeof this.test_.field === 'object';
  }
}

const MAX_OBJECTS = 256;
const MAX_DEPTH = 16;
const MAX_ENTRIES = 32;
const MAX_IN = 1000;
const MAX_STRING = 2048;
const OPS = ['eq', 'ne', 'in', 'gt', 'gte', 'lt', 'lte'] as const;
type Op = (typeof OPS)[number];
const SEGMENT = /^(?:[A-Za-z_$][\w$]*|0|[1-9]\d{0,5})$/;
/** Tests shared by the conditions that make them (one copy each, at most this many kept). */
const TESTS = new Map<string, Test>();
const MAX_TESTS = 10_000;

/** Compiles `json` for a subscription whose chosen events are `events` (undefined: it has no abi). */
export function compileFilter(json: unknown, events: readonly ChosenEvent[] | undefined): CompiledFilter {
  return node(json, ['filter'], 0, events, { objects: 0 });
}

function read(field: Field, log: FilterLog, args: unknown): unknown {
  if (field === 'address') return log.address;
  if (field === 'blockNumber') return log.blockNumber;
  let v = args;
  for (const k of field) {
    if (typeof v !== 'object' || v === null || !Object.hasOwn(v, k)) return undefined;
    v = (v as Record<string | number, unknown>)[k];
  }
  return v;
}

function compare(op: Op, kind: Kind, value: Literal | readonly Literal[], actual: unknown): boolean {
  switch (op) {
    case 'in':
      return (value as readonly Literal[]).some((v) => equal(kind, v, actual));
    case 'eq':
      return equal(kind, value as Literal, actual);
    case 'ne':
      return !equal(kind, value as Literal, actual);
  }
  const n = typeof actual === 'bigint' ? actual : typeof actual === 'number' ? BigInt(actual) : undefined;
  if (n === undefined) return false;
  const bound = value as bigint;
  return op === 'gt' ? n > bound : op === 'gte' ? n >= bound : op === 'lt' ? n < bound : n <= bound;
}

function equal(kind: Kind, value: Literal, actual: unknown): boolean {
  if (kind === 'integer') return typeof actual === 'bigint' ? actual === value : typeof actual === 'number' && BigInt(actual) === value;
  if (kind === 'address' || kind === 'bytes') return typeof actual === 'string' && actual.toLowerCase() === value;
  return actual === value;
}

interface CompileState {
  objects: number;
}

function node(json: unknown, path: Path, depth: number, events: readonly ChosenEvent[] | undefined, state: CompileState): CompiledFilter {
  const entries = objectEntries(
    json,
    path,
    depth,
    state,
    'must be an object of conditions ({ "args.value": { "gte": "1" } }, "and", "or", "not")',
  );
  const parts = entries.map(([key, value]): CompiledFilter => {
    const here = [...path, key];
    if (key === 'and' || key === 'or') {
      if (!Array.isArray(value) || value.length === 0 || value.length > MAX_ENTRIES)
        throw new AbiInputError(here, `must be a list of 1 to ${MAX_ENTRIES} filters`);
      const subs = value.map((v, i) => node(v, [...here, i], depth + 1, events, state));
      return subs.length === 1 ? subs[0]! : key === 'and' ? new All(subs) : new AnyOf(subs);
    }
    if (key === 'not') return new Not(node(value, here, depth + 1, events, state));
    return condition(key, value, here, depth + 1, events, state);
  });
  return parts.length === 1 ? parts[0]! : new All(parts);
}

function objectEntries(json: unknown, path: Path, depth: number, state: CompileState, what: string): [string, unknown][] {
  if (depth > MAX_DEPTH) throw new AbiInputError(path, `nests deeper than ${MAX_DEPTH} levels`);
  if (++state.objects > MAX_OBJECTS) throw new AbiInputError(path, `the filter has more than ${MAX_OBJECTS} objects`);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new AbiInputError(path, what);
  const entries = Object.entries(json);
  if (entries.length === 0 || entries.length > MAX_ENTRIES) throw new AbiInputError(path, `must have 1 to ${MAX_ENTRIES} entries`);
  return entries;
}

function condition(
  key: string,
  json: unknown,
  path: Path,
  depth: number,
  events: readonly ChosenEvent[] | undefined,
  state: CompileState,
): CompiledFilter {
  const { kind, field } = resolveField(key, path, events);
  const ops = objectEntries(json, path, depth, state, `must be an object of operators (${OPS.join(', ')})`);
  const conds = ops.map(([op, value]): CompiledFilter => {
    if (!(OPS as readonly string[]).includes(op)) throw new AbiInputError([...path, op], `unknown operator: use ${OPS.join(', ')}`);
    return new Condition(test(key, field, kind, op as Op), operand(op as Op, kind, value, [...path, op]));
  });
  return conds.length === 1 ? conds[0]! : new All(conds);
}

/** The shared Test of a condition on `key` (its field's path `field`). */
function test(key: string, field: Field, kind: Kind, op: Op): Test {
  const id = `${op} ${kind} ${key}`;
  let t = TESTS.get(id);
  if (t === undefined) {
    t = { field, kind, op };
    if (TESTS.size < MAX_TESTS) TESTS.set(id, t);
  }
  return t;
}

function resolveField(field: string, path: Path, events: readonly ChosenEvent[] | undefined): { kind: Kind; field: Field } {
  if (field === 'address' || field === 'blockNumber') return { kind: field === 'address' ? 'address' : 'integer', field };
  const segments = field.split('.');
  if (segments[0] !== 'args' || segments.length < 2 || !segments.slice(1).every((s) => SEGMENT.test(s)))
    throw new AbiInputError(path, 'unknown field: use address, blockNumber or args.<name>[.<name or index>...]');
  if (events === undefined) throw new AbiInputError(path, 'filters on args need an abi on the subscription');
  const steps = segments.slice(1);
  const kinds = new Set<Kind>();
  const problems: string[] = [];
  for (const event of events) {
    const found = kindAt(event.item.inputs, steps);
    if (typeof found === 'object') kinds.add(found.kind);
    else problems.push(`${event.name}: ${found}`);
  }
  if (kinds.size === 0) throw new AbiInputError(path, `no chosen event has this value (${problems.join('; ')})`);
  if (kinds.size > 1) throw new AbiInputError(path, `is of different kinds in the chosen events (${[...kinds].join(', ')})`);
  return { kind: [...kinds][0]!, field: steps.map((s) => (/^\d/.test(s) ? Number(s) : s)) };
}

/** The kind of the value at `steps` below a tuple of `params`, or why there is none. */
function kindAt(params: readonly (AbiParameter & { indexed?: boolean })[], steps: readonly string[]): { kind: Kind } | string {
  const [step, ...rest] = steps as [string, ...string[]];
  const unnamed = params.some((p) => !p.name);
  const param = unnamed ? (/^\d+$/.test(step) ? params[Number(step)] : undefined) : params.find((p) => p.name === step);
  if (param === undefined)
    return unnamed
      ? `no component ${step} (components are unnamed: use their index)`
      : `no ${step} (it has ${params.map((p) => p.name).join(', ')})`;
  if (param.indexed && (param.type === 'string' || param.type === 'bytes' || param.type.endsWith(']') || param.type.startsWith('tuple')))
    return rest.length === 0 ? { kind: 'bytes' } : `${step} is indexed: the log holds only its hash`;
  return kindOfType(param, rest);
}

function kindOfType(param: AbiParameter, rest: readonly string[]): { kind: Kind } | string {
  const array = /\[\d*\]$/.exec(param.type);
  if (array !== null) {
    if (rest.length === 0 || !/^\d+$/.test(rest[0]!)) return `${param.name || 'it'} is an array: name an element by its index`;
    return kindOfType({ ...param, type: param.type.slice(0, array.index) }, rest.slice(1));
  }
  if (param.type === 'tuple') {
    if (rest.length === 0) return `${param.name || 'it'} is a tuple: name one of its components`;
    return kindAt((param as { components: readonly AbiParameter[] }).components, rest);
  }
  if (rest.length > 0) return `${param.name || 'it'} is a ${param.type}: it has no ${rest.join('.')}`;
  if (/^u?int\d*$/.test(param.type)) return { kind: 'integer' };
  if (param.type === 'address') return { kind: 'address' };
  if (param.type === 'bool') return { kind: 'bool' };
  if (param.type.startsWith('bytes')) return { kind: 'bytes' };
  return { kind: 'string' };
}

/** The operand of `op`, checked for the field's kind. */
function operand(op: Op, kind: Kind, json: unknown, path: Path): Literal | Literal[] {
  if (op === 'in') {
    if (!Array.isArray(json) || json.length === 0 || json.length > MAX_IN)
      throw new AbiInputError(path, `must be a list of 1 to ${MAX_IN} values`);
    return json.map((v, i) => literal(kind, v, [...path, i]));
  }
  if (op !== 'eq' && op !== 'ne' && kind !== 'integer')
    throw new AbiInputError(path, `${op} compares integers; this field is ${article(kind)}`);
  return literal(kind, json, path);
}

function literal(kind: Kind, v: unknown, path: Path): bigint | string | boolean {
  if (typeof v === 'string' && v.length > MAX_STRING) throw new AbiInputError(path, `is longer than ${MAX_STRING} characters`);
  switch (kind) {
    case 'integer':
      if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
      if (typeof v === 'string' && /^-?\d{1,78}$/.test(v)) return BigInt(v);
      throw new AbiInputError(path, 'must be an integer: a decimal string, or a number that is a safe integer');
    case 'address':
      if (typeof v === 'string' && /^0x[0-9a-fA-F]{40}$/.test(v)) return v.toLowerCase();
      throw new AbiInputError(path, 'must be a 20-byte 0x-prefixed hex address');
    case 'bytes':
      if (typeof v === 'string' && /^0x(?:[0-9a-fA-F]{2})*$/.test(v)) return v.toLowerCase();
      throw new AbiInputError(path, 'must be 0x-prefixed hex bytes');
    case 'bool':
      if (typeof v === 'boolean') return v;
      throw new AbiInputError(path, 'must be true or false');
    default:
      if (typeof v === 'string') return v;
      throw new AbiInputError(path, 'must be a string');
  }
}

function article(kind: Kind): string {
  return kind === 'integer' || kind === 'address' ? `an ${kind}` : kind === 'bool' ? 'a bool' : kind === 'bytes' ? 'bytes' : 'a string';
}
