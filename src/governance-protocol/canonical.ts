/**
 * The canonical encoding that governance signatures cover (docs/governance.md, "Canonical encoding").
 *
 * A JSON value is written as JSON with no whitespace, object keys sorted by UTF-16 code units
 * (JavaScript's default string order, as in RFC 8785), recursively; strings and numbers exactly as
 * `JSON.stringify` writes them (ES2019 well-formed strings, shortest round-trip numbers, -0 as 0).
 * The signed bytes are the UTF-8 encoding of that text.
 *
 * Only JSON values are accepted: null, booleans, finite numbers, strings, arrays, and plain objects of
 * those. Anything else (undefined, NaN, Infinity, bigint, functions, class instances) throws a TypeError,
 * so two different in-memory values can never collapse to one encoding by accident.
 */

export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON: ${value} is not a JSON number`);
      return JSON.stringify(value);
    case 'object':
      if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
      if (!isPlainObject(value)) throw new TypeError('canonical JSON: only plain objects are JSON objects');
      return `{${Object.keys(value)
        .sort()
        .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
        .join(',')}}`;
    default:
      throw new TypeError(`canonical JSON: a ${typeof value} is not a JSON value`);
  }
}

/** The exact bytes an Ed25519 governance signature covers. */
export function signedBytes(seq: number, type: string, payload: unknown): Buffer {
  return Buffer.from(canonicalJson({ seq, type, payload }), 'utf8');
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
