/**
 * The events a subscription decodes: its `abi` and `events`, parsed and checked with viem.
 *
 * `abi` is a list of entries, each either
 * - a human-readable declaration: `event Transfer(address indexed from, address indexed to, uint256 value)`;
 *   `struct` declarations may be entries of their own, used by the events (viem's `parseAbi` reads the
 *   strings together), and `function`/`error` declarations are read and ignored; or
 * - a JSON ABI fragment (`{ "type": "event", "name", "inputs": [...] }`); fragments of another type
 *   (functions, errors, a constructor) are ignored, so a contract's whole JSON ABI can be pasted.
 * `events` names the events to pick: a name (`Transfer`, every overload of it) or a signature
 * (`Transfer(address,address,uint256)`); absent, every event of the abi that is not anonymous.
 *
 * Refused, each with the entry it concerns (`abi[2]`, `events[0]`) and the problem (`AbiInputError`):
 * an entry that does not parse (viem's message: `Type "uint257" is not a valid ABI type.`), an abi
 * with no event, a chosen anonymous event (it has no topic0 to be matched by), a name in `events` that
 * no event has, and two chosen events with one topic0 (ERC-20's and ERC-721's `Transfer`: a log could
 * not say which of them it is).
 *
 * Each chosen event comes out with its `declaration`: the canonical human-readable form this module
 * writes (`event Name(type [indexed] [name], ...)`, tuples inline as `(uint256 a, address b) order`),
 * which viem's `parseAbiItem` reads back to the same event. Subscriptions store their events as these
 * declarations (src/store/subscriptions.ts), and match records name the event a log was decoded as by
 * it (src/store/matches.ts).
 *
 * viem is loaded on demand (viem.ts): a caller awaits `loadViem()` before these functions.
 */
import type { AbiEvent, AbiParameter } from 'viem';
import { viem } from './viem.ts';

/** Events a subscription may pick (each is a topic0 alternative of its filter). */
export const MAX_EVENTS = 100;

/** A subscription's abi, events or filter is refused at `path` (relative to the subscription), for `problem`. */
export class AbiInputError extends Error {
  constructor(
    readonly path: readonly (string | number)[],
    readonly problem: string,
  ) {
    super(problem);
  }
}

export interface ChosenEvent {
  readonly name: string;
  /** `Transfer(address,address,uint256)`: what topic0 hashes. */
  readonly signature: string;
  readonly topic0: string;
  /** The canonical human-readable declaration (see the header). */
  readonly declaration: string;
  readonly item: AbiEvent;
}

/** The events of `abi` that `events` picks (all when absent), in abi order. Throws AbiInputError. */
export function chooseEvents(abi: readonly unknown[], events?: readonly string[]): ChosenEvent[] {
  const declared = declaredEvents(abi);
  if (declared.length === 0) throw new AbiInputError(['abi'], 'declares no event');
  const wanted = events === undefined ? declared.filter((d) => !d.event.item.anonymous) : picked(declared, events);
  if (wanted.length === 0) throw new AbiInputError(['abi'], 'declares no event that is not anonymous');
  const byTopic0 = new Map<string, { event: ChosenEvent; at: number }>();
  const chosen: ChosenEvent[] = [];
  for (const { event, at } of wanted) {
    if (event.item.anonymous) throw new AbiInputError(['abi', at], `event ${event.name} is anonymous: it has no topic0 to be matched by`);
    const same = byTopic0.get(event.topic0);
    if (same !== undefined && same.event.declaration === event.declaration) continue;
    if (same !== undefined)
      throw new AbiInputError(['abi', at], `has the topic0 of abi[${same.at}] (${event.signature}): a log could not say which event it is`);
    byTopic0.set(event.topic0, { event, at });
    chosen.push(event);
  }
  if (chosen.length > MAX_EVENTS) throw new AbiInputError(['abi'], `picks ${chosen.length} events: at most ${MAX_EVENTS}`);
  return chosen;
}

/** An event from its canonical declaration (a stored subscription's abi entry). Throws on a bad one. */
export function eventFromDeclaration(declaration: string): ChosenEvent {
  const item = viem().parseAbiItem(declaration) as AbiEvent;
  if (item.type !== 'event') throw new Error(`not an event declaration: ${declaration}`);
  return described(item);
}

interface Declared {
  event: ChosenEvent;
  /** Index of the abi entry that declared it. */
  at: number;
}

