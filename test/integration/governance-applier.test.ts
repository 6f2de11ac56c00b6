// The node's GovernanceApplier (store-applier.ts) on real LevelDB directories:
// - each message type lands in the EndpointStore / SubscriptionStore and is told to the pipeline;
// - applying a message again (a crash between apply and the height write) changes nothing more
//   (a fast-check property over random message sequences);
// - what the stream cannot fix (a subscription for a missing endpoint, pausing a deleted endpoint) is
//   skipped with a warning, never thrown;
// - end to end: the reference server, the GovernanceStream actor, this applier and a real Matcher under
//   the ActorSystem: the stream moves past an unfixable message and the Matcher's index follows.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipelineNotices, type PipelineNotices } from '../../src/pipeline-notices.ts';
import type { ApplyMeta, GovernanceApplier } from '../../src/actors/governance/index.ts';
import { payloadSchemas, type GovernanceType } from '../../src/governance-protocol/protocol.ts';
import { createStoreApplier } from '../../src/actors/governance/store-applier.ts';
import { createMatcher } from '../../src/actors/matcher/matcher.ts';
import { startGovernanceServer } from '../../src/governance-server/index.ts';
import { openDb, type Db } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import { EndpointStore } from '../../src/store/endpoints.ts';
import { LevelOutbox } from '../../src/store/level/outbox/outbox.ts';
import { generateWebhookSecret } from '../../src/store/secrets.ts';
import { SubscriptionStore } from '../../src/store/subscriptions.ts';
import { governanceWorker, makeKey, metric, tempDir } from '../support/governance.ts';
import { memoryLogger, start, waitFor } from '../support/kernel.ts';

const masterKey = randomBytes(32);
const TOPIC = '0x' + 'ab'.repeat(32);
const ADDRESS = '0x' + '12'.repeat(20);

let tmp: Awaited<ReturnType<typeof tempDir>>;
let dirs = 0;
const open: Db[] = [];
beforeAll(async () => {
  tmp = await tempDir('ethhook-gov-applier-');
});
afterAll(async () => {
  for (const db of open) await db.close();
  await tmp.remove();
});

interface Notice {
  to: 'matcher' | 'deliverer';
  change: unknown;
}

async function node() {
  const db = await openDb(join(tmp.dir, `db-${++dirs}`));
  open.push(db);
  const endpoints = new EndpointStore(new LevelKv(db), masterKey);
  const subscriptions = new SubscriptionStore(new LevelKv(db), endpoints);
  const notices: Notice[] = [];
  const recording: PipelineNotices = {
    subscriptionsChanged: async (change) => void notices.push({ to: 'matcher', change }),
    endpointChanged: async (endpointId, _log, deleted) =>
      void notices.push({ to: 'deliverer', change: { endpointId, deleted: deleted ?? false } }),
  };
  const applied: Array<{ seq: number; type: GovernanceType }> = [];
  const { logger, lines } = memoryLogger();
  const applier = createStoreApplier({ endpoints, subscriptions, notices: recording, logger });
  let seq = 0;
  /** Applies one message (payload parsed by the protocol's schema, as the stream does) with the next seq. */
  const apply = async <T extends Exclude<GovernanceType, 'key.rotate'>>(
    type: T,
    payload: unknown,
    meta: ApplyMeta = { seq: ++seq, keyId: 'k'.repeat(32) },
  ) => {
    await call(applier, type, payloadSchemas[type].parse(payload), meta);
    applied.push({ seq: meta.seq, type });
  };
  const close = async () => {
    open.splice(open.indexOf(db), 1);
    await db.close();
  };
  return { db, endpoints, subscriptions, notices, applied, lines, apply, close };
}

function call(applier: GovernanceApplier, type: Exclude<GovernanceType, 'key.rotate'>, payload: unknown, meta: ApplyMeta): Promise<void> {
  const method = {
    'endpoint.upsert': 'endpointUpsert',
    'endpoint.delete': 'endpointDelete',
    'endpoint.pause': 'endpointPause',
    'endpoint.resume': 'endpointResume',
    'subscription.upsert': 'subscriptionUpsert',
    'subscription.delete': 'subscriptionDelete',
  } as const;
  return (applier[method[type]] as (p: unknown, m: ApplyMeta) => Promise<void>)(payload, meta);
}

/** The stores' content that governance controls, in a comparable form. */
async function stateOf(n: Awaited<ReturnType<typeof node>>) {
  const endpoints = (await n.endpoints.list()).map((e) => ({
    id: e.id,
    url: e.url,
    description: e.description,
    rateLimitPerSec: e.rateLimitPerSec ?? null,
    paused: e.paused,
    signing: n.endpoints.activeSecrets(e),
  }));
  const subscriptions = (await n.subscriptions.list()).map(({ createdAt: _t, ...s }) => s);
  return { endpoints, subscriptions };
}

