// The chaos invariant (chaos/invariant.ts) on crafted runs: a good run — retries, duplicates, a reorg's
// retraction, a flip-flop block back as generation 1, deferred jobs never sent — passes every check,
// in any arrival order that keeps each (subscription, log) pair's own order; and for each check a bad
// run that breaks exactly that one makes it, and only it, count.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkInvariant, FAILURES, type ChainLog, type Observation, type Verdict } from '../../chaos/invariant.ts';
import { runOk } from '../../chaos/run.ts';
import { webhookId } from '../../src/actors/matcher/jobs.ts';
import type { ReceivedRequest, Reply } from '../support/receiver.ts';
import type { WebhookBody } from '../e2e/e2e-chain.ts';

const CHAIN_ID = 31337;
const CONTRACT = `0x${'5fab'.repeat(10)}`;
const TICK = `0x${'a6'.repeat(32)}`;
const SUBS = ['sub-a', 'sub-b'] as const;
const hex = (n: number) => `0x${n.toString(16)}`;
const hash = (tag: string, n: number) => `0x${tag}${n.toString(16).padStart(64 - tag.length, '0')}`;

function chainLog(block: number, blockTag: string, logIndex: number): ChainLog {
  return {
    address: CONTRACT,
    topics: [TICK, hash('f3', block), hash('00', logIndex)],
    data: hash('d0', block * 10 + logIndex),
    blockNumber: hex(block),
    blockHash: hash(blockTag, block),
    blockTimestamp: hex(1_800_000_000 + block),
    transactionHash: hash(`${blockTag}7`, block),
    logIndex: hex(logIndex),
    removed: false,
  };
}

// Blocks 10 and 11 canonical; block 12 orphaned by a reorg (its replacement 12' has one log); block
// 13 retracted once and canonical again (in both lists, the same hash).
const B10 = [chainLog(10, 'aa', 0), chainLog(10, 'aa', 1)];
const B11 = [chainLog(11, 'aa', 2)];
const B12 = [chainLog(12, 'bb', 0)];
const B12R = [chainLog(12, 'cc', 0)];
const B13 = [chainLog(13, 'aa', 0)];
const CANONICAL = [...B10, ...B11, ...B12R, ...B13];
const ORPHANED = [...B12, ...B13];

type Type = WebhookBody['type'];

function webhookBody(log: ChainLog, sub: string, type: Type, seenAt = '2027-01-15T08:00:00.000Z'): WebhookBody {
  return {
    type,
    timestamp: type === 'log.created' ? new Date(Number.parseInt(log.blockTimestamp, 16) * 1_000).toISOString() : seenAt,
    data: {
      chainId: CHAIN_ID,
      blockNumber: Number.parseInt(log.blockNumber, 16),
      blockHash: log.blockHash,
      transactionHash: log.transactionHash,
      logIndex: Number.parseInt(log.logIndex, 16),
      address: log.address,
      topics: log.topics,
      data: log.data,
      subscriptionId: sub,
    },
  };
}

const idOf = (b: WebhookBody, generation: number) =>
  webhookId(b.data.chainId, b.data.blockHash, b.data.logIndex, b.data.subscriptionId, b.type, generation);

function request(json: unknown, id: string, reply: Reply = { status: 200 }, text = JSON.stringify(json)): ReceivedRequest {
  return {
    seq: 0,
    at: 0,
    method: 'POST',
    path: '/a',
    headers: { 'webhook-id': id },
    remotePort: undefined,
    body: text,
    webhookId: id,
    json,
    verified: true,
    reply,
  };
}

/** One webhook's requests: `failures` failed attempts (500, a hang), then a 2xx, then `duplicates` more 2xx. */
function webhook(log: ChainLog, sub: string, type: Type, generation = 0, failures = 0, duplicates = 0): ReceivedRequest[] {
  const b = webhookBody(log, sub, type);
  const id = idOf(b, generation);
  const failed: Reply[] = [{ status: 500 }, { hang: true }];
  return [
    ...Array.from({ length: failures }, (_, i) => request(b, id, failed[i % 2])),
    request(b, id),
    ...Array.from({ length: duplicates }, () => request(b, id)),
  ];
}

