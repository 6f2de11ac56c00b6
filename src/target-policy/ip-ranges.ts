/**
 * Which IP addresses a webhook may be sent to: only globally routable unicast.
 *
 * Refused (with the name of the range as the reason):
 * - IPv4: 0.0.0.0/8 this-network, 10/8, 172.16/12 and 192.168/16 private, 100.64/10 shared (CGNAT),
 *   127/8 loopback, 169.254/16 link-local, 192.0.0/24 protocol assignments, 192.0.2/24, 198.51.100/24
 *   and 203.0.113/24 documentation, 192.88.99/24 6to4 relay, 198.18/15 benchmarking, 224/4 multicast,
 *   240/4 reserved (with 255.255.255.255 broadcast).
 * - IPv6: :: unspecified, ::1 loopback, fe80::/10 link-local, fec0::/10 site-local, fc00::/7 unique-local,
 *   ff00::/8 multicast, 100::/64 discard, 2001:db8::/32 documentation, 64:ff9b:1::/48 local NAT64, and
 *   anything outside 2000::/3 (the only block allocated for global unicast).
 * - IPv6 forms that carry an IPv4 address are judged by that address: mapped ::ffff:a.b.c.d,
 *   translated ::ffff:0:a.b.c.d, compatible ::a.b.c.d, NAT64 64:ff9b::a.b.c.d and 6to4 2002:AABB:CCDD::.
 *   The textual form does not matter (`::ffff:7f00:1` is `::ffff:127.0.0.1`).
 */
import { isIPv4, isIPv6 } from 'node:net';

export type AddressVerdict = { global: true } | { global: false; reason: string };

interface Range {
  readonly cidr: string;
  readonly base: bigint;
  readonly prefix: number;
  readonly name: string;
}

const V4_RANGES: readonly Range[] = [
  v4('0.0.0.0/8', 'this-network'),
  v4('10.0.0.0/8', 'private'),
  v4('100.64.0.0/10', 'shared address space (CGNAT)'),
  v4('127.0.0.0/8', 'loopback'),
  v4('169.254.0.0/16', 'link-local'),
  v4('172.16.0.0/12', 'private'),
  v4('192.0.0.0/24', 'IETF protocol assignments'),
  v4('192.0.2.0/24', 'documentation'),
  v4('192.88.99.0/24', '6to4 relay anycast'),
  v4('192.168.0.0/16', 'private'),
  v4('198.18.0.0/15', 'benchmarking'),
  v4('198.51.100.0/24', 'documentation'),
  v4('203.0.113.0/24', 'documentation'),
  v4('224.0.0.0/4', 'multicast'),
  v4('240.0.0.0/4', 'reserved'),
];

const V6_RANGES: readonly Range[] = [
  v6('::/128', 'unspecified'),
  v6('::1/128', 'loopback'),
  v6('64:ff9b:1::/48', 'local-use NAT64'),
  v6('100::/64', 'discard-only'),
  v6('2001:db8::/32', 'documentation'),
  v6('fc00::/7', 'unique-local'),
  v6('fe80::/10', 'link-local'),
  v6('fec0::/10', 'site-local'),
  v6('ff00::/8', 'multicast'),
];

/** IPv6 blocks whose low or middle bits are an IPv4 address, and where that address sits. */
const V4_CARRIERS: readonly { range: Range; shift: bigint }[] = [
  { range: v6('::ffff:0:0/96', 'IPv4-mapped'), shift: 0n },
  { range: v6('::ffff:0:0:0/96', 'IPv4-translated'), shift: 0n },
  { range: v6('64:ff9b::/96', 'NAT64'), shift: 0n },
  { range: v6('::/96', 'IPv4-compatible'), shift: 0n },
  { range: v6('2002::/16', '6to4'), shift: 80n },
];

const GLOBAL_UNICAST_V6 = v6('2000::/3', 'global unicast');

export function classifyAddress(ip: string): AddressVerdict {
  if (isIPv4(ip)) return classifyV4(parseV4(ip), ip);
  if (isIPv6(ip)) return classifyV6(parseV6(ip), ip);
  return { global: false, reason: `${ip} is not an IP address` };
}

function classifyV4(value: bigint, text: string): AddressVerdict {
  const hit = V4_RANGES.find((r) => within(value, r, 32));
  return hit ? { global: false, reason: `${text} is ${hit.name} (${hit.cidr})` } : { global: true };
}

function classifyV6(value: bigint, text: string): AddressVerdict {
  const hit = V6_RANGES.find((r) => within(value, r, 128));
  if (hit) return { global: false, reason: `${text} is ${hit.name} (${hit.cidr})` };
  for (const { range, shift } of V4_CARRIERS) {
    if (!within(value, range, 128)) continue;
    const embedded = (value >> shift) & 0xffff_ffffn;
    const verdict = classifyV4(embedded, formatV4(embedded));
    return verdict.global ? verdict : { global: false, reason: `${text} is ${range.name}: ${verdict.reason}` };
  }
  if (!within(value, GLOBAL_UNICAST_V6, 128)) return { global: false, reason: `${text} is reserved (outside 2000::/3)` };
  return { global: true };
}

function within(value: bigint, range: Range, bits: number): boolean {
  const shift = BigInt(bits - range.prefix);
  return value >> shift === range.base >> shift;
}

function v4(cidr: string, name: string): Range {
  const [addr, prefix] = cidr.split('/') as [string, string];
  return { cidr, base: parseV4(addr), prefix: Number(prefix), name };
}

function v6(cidr: string, name: string): Range {
  const [addr, prefix] = cidr.split('/') as [string, string];
  return { cidr, base: parseV6(addr), prefix: Number(prefix), name };
}

/** Dotted quad to a 32-bit value; the caller has checked the syntax with `isIPv4`. */
export function parseV4(ip: string): bigint {
  return ip.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

/** Any RFC 4291 text form (`::` compression, dotted IPv4 tail) to a 128-bit value. */
export function parseV6(ip: string): bigint {
  let text = ip;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const tail = parseV4(dotted[1] as string);
    text = `${text.slice(0, dotted.index)}${(tail >> 16n).toString(16)}:${(tail & 0xffffn).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const zeros = 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(rest === undefined ? 0 : zeros).fill('0'), ...tailGroups];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function formatV4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
}