describe('each message type', () => {
  it('endpoint.upsert creates with the given id and secret, then replaces the configuration', async () => {
    const n = await node();
    const secret = generateWebhookSecret();
    await n.apply('endpoint.upsert', { id: 'ep_a', url: 'https://a.example/in', rateLimitPerSec: 5, secret });
    const created = await n.endpoints.require('ep_a');
    expect(created).toMatchObject({ url: 'https://a.example/in', description: '', rateLimitPerSec: 5, paused: false });
    expect(n.endpoints.activeSecrets(created)).toEqual([secret]);

    await n.apply('endpoint.upsert', { id: 'ep_a', url: 'https://b.example/in', description: 'moved' });
    const replaced = await n.endpoints.require('ep_a');
    expect(replaced).toMatchObject({ url: 'https://b.example/in', description: 'moved', createdAt: created.createdAt });
    expect(replaced.rateLimitPerSec).toBeUndefined();
    expect(n.endpoints.activeSecrets(replaced)).toEqual([secret]);

    // A new secret is rotated in; the previous one keeps signing during the overlap.
    const next = generateWebhookSecret();
    await n.apply('endpoint.upsert', { id: 'ep_a', url: 'https://b.example/in', secret: next });
    expect(n.endpoints.activeSecrets(await n.endpoints.require('ep_a'))).toEqual([next, secret]);
    expect(n.notices.filter((x) => x.to === 'deliverer')).toHaveLength(3);
    expect(n.applied.map((a) => a.seq)).toEqual([1, 2, 3]);
  });

  it('pause and resume keep across an upsert; delete cascades to subscriptions and tells both actors', async () => {
    const n = await node();
    await n.apply('endpoint.upsert', { id: 'ep_p', url: 'https://p.example/' });
    await n.apply('subscription.upsert', { id: 'sub_p1', endpointId: 'ep_p', chainId: 1, topics: [TOPIC] });
    await n.apply('subscription.upsert', { id: 'sub_p2', endpointId: 'ep_p', chainId: 1, addresses: [ADDRESS] });
    await n.apply('endpoint.pause', { id: 'ep_p' });
    await n.apply('endpoint.upsert', { id: 'ep_p', url: 'https://p2.example/' });
    expect((await n.endpoints.require('ep_p')).paused).toBe(true);
    await n.apply('endpoint.resume', { id: 'ep_p' });
    expect((await n.endpoints.require('ep_p')).paused).toBe(false);

    n.notices.length = 0;
    await n.apply('endpoint.delete', { id: 'ep_p' });
    expect(await n.endpoints.get('ep_p')).toBeUndefined();
    expect(await n.subscriptions.list()).toEqual([]);
    expect(n.notices).toEqual([
      { to: 'matcher', change: { removed: ['sub_p1', 'sub_p2'] } },
      { to: 'deliverer', change: { endpointId: 'ep_p', deleted: true } },
    ]);
    // Deleting what is gone is a no-op.
    await n.apply('endpoint.delete', { id: 'ep_p' });
    await n.apply('subscription.delete', { id: 'sub_p1' });
  });

  it('subscription.upsert replaces the filter under the same id and createdAt; the Matcher is told', async () => {
    const n = await node();
    await n.apply('endpoint.upsert', { id: 'ep_s', url: 'https://s.example/' });
    await n.apply('endpoint.upsert', { id: 'ep_t', url: 'https://t.example/' });
    await n.apply('subscription.upsert', {
      id: 'sub_s',
      endpointId: 'ep_s',
      chainId: 1,
      addresses: [ADDRESS.toUpperCase().replace('0X', '0x')],
    });
    const first = await n.subscriptions.require('sub_s');
    expect(first.addresses).toEqual([ADDRESS]);
    await n.apply('subscription.upsert', { id: 'sub_s', endpointId: 'ep_t', chainId: 5, topics: [TOPIC, null], confirmations: 3 });
    const second = await n.subscriptions.require('sub_s');
    expect(second).toEqual({
      id: 'sub_s',
      endpointId: 'ep_t',
      chainId: 5,
      topics: [TOPIC, null],
      confirmations: 3,
      createdAt: first.createdAt,
    });
    expect(await n.subscriptions.list({ endpointId: 'ep_s' })).toEqual([]);
    // A change of finality alone is a change.
    await n.apply('subscription.upsert', {
      id: 'sub_s',
      endpointId: 'ep_t',
      chainId: 5,
      topics: [TOPIC, null],
      confirmations: 3,
      finality: 'safe',
    });
    expect((await n.subscriptions.require('sub_s')).finality).toBe('safe');
    expect(n.notices.filter((x) => x.to === 'matcher')).toEqual([
      { to: 'matcher', change: { upserted: ['sub_s'] } },
      { to: 'matcher', change: { upserted: ['sub_s'] } },
      { to: 'matcher', change: { upserted: ['sub_s'] } },
    ]);
    await n.apply('subscription.delete', { id: 'sub_s' });
    expect(await n.subscriptions.get('sub_s')).toBeUndefined();
  });
});

