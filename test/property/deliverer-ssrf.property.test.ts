// SSRF guard: address classification against an independent reference (node's BlockList), and
// checkTarget's URL and DNS rules.
import { BlockList } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classifyAddress } from '../../src/target-policy/ip-ranges.ts';
import { checkTarget, type LookupAll } from '../../src/target-policy/ssrf.ts';

// The reference: the IANA special-purpose registries, matched by node's own BlockList.
const V4_SPECIAL = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const;
const V6_SPECIAL = [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const;
const v4Refused = new BlockList();
for (const [net, prefix] of V4_SPECIAL) v4Refused.addSubnet(net, prefix, 'ipv4');
const v6Refused = new BlockList();
for (const [net, prefix] of V6_SPECIAL) v6Refused.addSubnet(net, prefix, 'ipv6');
const v6Global = new BlockList();
v6Global.addSubnet('2000::', 3, 'ipv6');

const u32ToV4 = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
const groupsOf = (v: bigint) => [7, 6, 5, 4, 3, 2, 1, 0].map((i) => Number((v >> BigInt(16 * i)) & 0xffffn));
const fullV6 = (v: bigint) =>
  groupsOf(v)
    .map((g) => g.toString(16))
    .join(':');

function referenceV4(ip: string): boolean {
  return !v4Refused.check(ip, 'ipv4');
}

function referenceV6(v: bigint): boolean {
  const text = fullV6(v);
  if (v6Refused.check(text, 'ipv6')) return false;
  const top96 = v >> 32n;
  const low32 = u32ToV4(Number(v & 0xffff_ffffn));
  if (top96 === 0xffffn || top96 === 0xffff_0000n || top96 === 0n || top96 === 0x64_ff9b_0000_0000_0000_0000n) {
    return referenceV4(low32);
  }
  if (v >> 112n === 0x2002n) return referenceV4(u32ToV4(Number((v >> 80n) & 0xffff_ffffn)));
  return v6Global.check(text, 'ipv6');
}

// Renders one IPv6 value in the forms a resolver or a URL may produce.
const v6Texts = (v: bigint): string[] => {
  const canonical = new URL(`http://[${fullV6(v)}]/`).hostname.slice(1, -1);
  const dottedTail = `${groupsOf(v)
    .slice(0, 6)
    .map((g) => g.toString(16))
    .join(':')}:${u32ToV4(Number(v & 0xffff_ffffn))}`;
  return [
    fullV6(v),
    canonical,
    canonical.toUpperCase(),
    dottedTail,
    groupsOf(v)
      .map((g) => g.toString(16).padStart(4, '0'))
      .join(':'),
  ];
};

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const bigintOfBits = (bits: number) => fc.bigInt({ min: 0n, max: (1n << BigInt(bits)) - 1n });
// Random values are biased toward the interesting prefixes, or random IPv6 would almost never hit them.
const interestingV6 = fc.oneof(
  bigintOfBits(128),
  fc.tuple(fc.constantFrom(...V6_SPECIAL), bigintOfBits(128)).map(([[net, prefix], rest]) => {
    const base = BigInt(`0x${expandHex(net)}`);
    const mask = (1n << BigInt(128 - prefix)) - 1n;
    return (base & ~mask) | (rest & mask);
  }),
  fc.tuple(fc.constantFrom(0xffffn, 0xffff_0000n, 0n, 0x64_ff9b_0000_0000_0000_0000n), u32).map(([top, low]) => (top << 32n) | BigInt(low)),
  fc.tuple(u32, bigintOfBits(80)).map(([v4, rest]) => (0x2002n << 112n) | (BigInt(v4) << 80n) | rest),
);

function expandHex(ip: string): string {
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  return [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t].map((g) => g.padStart(4, '0')).join('');
}

describe('IPv4 classification', () => {
  it('agrees with the reference for any address', () => {
    fc.assert(
      fc.property(u32, (n) => {
        const ip = u32ToV4(n);
        expect(classifyAddress(ip).global, ip).toBe(referenceV4(ip));
      }),
      { numRuns: 20_000 },
    );
  });

  it('refuses every address inside each listed range, whatever its host bits', () => {
    fc.assert(
      fc.property(fc.constantFrom(...V4_SPECIAL), u32, ([net, prefix], host) => {
        const base = net.split('.').reduce((a, p) => a * 256 + Number(p), 0);
        const mask = 2 ** (32 - prefix) - 1;
        const ip = u32ToV4(base - (base % (mask + 1)) + (host & mask));
        const verdict = classifyAddress(ip);
        expect(verdict.global, ip).toBe(false);
        if (!verdict.global) expect(verdict.reason).toContain(`(${net}/${prefix})`);
      }),
      { numRuns: 5_000 },
    );
  });

  it('names the range in the reason', () => {
    expect(classifyAddress('127.0.0.1')).toEqual({ global: false, reason: '127.0.0.1 is loopback (127.0.0.0/8)' });
    expect(classifyAddress('100.100.0.1')).toMatchObject({ reason: expect.stringContaining('CGNAT') });
    expect(classifyAddress('8.8.8.8')).toEqual({ global: true });
  });
});

describe('IPv6 classification', () => {
  it('agrees with the reference in every textual form', () => {
    fc.assert(
      fc.property(interestingV6, (v) => {
        const expected = referenceV6(v);
        for (const text of v6Texts(v)) expect(classifyAddress(text).global, text).toBe(expected);
      }),
      { numRuns: 20_000 },
    );
  });

  it('judges IPv4 carried in IPv6 by the IPv4 address', () => {
    fc.assert(
      fc.property(u32, (n) => {
        const ip = u32ToV4(n);
        const hex = `${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
        for (const carried of [`::ffff:${ip}`, `::ffff:${hex}`, `::ffff:0:${ip}`, `64:ff9b::${ip}`, `2002:${hex}::1`]) {
          expect(classifyAddress(carried).global, carried).toBe(referenceV4(ip));
        }
      }),
      { numRuns: 5_000 },
    );
  });

  it('refuses the well-known local forms with a reason', () => {
    for (const [ip, words] of [
      ['::1', 'loopback'],
      ['::', 'unspecified'],
      ['fe80::1', 'link-local'],
      ['fd12:3456::1', 'unique-local'],
      ['ff02::1', 'multicast'],
      ['::ffff:127.0.0.1', 'loopback'],
      ['::ffff:7f00:1', 'loopback'],
      ['::ffff:169.254.169.254', 'link-local'],
      ['::127.0.0.1', 'loopback'],
      ['4000::1', 'reserved'],
    ] as const) {
      const verdict = classifyAddress(ip);
      expect(verdict.global, ip).toBe(false);
      if (!verdict.global) expect(verdict.reason, ip).toContain(words);
    }
    expect(classifyAddress('2606:4700:4700::1111').global).toBe(true);
    expect(classifyAddress('::ffff:8.8.8.8').global).toBe(true);
  });

  it('anything that is not an IP is not global', () => {
    expect(classifyAddress('localhost').global).toBe(false);
  });
});

describe('checkTarget', () => {
  const resolvesTo =
    (...addresses: string[]): LookupAll =>
    async () =>
      addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  const strict = { allowPrivate: false };

  it('accepts http and https only', async () => {
    for (const url of ['ftp://example.com/', 'file:///etc/passwd', 'gopher://x/', 'javascript:alert(1)', 'not a url']) {
      expect(await checkTarget(url, { ...strict, lookup: resolvesTo('93.184.216.34') })).toMatchObject({ ok: false, kind: 'scheme' });
    }
    expect(await checkTarget('https://example.com/hook', { ...strict, lookup: resolvesTo('93.184.216.34') })).toEqual({
      ok: true,
      address: '93.184.216.34',
      family: 4,
    });
  });

  it('refuses literal private addresses in every URL spelling', async () => {
    const neverCalled: LookupAll = async () => {
      throw new Error('literal addresses need no DNS');
    };
    for (const url of [
      'http://127.0.0.1/',
      'http://2130706433/',
      'http://0x7f.1/',
      'http://0177.0.0.1/',
      'http://[::1]/',
      'http://[::ffff:127.0.0.1]:8080/',
      'http://[fe80::1]/',
      'http://169.254.169.254/latest/meta-data',
      'http://10.1.2.3/',
      'http://0.0.0.0/',
      'http://[::]/',
    ]) {
      expect(await checkTarget(url, { ...strict, lookup: neverCalled }), url).toMatchObject({ ok: false, kind: 'address' });
    }
  });

  it('refuses a host when any of its addresses is private', async () => {
    const check = await checkTarget('https://mixed.example/', { ...strict, lookup: resolvesTo('93.184.216.34', '10.0.0.7') });
    expect(check).toEqual({ ok: false, kind: 'address', reason: 'mixed.example: 10.0.0.7 is private (10.0.0.0/8)' });
  });

  it('allowPrivate lets loopback through (development)', async () => {
    expect(await checkTarget('http://localhost:3000/', { allowPrivate: true, lookup: resolvesTo('::1', '127.0.0.1') })).toEqual({
      ok: true,
      address: '::1',
      family: 6,
    });
  });

  it('reports DNS failures as kind dns', async () => {
    const failing: LookupAll = async () => {
      throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' });
    };
    expect(await checkTarget('https://nowhere.invalid/', { ...strict, lookup: failing })).toEqual({
      ok: false,
      kind: 'dns',
      reason: 'cannot resolve nowhere.invalid: ENOTFOUND',
    });
    expect(await checkTarget('https://empty.example/', { ...strict, lookup: resolvesTo() })).toMatchObject({ ok: false, kind: 'dns' });
  });

  it('uses the system resolver by default (localhost is loopback)', async () => {
    expect(await checkTarget('http://localhost/', strict)).toMatchObject({ ok: false, kind: 'address' });
  });
});