/** The good run as per-pair sequences of requests (each pair's order matters, not the order between pairs). */
function goodPairs(): ReceivedRequest[][] {
  const pairs: ReceivedRequest[][] = [];
  for (const [i, log] of [...B10, ...B11, ...B12R].entries()) {
    for (const sub of SUBS) pairs.push(webhook(log, sub, 'log.created', 0, i % 3, i % 2));
  }
  // The orphan: sub-a got it and its retraction, then a redelivery of the created (a kill lost the 2xx);
  // sub-b's job was still deferred when the block was retracted: nothing sent.
  pairs.push([
    ...webhook(B12[0]!, 'sub-a', 'log.created', 0, 1),
    ...webhook(B12[0]!, 'sub-a', 'log.removed', 0, 1),
    ...webhook(B12[0]!, 'sub-a', 'log.created'),
  ]);
  // The flip-flop: sub-a created, retracted, created again as generation 1; sub-b only generation 1.
  pairs.push([
    ...webhook(B13[0]!, 'sub-a', 'log.created'),
    ...webhook(B13[0]!, 'sub-a', 'log.removed'),
    ...webhook(B13[0]!, 'sub-a', 'log.created', 1),
  ]);
  pairs.push(webhook(B13[0]!, 'sub-b', 'log.created', 1));
  return pairs;
}

const observe = (requests: ReceivedRequest[]): Observation => ({
  chainId: CHAIN_ID,
  canonical: CANONICAL,
  orphaned: ORPHANED,
  subscriptions: SUBS,
  requests,
});
const goodRun = () => goodPairs().flat();

/** The checks that count something. */
const failing = (v: Verdict) => FAILURES.filter((k) => v[k] !== 0);

function onlyFails(requests: ReceivedRequest[], check: (typeof FAILURES)[number]): Verdict {
  const v = checkInvariant(observe(requests));
  expect(failing(v)).toEqual([check]);
  expect(v.ok).toBe(false);
  return v;
}

const isWebhook = (r: ReceivedRequest, log: ChainLog, sub: string, type: Type) => {
  const b = r.json as WebhookBody;
  return (
    b.type === type &&
    b.data.subscriptionId === sub &&
    b.data.blockHash === log.blockHash &&
    b.data.logIndex === Number.parseInt(log.logIndex, 16)
  );
};

describe('a good run', () => {
  it('passes every check, with its retries and duplicates counted', () => {
    const v = checkInvariant(observe(goodRun()));
    expect(failing(v)).toEqual([]);
    expect(v.ok).toBe(true);
    expect(v.expected).toBe(CANONICAL.length * SUBS.length);
    expect(v.delivered).toBe(v.expected);
    expect(v.owed).toBe(0);
    // The orphan's created (1 of sub-a) and the flip-flop's generation 0 (sub-a) are the two retracted.
    expect(v.removed).toBe(2);
    expect(v.orphanedDelivered).toBe(1);
    expect(v.duplicates).toBe(4 + 1);
    expect(v.retries).toBe(v.requests - new Set(goodRun().map((r) => r.webhookId)).size);
  });

  it('passes in any arrival order that keeps each pair in its order', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { minLength: 60, maxLength: 60 }), (picks) => {
        const queues = goodPairs();
        const merged: ReceivedRequest[] = [];
        for (const p of picks) {
          const open = queues.filter((q) => q.length > 0);
          if (open.length === 0) break;
          merged.push(open[p % open.length]!.shift()!);
        }
        merged.push(...queues.flat());
        expect(failing(checkInvariant(observe(merged)))).toEqual([]);
      }),
    );
  });
});