describe('what the stream cannot fix is skipped, not thrown', () => {
  it('a subscription for a missing endpoint, and pausing or resuming one, are logged and skipped', async () => {
    const n = await node();
    await expect(n.apply('subscription.upsert', { id: 'sub_x', endpointId: 'ep_missing', chainId: 1 })).resolves.toBeUndefined();
    await expect(n.apply('endpoint.pause', { id: 'ep_missing' })).resolves.toBeUndefined();
    await expect(n.apply('endpoint.resume', { id: 'ep_missing' })).resolves.toBeUndefined();
    expect(await n.subscriptions.list()).toEqual([]);
    const skipped = n.lines.filter((l) => l.msg === 'governance message skipped: nothing to apply it to');
    expect(skipped.map((l) => [l.seq, l.type, l.code])).toEqual([
      [1, 'subscription.upsert', 'ETHHOOK_ERR_GOVERNANCE_SKIPPED'],
      [2, 'endpoint.pause', 'ETHHOOK_ERR_GOVERNANCE_SKIPPED'],
      [3, 'endpoint.resume', 'ETHHOOK_ERR_GOVERNANCE_SKIPPED'],
    ]);
    // The stream moved past them, so they count as applied.
    expect(n.applied.map((a) => a.seq)).toEqual([1, 2, 3]);
  });

  it('a subscription whose abi or filter the store refuses is skipped naming the field; the same abi given again replaces nothing', async () => {
    const n = await node();
    await n.apply('endpoint.upsert', { id: 'ep_a', url: 'https://a.example/' });
    await n.apply('subscription.upsert', { id: 'sub_bad', endpointId: 'ep_a', chainId: 1, abi: ['event X(uint257 a)'] });
    await n.apply('subscription.upsert', {
      id: 'sub_bad2',
      endpointId: 'ep_a',
      chainId: 1,
      abi: ['event X(uint256 a)'],
      filter: { 'args.b': { eq: 1 } },
    });
    expect(await n.subscriptions.list()).toEqual([]);
    const skipped = n.lines.filter((l) => l.msg === 'governance message skipped: nothing to apply it to');
    expect(skipped.map((l) => [l.type, l.field])).toEqual([
      ['subscription.upsert', 'abi[0]'],
      ['subscription.upsert', 'filter["args.b"]'],
    ]);
    // A JSON fragment is stored as its canonical declaration, with its topic0 as topics[0].
    const transfer = {
      id: 'sub_ok',
      endpointId: 'ep_a',
      chainId: 1,
      abi: [
        {
          type: 'event',
          name: 'Transfer',
          inputs: [
            { name: 'from', type: 'address', indexed: true },
            { name: 'to', type: 'address', indexed: true },
            { name: 'value', type: 'uint256' },
          ],
        },
      ],
      filter: { 'args.value': { gte: '10' } },
    };
    await n.apply('subscription.upsert', transfer);
    const stored = await n.subscriptions.require('sub_ok');
    expect(stored.abi).toEqual(['event Transfer(address indexed from, address indexed to, uint256 value)']);
    expect(stored.topics).toEqual(['0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef']);
    expect(stored.filter).toEqual({ 'args.value': { gte: '10' } });
    await n.apply('subscription.upsert', transfer);
    expect(n.lines.filter((l) => l.msg === 'governance: subscription replaced')).toEqual([]);
    expect((await n.subscriptions.require('sub_ok')).createdAt).toBe(stored.createdAt);
  });

  it('a store failure still rejects (a retry can fix it)', async () => {
    const n = await node();
    await n.close();
    await expect(n.apply('endpoint.upsert', { id: 'ep_c', url: 'https://c.example/' })).rejects.toThrow();
  });
});

