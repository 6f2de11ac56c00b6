// chainConfigSchema: defaults, durations with units, and the refusals an operator would hit.
import { describe, expect, it } from 'vitest';
import { chainConfigSchema } from '../../src/config/chain.ts';

const base = { chainId: 1, name: 'mainnet', wsUrl: 'wss://node.example/ws' };

describe('chainConfigSchema', () => {
  it('fills the defaults and reads durations with units', () => {
    const c = chainConfigSchema.parse({ ...base, requestTimeoutMs: '2s', reconnect: { maxMs: '1m' } });
    expect(c).toMatchObject({
      confirmations: 0,
      maxReorgDepth: 64,
      backfillRange: 2000,
      startBlock: 'latest',
      requestTimeoutMs: 2_000,
      wsFailuresBeforeFallback: 3,
      reconnect: { minMs: 250, maxMs: 60_000, factor: 2, jitter: 0.2 },
    });
  });

  it('refuses wrong schemes, bad names, unknown keys, zero timeouts, confirmations beyond the reorg window', () => {
    const issue = (input: object) => {
      const r = chainConfigSchema.safeParse({ ...base, ...input });
      expect(r.success).toBe(false);
      return r.error!.issues[0]!;
    };
    expect(issue({ wsUrl: 'http://node' }).path).toEqual(['wsUrl']);
    expect(issue({ httpUrl: 'ws://node' }).path).toEqual(['httpUrl']);
    expect(issue({ name: 'Main Net' }).path).toEqual(['name']);
    expect(issue({ wsurl: 'ws://typo' }).code).toBe('unrecognized_keys');
    expect(issue({ requestTimeoutMs: 0 }).path).toEqual(['requestTimeoutMs']);
    expect(issue({ confirmations: 10, maxReorgDepth: 5 }).path).toEqual(['confirmations']);
    expect(issue({ reconnect: { minMs: 500, maxMs: 100 } }).path).toEqual(['reconnect']);
  });

  it('reads the single form as one provider named primary, and a providers list as given', () => {
    const single = chainConfigSchema.parse({ ...base, httpUrl: 'https://node.example' });
    expect(single.providers).toEqual([{ name: 'primary', wsUrl: base.wsUrl, httpUrl: 'https://node.example', weight: 1 }]);
    expect(single).not.toHaveProperty('wsUrl');
    const many = chainConfigSchema.parse({
      chainId: 1,
      name: 'mainnet',
      providers: [
        { name: 'a', wsUrl: 'wss://a.example', weight: 5, maxRequestsPerSecond: 25, maxBlockRange: 500 },
        { name: 'b', httpUrl: 'https://b.example' },
      ],
      quorum: 2,
    });
    expect(many.providers.map((p) => [p.name, p.weight, p.maxRequestsPerSecond, p.maxBlockRange])).toEqual([
      ['a', 5, 25, 500],
      ['b', 1, undefined, undefined],
    ]);
    expect(many).toMatchObject({ quorum: 2, maxLagBlocks: 5, stallTimeoutMs: 30_000, failbackAfterMs: 60_000 });
  });

  it('refuses both forms at once, neither, a provider without a URL, names or URLs listed twice, a quorum above the providers', () => {
    const issue = (input: object) => {
      const r = chainConfigSchema.safeParse({ chainId: 1, name: 'mainnet', ...input });
      expect(r.success).toBe(false);
      return r.error!.issues[0]!;
    };
    const a = { name: 'a', wsUrl: 'wss://a.example' };
    expect(issue({ wsUrl: 'wss://x.example', providers: [a] }).path).toEqual(['providers']);
    expect(issue({}).path).toEqual(['wsUrl']);
    expect(issue({ providers: [{ name: 'a' }] }).path).toEqual(['providers', 0, 'wsUrl']);
    expect(issue({ providers: [a, { ...a }] }).path).toEqual(['providers', 1, 'name']);
    expect(issue({ providers: [a, { ...a, name: 'b' }] }).path).toEqual(['providers', 1, 'wsUrl']);
    expect(issue({ providers: [a], quorum: 2 }).path).toEqual(['quorum']);
    expect(issue({ providers: [{ ...a, name: 'Bad Name' }] }).path).toEqual(['providers', 0, 'name']);
    expect(issue({ providers: [] }).path).toEqual(['providers']);
  });
});