function declaredEvents(abi: readonly unknown[]): Declared[] {
  const structs = abi.filter((e): e is string => typeof e === 'string' && /^\s*struct\b/.test(e));
  if (structs.length > 0) parsed(['abi'], () => viem().parseAbi(structs));
  const out: Declared[] = [];
  abi.forEach((entry, at) => {
    if (typeof entry === 'string') {
      if (/^\s*struct\b/.test(entry)) return;
      const items = parsed(['abi', at], () => viem().parseAbi([...structs, entry]) as unknown as readonly { type: string }[]);
      for (const item of items) if (item.type === 'event') out.push({ event: described(item as AbiEvent), at });
    } else if (isEventFragment(entry, at)) {
      // Human-readable declarations have no `anonymous`: the flag is carried over by hand.
      const fragment = entry as AbiEvent;
      const event = parsed(['abi', at], () => eventFromDeclaration(declarationOf(fragment)));
      out.push({ event: fragment.anonymous ? { ...event, item: { ...event.item, anonymous: true } } : event, at });
    }
  });
  return out;
}

/** Whether a JSON entry is an event fragment; throws for an entry that is no fragment at all. */
function isEventFragment(entry: unknown, at: number): boolean {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
    throw new AbiInputError(['abi', at], 'must be a human-readable declaration (string) or a JSON ABI fragment (object)');
  const f = entry as Record<string, unknown>;
  if (f.type !== undefined && typeof f.type !== 'string') throw new AbiInputError(['abi', at, 'type'], 'must be a string');
  if (f.type !== 'event') return false;
  if (typeof f.name !== 'string' || !/^[A-Za-z_$][\w$]*$/.test(f.name))
    throw new AbiInputError(['abi', at, 'name'], 'must be an identifier');
  if (!Array.isArray(f.inputs)) throw new AbiInputError(['abi', at, 'inputs'], 'must be a list of parameters');
  if (f.anonymous !== undefined && typeof f.anonymous !== 'boolean') throw new AbiInputError(['abi', at, 'anonymous'], 'must be a boolean');
  checkParameters(f.inputs, ['abi', at, 'inputs'], 0);
  return true;
}

function checkParameters(params: unknown[], path: (string | number)[], depth: number): void {
  if (depth > 16) throw new AbiInputError(path, 'tuples nest deeper than 16');
  params.forEach((p, i) => {
    const here = [...path, i];
    if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new AbiInputError(here, 'must be a parameter object');
    const q = p as Record<string, unknown>;
    if (typeof q.type !== 'string' || q.type === '') throw new AbiInputError([...here, 'type'], 'must be an ABI type');
    if (q.name !== undefined && (typeof q.name !== 'string' || (q.name !== '' && !/^[A-Za-z_$][\w$]*$/.test(q.name))))
      throw new AbiInputError([...here, 'name'], 'must be an identifier');
    if (q.indexed !== undefined && typeof q.indexed !== 'boolean') throw new AbiInputError([...here, 'indexed'], 'must be a boolean');
    if (q.type.startsWith('tuple')) {
      if (!Array.isArray(q.components)) throw new AbiInputError([...here, 'components'], 'a tuple needs its components');
      checkParameters(q.components, [...here, 'components'], depth + 1);
    }
  });
}

function picked(declared: Declared[], events: readonly string[]): Declared[] {
  const out: Declared[] = [];
  events.forEach((wanted, i) => {
    const bySignature = wanted.includes('(');
    const hits = declared.filter((d) => (bySignature ? d.event.signature === wanted.replace(/\s+/g, '') : d.event.name === wanted));
    if (hits.length === 0) {
      const names = [...new Set(declared.map((d) => d.event.name))].join(', ');
      throw new AbiInputError(
        ['events', i],
        `no event ${bySignature ? 'with the signature' : 'named'} ${wanted} in the abi (it declares ${names})`,
      );
    }
    for (const h of hits) if (!out.includes(h)) out.push(h);
  });
  return out;
}

function described(item: AbiEvent): ChosenEvent {
  const declaration = declarationOf(item);
  return { name: item.name, signature: viem().toEventSignature(item), topic0: viem().toEventSelector(item), declaration, item };
}

function declarationOf(item: AbiEvent): string {
  return `event ${item.name}(${item.inputs.map(parameter).join(', ')})`;
}

function parameter(p: AbiParameter & { indexed?: boolean }): string {
  const type =
    p.type.startsWith('tuple') && 'components' in p ? `(${p.components.map(parameter).join(', ')})${p.type.slice('tuple'.length)}` : p.type;
  return `${type}${p.indexed ? ' indexed' : ''}${p.name ? ` ${p.name}` : ''}`;
}

/** `parse()`, with viem's error turned into an AbiInputError at `path` saying what viem said. */
function parsed<T>(path: (string | number)[], parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof AbiInputError) throw err;
    throw new AbiInputError(path, viemProblem(err));
  }
}

function viemProblem(err: unknown): string {
  const e = err as { shortMessage?: unknown; metaMessages?: unknown; details?: unknown; message?: unknown };
  const short = typeof e.shortMessage === 'string' ? e.shortMessage : String(e.message ?? err);
  const more = Array.isArray(e.metaMessages) ? e.metaMessages.join(' ') : typeof e.details === 'string' ? e.details : '';
  return more === '' ? short : `${short} ${more}`;
}