describe('idempotent by seq', () => {
  const ids = { ep: ['ep_a', 'ep_b'], sub: ['sub_1', 'sub_2', 'sub_3'] };
  const secrets = [generateWebhookSecret(), generateWebhookSecret()];
  const message = fc.oneof(
    fc.record({
      type: fc.constant('endpoint.upsert' as const),
      payload: fc.record(
        {
          id: fc.constantFrom(...ids.ep),
          url: fc.constantFrom('https://x.example/a', 'https://y.example/b'),
          description: fc.constantFrom('', 'd'),
          rateLimitPerSec: fc.constantFrom(1, 2.5),
          secret: fc.constantFrom(...secrets),
        },
        // The secret is always given: without one each node draws its own, as each node of a cluster would.
        { requiredKeys: ['id', 'url', 'secret'] },
      ),
    }),
    fc.record({
      type: fc.constantFrom('endpoint.delete' as const, 'endpoint.pause' as const, 'endpoint.resume' as const),
      payload: fc.record({ id: fc.constantFrom(...ids.ep) }),
    }),
    fc.record({
      type: fc.constant('subscription.upsert' as const),
      payload: fc.record(
        {
          id: fc.constantFrom(...ids.sub),
          endpointId: fc.constantFrom(...ids.ep),
          chainId: fc.constantFrom(1, 2),
          topics: fc.constantFrom([TOPIC], [null, TOPIC]),
          addresses: fc.constant([ADDRESS]),
        },
        { requiredKeys: ['id', 'endpointId', 'chainId'] },
      ),
    }),
    fc.record({ type: fc.constant('subscription.delete' as const), payload: fc.record({ id: fc.constantFrom(...ids.sub) }) }),
  );

  it('applying every message twice (a replay after a crash) ends in the same stores as applying it once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(message, { maxLength: 12 }),
        fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
        async (messages, twice) => {
          const once = await node();
          const replayed = await node();
          for (const [i, m] of messages.entries()) {
            await once.apply(m.type, m.payload);
            const meta = { seq: i + 1, keyId: 'k'.repeat(32) };
            await replayed.apply(m.type, m.payload, meta);
            if (twice[i]) await replayed.apply(m.type, m.payload, meta);
          }
          try {
            expect(await stateOf(replayed)).toEqual(await stateOf(once));
          } finally {
            await once.close();
            await replayed.close();
          }
        },
      ),
      { numRuns: 25 },
    );
  });
});

describe('under the real stream and Matcher', () => {
  it('applies in order, moves past a subscription for a missing endpoint, and the Matcher index follows', async () => {
    const keyDir = await tempDir('ethhook-gov-applier-keys-');
    const key = await makeKey(keyDir.dir, 'k');
    const server = await startGovernanceServer({ keyFile: key.file });
    const db = await openDb(join(tmp.dir, `db-${++dirs}`));
    const registry = new Registry();
    const endpoints = new EndpointStore(new LevelKv(db), masterKey);
    const subscriptions = new SubscriptionStore(new LevelKv(db), endpoints);
    const outbox = await LevelOutbox.open(new LevelKv(db));
    const { logger } = memoryLogger();
    let system: Awaited<ReturnType<typeof start>>['system'] | undefined;
    try {
      ({ system } = await start([
        {
          kind: 'supervisor',
          name: 'pipeline',
          strategy: 'rest-for-one',
          children: [
            { kind: 'worker', name: 'matcher', behaviour: () => createMatcher({ kv: new LevelKv(db), subscriptions, outbox, logger }) },
          ],
        },
        governanceWorker({
          url: server.url,
          publicKeys: [key.publicDer],
          kv: new LevelKv(db),
          registry,
          apply: createStoreApplier({ endpoints, subscriptions, notices: pipelineNotices((p) => system?.lookup(p)), logger }),
        }),
      ]));
      await server.append('endpoint.upsert', { id: 'ep_live', url: 'https://live.example/' });
      await server.append('subscription.upsert', { id: 'sub_orphan', endpointId: 'ep_gone', chainId: 1 });
      await server.append('subscription.upsert', { id: 'sub_live', endpointId: 'ep_live', chainId: 1, topics: [TOPIC] });
      await server.append('subscription.upsert', { id: 'sub_live2', endpointId: 'ep_live', chainId: 2 });
      await waitFor(async () => (await metric(registry, 'governance_height')) === 4, 10_000, 'height 4');
      const index = () =>
        (system!.lookup('/pipeline/matcher') as unknown as { ask<T>(m: unknown): Promise<T> }).ask<{ size: number }>({
          type: 'subscriptions.changed',
          upserted: [],
        });
      expect((await index()).size).toBe(2);

      await server.append('endpoint.delete', { id: 'ep_live' });
      await waitFor(async () => (await metric(registry, 'governance_height')) === 5, 10_000, 'height 5');
      expect((await index()).size).toBe(0);
      expect(await metric(registry, 'governance_frames_total', { outcome: 'apply-failed' })).toBe(0);
    } finally {
      await system?.shutdown('test', 5_000);
      await server.close();
      await db.close();
      await keyDir.remove();
    }
  });
});