describe('each check fails on a run that breaks it', () => {
  it('lost: a canonical log one subscription never got', () => {
    const v = onlyFails(
      goodRun().filter((r) => !isWebhook(r, B10[1]!, 'sub-b', 'log.created')),
      'lost',
    );
    expect(v.lost).toBe(1);
    expect(v.lostSample).toEqual([`sub-b|${B10[1]!.blockHash}:1`]);
    expect(v.owed).toBe(1);
  });

  it('missingRemovals: an orphaned log delivered without its log.removed', () => {
    expect(
      onlyFails(
        goodRun().filter((r) => !isWebhook(r, B12[0]!, 'sub-a', 'log.removed')),
        'missingRemovals',
      ).missingRemovals,
    ).toBe(1);
  });

  it('wrongRemovals: a canonical log retracted, and never created again', () => {
    expect(onlyFails([...goodRun(), ...webhook(B11[0]!, 'sub-a', 'log.removed')], 'wrongRemovals').wrongRemovals).toBe(1);
  });

  it('unexpected: a subscription not checked, a log the chain never had, a body that is no delivery', () => {
    expect(onlyFails([...goodRun(), ...webhook(B11[0]!, 'sub-z', 'log.created')], 'unexpected').unexpected).toBe(1);
    expect(onlyFails([...goodRun(), ...webhook(chainLog(11, 'ee', 0), 'sub-a', 'log.created')], 'unexpected').unexpected).toBe(1);
    expect(onlyFails([...goodRun(), request({ type: 'ping' }, 'msg_ping')], 'unexpected').unexpected).toBe(1);
  });

  it("idMismatches: a webhook-id that is not its payload's, for any generation", () => {
    const wrong = `msg_${'0'.repeat(64)}`;
    const run = goodRun().map((r) => (isWebhook(r, B10[0]!, 'sub-a', 'log.created') ? { ...r, webhookId: wrong } : r));
    expect(onlyFails(run, 'idMismatches').idMismatches).toBe(1);
  });

  it('bodyMismatches: a retry of an id carrying another body', () => {
    const first = goodRun().find((r) => isWebhook(r, B11[0]!, 'sub-b', 'log.created'))!;
    const respaced = request(first.json, first.webhookId!, { status: 500 }, JSON.stringify(first.json, null, 1));
    expect(onlyFails([...goodRun(), respaced], 'bodyMismatches').bodyMismatches).toBe(1);
  });

  it('badSignatures: a request whose signature did not verify', () => {
    expect(
      onlyFails(
        goodRun().map((r, i) => (i === 3 ? { ...r, verified: false } : r)),
        'badSignatures',
      ).badSignatures,
    ).toBe(1);
  });

  it('removalsWithoutCreation: a log.removed whose log.created never came', () => {
    const v = onlyFails(
      goodRun().filter((r) => !isWebhook(r, B12[0]!, 'sub-a', 'log.created')),
      'removalsWithoutCreation',
    );
    expect(v.removalsWithoutCreation).toBe(1);
    expect(v.owed).toBe(1);
  });

  it('removalsBeforeCreation: a log.removed that arrived before its log.created', () => {
    const run = goodRun();
    const removal = run.filter((r) => isWebhook(r, B12[0]!, 'sub-a', 'log.removed'));
    const v = onlyFails([...removal, ...run.filter((r) => !removal.includes(r))], 'removalsBeforeCreation');
    expect(v.removalsBeforeCreation).toBe(1);
    expect(v.owed).toBe(0);
  });

  it('redeliveredWithoutRemoval: a canonical log delivered again as a new generation, nothing retracted between', () => {
    expect(
      onlyFails([...goodRun(), ...webhook(B10[0]!, 'sub-b', 'log.created', 1)], 'redeliveredWithoutRemoval').redeliveredWithoutRemoval,
    ).toBe(1);
    // The flip-flop's generation 1 arriving before the retraction of generation 0.
    const run = goodRun();
    const again = run.filter((r) => isWebhook(r, B13[0]!, 'sub-a', 'log.created') && r.webhookId === idOf(r.json as WebhookBody, 1));
    const removal = run.findIndex((r) => isWebhook(r, B13[0]!, 'sub-a', 'log.removed'));
    const reordered = run.filter((r) => !again.includes(r));
    reordered.splice(removal, 0, ...again);
    expect(onlyFails(reordered, 'redeliveredWithoutRemoval').redeliveredWithoutRemoval).toBe(1);
  });

  describe('payloadMismatches: a body that disagrees with the chain', () => {
    type Mutation = (b: WebhookBody) => void;
    const flip = (h: string) => `${h.slice(0, -1)}${h.endsWith('0') ? '1' : '0'}`;
    const MUTATIONS: Record<string, Mutation> = {
      chainId: (b) => {
        b.data.chainId += 1;
      },
      blockNumber: (b) => {
        b.data.blockNumber += 1;
      },
      transactionHash: (b) => {
        b.data.transactionHash = flip(b.data.transactionHash);
      },
      address: (b) => {
        b.data.address = flip(b.data.address);
      },
      'address in capitals': (b) => {
        b.data.address = b.data.address.toUpperCase().replace('0X', '0x');
      },
      'a topic changed': (b) => {
        b.data.topics = [b.data.topics[0]!, flip(b.data.topics[1]!), ...b.data.topics.slice(2)];
      },
      'a topic dropped': (b) => {
        b.data.topics = b.data.topics.slice(0, -1);
      },
      'a topic added': (b) => {
        b.data.topics = [...b.data.topics, TICK];
      },
      data: (b) => {
        b.data.data = flip(b.data.data);
      },
      'data emptied': (b) => {
        b.data.data = '0x';
      },
      timestamp: (b) => {
        b.timestamp = b.type === 'log.created' ? new Date(Date.parse(b.timestamp) + 1_000).toISOString() : 'not a time';
      },
      'a field more in data': (b) => {
        (b.data as Record<string, unknown>).removed = false;
      },
      'a field more in the body': (b) => {
        (b as unknown as Record<string, unknown>).id = 'x';
      },
    };

    it('fails for every field from the chain, on any delivered webhook, and for nothing else', () => {
      const ids = [...new Set(goodRun().map((r) => r.webhookId!))];
      fc.assert(
        fc.property(fc.constantFrom(...ids), fc.constantFrom(...Object.keys(MUTATIONS)), (id, field) => {
          const run = goodRun();
          const original = run.find((r) => r.webhookId === id)!.json as WebhookBody;
          const generation = [0, 1].find((g) => idOf(original, g) === id)!;
          const mutated = structuredClone(original);
          MUTATIONS[field]!(mutated);
          // The id follows the payload (it hashes chainId), so only the payload check can see the change.
          const changed = run.map((r) => (r.webhookId === id ? request(mutated, idOf(mutated, generation), r.reply) : r));
          const v = onlyFails(changed, 'payloadMismatches');
          expect(v.payloadMismatches).toBe(1);
          expect(v.payloadSample).toHaveLength(1);
        }),
      );
    });
  });
});

describe('a chaos run', () => {
  // Beside the invariant, a run fails on a fault that never got through, a crash no fault ordered, or a
  // final exit other than 0: each alone turns a good verdict into a failed run.
  it('is ok only with a good verdict, every fault through, no unexpected exit and a clean final exit', () => {
    const verdict = checkInvariant(observe(goodRun()));
    const good = { verdict, unexpectedExits: [], finalExit: { code: 0, signal: null }, failed: [] };
    expect(runOk(good)).toBe(true);
    expect(runOk({ ...good, failed: ['kill-node: did not get through within 30000 ms'] })).toBe(false);
    expect(runOk({ ...good, unexpectedExits: [{ t: 3, id: 'node', pid: 42, code: 1, signal: null, lastErrors: [] }] })).toBe(false);
    expect(runOk({ ...good, finalExit: { code: 1, signal: null } })).toBe(false);
    expect(runOk({ ...good, finalExit: null })).toBe(false);
  });
});
