/**
 * A log decoded under one event: exactly what viem's `decodeEventLog` (strict, with an abi holding only
 * that event) decodes, and the decoded arguments as the webhook carries them (`data.event.args`,
 * docs/webhook-body.schema.json):
 * - integers (any `uintN`/`intN`) as decimal strings, never JSON numbers;
 * - addresses checksummed (EIP-55), bytes and `bytesN` as 0x-hex, strings and booleans as they are;
 * - tuples as objects keyed by component name, or as arrays when a component is unnamed; arrays as
 *   arrays, nested as deep as the type;
 * - `args` itself follows the tuple rule: an object keyed by parameter name, an array when a parameter
 *   is unnamed (and `[]` for an event without parameters);
 * - an indexed argument of a dynamic type (string, bytes, array, tuple) is only its keccak hash in the
 *   log, so it is that topic (0x-hex).
 *
 * An `EventDecoder` is built once per event (the Matcher keeps one per distinct declaration) and splits
 * viem's work in two, so a candidate log costs only what its filters need:
 * - `decode(topics, data)`: the arguments, or undefined when the log does not decode (strict: topic0 not
 *   the event's, a topic missing for an indexed parameter, data missing or not decoding under the other parameters; extra
 *   topics and trailing data are ignored, as viem ignores them). Indexed parameters are read from
 *   their topics as viem reads them, the data through viem's `decodeAbiParameters`. These `args` keep
 *   viem's values (bigint or number integers) for the filters (filter.ts), except indexed addresses,
 *   left lowercase: filters compare addresses case-insensitively, and the EIP-55 checksum (a keccak
 *   per address) is only paid for a log that is delivered.
 * - `render(args)`: the webhook's `event`, checksumming those addresses.
 * test/property/abi-decode.property.test.ts holds both against viem's `decodeEventLog` on random events
 * and logs, malformed ones included.
 */
import type { AbiParameter, Hex } from 'viem';
import { viem } from './viem.ts';
import type { ChosenEvent } from './events.ts';

export type ArgValue = string | boolean | ArgValue[] | { [name: string]: ArgValue };

/** `data.event` of a webhook. */
export interface WebhookEvent {
  name: string;
  signature: string;
  args: { [name: string]: ArgValue } | ArgValue[];
}

/** How an indexed parameter is read from its topic, as viem's `decodeEventLog` reads it. */
type TopicKind = 'address' | 'uint' | 'bytes' | 'hashed' | 'decode';

interface Indexed {
  readonly param: AbiParameter;
  readonly key: string | number;
  readonly kind: TopicKind;
  /** `bytesN`: the length of the hex it keeps, `0x` included. */
  readonly hexLength: number;
}

const TOPIC = /^0x[0-9a-fA-F]{64}$/;
const ARRAY = /^(.*)\[(\d+)?\]$/;
const BYTES = /^bytes([1-9]|1[0-9]|2[0-9]|3[0-2])?$/;
const INTEGER =
  /^(u?int)(8|16|24|32|40|48|56|64|72|80|88|96|104|112|120|128|136|144|152|160|168|176|184|192|200|208|216|224|232|240|248|256)?$/;

/** The decoded arguments: keyed by name, or an array when a parameter is unnamed. */
export type DecodedArgs = Record<string, unknown> | unknown[];

export class EventDecoder {
  private readonly unnamed: boolean;
  private readonly indexed: readonly Indexed[];
  private readonly nonIndexed: readonly AbiParameter[];
  /** Keys of the arguments `decode` leaves as lowercase addresses. */
  private readonly lowercase: readonly (string | number)[];

  constructor(readonly event: ChosenEvent) {
    const inputs = event.item.inputs;
    this.unnamed = inputs.some((p) => !p.name);
    const indexed: Indexed[] = [];
    inputs.forEach((param, i) => {
      if (!param.indexed) return;
      const kind = topicKind(param.type);
      indexed.push({
        param,
        key: this.unnamed ? i : param.name!,
        kind,
        hexLength: kind === 'bytes' ? 2 + Number(param.type.slice(5)) * 2 : 0,
      });
    });
    this.indexed = indexed;
    this.nonIndexed = inputs.filter((p) => !p.indexed);
    this.lowercase = indexed.filter((p) => p.kind === 'address').map((p) => p.key);
  }

