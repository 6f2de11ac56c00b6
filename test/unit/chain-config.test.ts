// chainConfigSchema: defaults, durations with units, and the refusals an operator would hit.
import { describe, expect, it } from 'vitest';
import { chainConfigSchema } from '../../src/actors/chain-listener/config.ts';

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
});
