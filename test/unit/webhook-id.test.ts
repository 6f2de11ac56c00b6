// The webhook-id formula as the README documents it, checked against hashes computed outside the
// project's code (Python's hashlib over the documented input), so that a change to the formula — which
// would break every receiver's deduplication — cannot pass by changing the test's expectation with it.
import { describe, expect, it } from 'vitest';
import { webhookId } from '../../src/actors/matcher/jobs.ts';

const BLOCK = `0x${'ab'.repeat(32)}`;

describe('webhook-id', () => {
  it('is msg_ + hex sha256 of chainId|blockHash|logIndex|subscriptionId|type', () => {
    expect(webhookId(1, BLOCK, 7, 'sub_0123', 'log.created')).toBe('msg_f74bb452f1711a0080c8aac8621cd6f487a36ad20d3368a3eb2072c2191e9281');
    expect(webhookId(1, BLOCK, 7, 'sub_0123', 'log.removed')).toBe('msg_64da0274853ac4b2873d7c91194138a6757886e1d2c433a6f3c80ac0d6ffa3d7');
  });

  it('hashes the block hash lowercased, and appends |generation only from the second one', () => {
    expect(webhookId(1, BLOCK.toUpperCase().replace('0X', '0x'), 7, 'sub_0123', 'log.created')).toBe(
      webhookId(1, BLOCK, 7, 'sub_0123', 'log.created'),
    );
    expect(webhookId(1, BLOCK, 7, 'sub_0123', 'log.created', 0)).toBe(webhookId(1, BLOCK, 7, 'sub_0123', 'log.created'));
    expect(webhookId(1, BLOCK, 7, 'sub_0123', 'log.created', 2)).toBe(
      'msg_dc375c77ca4dd832c96f46e550420656ea4c9311ba1cb995effb4a56b43b7e81',
    );
  });
});