  /** The log's arguments (see the header), or undefined when it does not decode under the event. */
  decode(topics: readonly string[], data: string): DecodedArgs | undefined {
    if (topics[0] !== this.event.topic0) return undefined;
    const args: DecodedArgs = this.unnamed ? [] : {};
    const keyed = args as Record<string | number, unknown>;
    for (let i = 0; i < this.indexed.length; i++) {
      const topic = topics[i + 1];
      if (!topic) return undefined;
      const p = this.indexed[i]!;
      try {
        keyed[p.key] = readTopic(p, topic);
      } catch {
        return undefined;
      }
    }
    const params = this.nonIndexed;
    if (params.length === 0) return args;
    if (!data || data === '0x') return undefined;
    let values: readonly unknown[];
    try {
      values = viem().decodeAbiParameters(params, data as Hex);
    } catch {
      return undefined;
    }
    let at = 0;
    if (Array.isArray(args)) {
      for (let i = 0; i < this.event.item.inputs.length; i++) if (args[i] === undefined && at < values.length) args[i] = values[at++];
    } else for (const p of params) args[p.name!] = values[at++];
    return args;
  }

  /** The webhook's `event` for arguments `decode` gave. */
  render(args: DecodedArgs): WebhookEvent {
    const keys = Object.keys(args);
    let rendered: WebhookEvent['args'];
    if (keys.length === 0) rendered = [];
    else if (Array.isArray(args)) rendered = args.map((v, i) => (this.lowercase.includes(i) ? checksummed(v) : render(v)));
    else {
      const out: { [name: string]: ArgValue } = {};
      for (const key of keys) out[key] = this.lowercase.includes(key) ? checksummed(args[key]) : render(args[key]);
      rendered = out;
    }
    return { name: this.event.name, signature: this.event.signature, args: rendered };
  }
}

function topicKind(type: string): TopicKind {
  if (type === 'string' || type === 'bytes' || type === 'tuple' || ARRAY.test(type)) return 'hashed';
  if (type === 'address') return 'address';
  if (BYTES.test(type)) return 'bytes';
  // Integers wider than 48 bits are a bigint of the whole word.
  const integer = INTEGER.exec(type);
  if (integer?.[1] === 'uint' && Number(integer[2] ?? 256) > 48) return 'uint';
  return 'decode';
}

function readTopic(p: Indexed, topic: string): unknown {
  if (p.kind === 'hashed') return topic;
  if (p.kind !== 'decode' && TOPIC.test(topic)) {
    if (p.kind === 'address') return `0x${topic.slice(26)}`.toLowerCase();
    if (p.kind === 'uint') return BigInt(topic);
    return topic.slice(0, p.hexLength).toLowerCase();
  }
  const value = viem().decodeAbiParameters([p.param], topic as Hex)[0];
  return p.kind === 'address' ? (value as string).toLowerCase() : value;
}

/**
 * EIP-55, as viem's `getAddress` writes it, from an address `decode` left lowercase: a letter is upper
 * case where the keccak of the lowercase hex has a nibble of 8 or more. Computed here rather than by
 * `getAddress`, which checks the address again and keeps two 8,192-entry LRU maps: on addresses seen
 * for the first time, as most of a chain's are, it measured half as fast again as the hash alone.
 */
function checksummed(value: unknown): string {
  const hex = (value as string).slice(2);
  const hash = viem().keccak256(Buffer.from(hex, 'latin1'), 'bytes');
  let out = '0x';
  for (let i = 0; i < 40; i++) {
    const c = hex[i]!;
    const nibble = i % 2 === 0 ? hash[i >> 1]! >> 4 : hash[i >> 1]! & 0x0f;
    out += nibble >= 8 ? c.toUpperCase() : c;
  }
  return out;
}

function render(value: unknown): ArgValue {
  if (typeof value === 'bigint' || typeof value === 'number') return value.toString();
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (Array.isArray(value)) return value.map(render);
  const out: { [name: string]: ArgValue } = {};
  for (const key of Object.keys(value as object)) out[key] = render((value as Record<string, unknown>)[key]);
  return out;
}
