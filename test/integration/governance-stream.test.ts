// The GovernanceStream actor against the reference governance server on 127.0.0.1, with a real LevelDB
// directory, under the real ActorSystem:
// - changes are applied in order exactly once across connection drops, server restarts, actor
//   stop/start/restart and a node restart on the same data dir;
// - forged, replayed, out-of-order and malformed messages are never applied, and are counted;
// - a key rotation takes effect (new key accepted, retired key rejected) and survives restarts;
// - onApplied hears of every applied message once, key rotations included; one that throws stops nothing;
// - governance.reconnect forces a reconnect now; governance.status reports; stray messages are answered
//   with an error, without a restart.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AppliedMessage, GovernanceStatus } from '../../src/actors/governance/index.ts';
import { startGovernanceServer, type GovernanceServer, type GovernanceServerOptions } from '../../src/governance-server/index.ts';
import { openDb, type Db } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import {
  endpointPayload,
  governanceWorker,
  makeKey,
  MemoryApplier,
  metric,
  signedFrame,
  tempDir,
  type TestKey,
} from '../support/governance.ts';
import { start, waitFor } from '../support/kernel.ts';

const ACTOR = '/governance-stream';
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

let tmp: Awaited<ReturnType<typeof tempDir>>;
let k1: TestKey;
let k2: TestKey;
let k3: TestKey;
let foreign: TestKey;
let cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  tmp = await tempDir();
  k1 = await makeKey(tmp.dir, 'k1');
  k2 = await makeKey(tmp.dir, 'k2');
  k3 = await makeKey(tmp.dir, 'k3');
  foreign = await makeKey(tmp.dir, 'foreign');
});
afterEach(async () => {
  for (const close of cleanups.reverse()) await close().catch(() => {});
  cleanups = [];
});
afterAll(async () => {
  await tmp.remove();
});

let dirs = 0;
const freshDir = () => join(tmp.dir, `case-${++dirs}`);

async function server(options: Partial<GovernanceServerOptions> = {}): Promise<GovernanceServer> {
  const s = await startGovernanceServer({ keyFile: k1.file, ...options });
  cleanups.push(() => s.close());
  return s;
}

async function database(dir: string): Promise<Db> {
  const db = await openDb(dir);
  cleanups.push(() => db.close());
  return db;
}

interface NodeOptions {
  url: string;
  db: Db;
  apply?: MemoryApplier;
  publicKeys?: string[];
  reconnect?: { minMs: number; maxMs: number };
  onApplied?: (applied: AppliedMessage) => void;
}

async function node(options: NodeOptions) {
  const registry = new Registry();
  const apply = options.apply ?? new MemoryApplier();
  const { system, lines } = await start(
    [
      governanceWorker({
        url: options.url,
        publicKeys: options.publicKeys ?? [k1.publicPem],
        kv: new LevelKv(options.db),
        apply,
        registry,
        reconnect: options.reconnect,
        ...(options.onApplied ? { onApplied: options.onApplied } : {}),
      }),
    ],
    {},
    { registry },
  );
  cleanups.push(() => system.shutdown('test'));
  const status = () => system.lookup(ACTOR)!.ask<GovernanceStatus>({ type: 'governance.status' });
  const applied = (n: number) => waitFor(async () => (await status()).height >= n, 10_000, `height ${n}`);
  return { system, lines, registry, apply, status, applied };
}

const portOf = (url: string) => Number(new URL(url).port);

describe('in order, exactly once', () => {
  it('an actor started while the server is down connects when it comes up, then takes the backlog and live messages', async () => {
    const log = join(freshDir(), 'log.jsonl');
    await mkdir(join(log, '..'), { recursive: true });
    const first = await startGovernanceServer({ keyFile: k1.file, store: log });
    for (const n of range(1, 3)) await first.append('endpoint.upsert', endpointPayload(n));
    const url = first.url;
    await first.close();

    const n = await node({ url, db: await database(freshDir()) });
    await waitFor(async () => (await n.status()).lastError !== null, 5_000, 'a connection error');
    expect(await n.status()).toMatchObject({ connected: false, height: 0, trustedKeys: [k1.keyId] });
    expect((await n.status()).lastError).toMatch(/^connection: /);
    expect(await metric(n.registry, 'governance_stream_connected')).toBe(0);

    const again = await server({ port: portOf(url), store: log });
    await n.applied(3);
    for (const i of range(4, 5)) await again.append('endpoint.upsert', endpointPayload(i));
    await n.applied(5);
    expect(n.apply.seqs).toEqual(range(1, 5));
    expect(n.apply.calls.map((c) => c.payload)).toEqual(again.messages().map((m) => m.payload));
    expect(await metric(n.registry, 'governance_stream_connected')).toBe(1);
    expect(await metric(n.registry, 'governance_height')).toBe(5);
    expect(await metric(n.registry, 'signature_matches_total')).toBe(5);
    // The connection error is over once connected: it no longer shows as the last error.
    expect(await n.status()).toMatchObject({ connected: true, lastError: null });
  });

  it('connection drops and a server restart while messages flow: every message applied once, in order', async () => {
    const log = join(freshDir(), 'log.jsonl');
    await mkdir(join(log, '..'), { recursive: true });
    let s = await startGovernanceServer({ keyFile: k1.file, store: log });
    const closeLast = () => s.close();
    cleanups.push(() => closeLast());
    const n = await node({ url: s.url, db: await database(freshDir()) });
    for (const i of range(1, 40)) {
      await s.append(i % 2 ? 'endpoint.upsert' : 'endpoint.pause', i % 2 ? endpointPayload(i) : { id: `ep_${i - 1}` });
      // Every cut lands on a live session, which may still be catching up.
      if (i % 7 === 0 || i === 20) await waitFor(() => s.clients === 1, 5_000, 'node reconnected');
      if (i % 7 === 0) s.dropConnections();
      if (i === 20) {
        await s.close();
        await pause(50);
        s = await startGovernanceServer({ keyFile: k1.file, store: log, port: portOf(s.url) });
      }
    }
    await n.applied(40);
    expect(n.apply.seqs).toEqual(range(1, 40));
    expect(n.apply.calls.map((c) => c.type)).toEqual(s.messages().map((m) => m.type));
    expect([...n.apply.endpoints.values()].filter((e) => e.paused)).toHaveLength(20);
    expect(await metric(n.registry, 'governance_frames_total', { outcome: 'applied' })).toBe(40);
    expect(await metric(n.registry, 'signature_mismatches_total')).toBe(0);
    // 5 drops and a server restart: at least 7 sessions.
    expect(n.lines.filter((l) => l.msg === 'governance stream connected').length).toBeGreaterThanOrEqual(7);
  });

  it('actor stop/start/restart and a node restart on the same data dir resume from the recorded height', async () => {
    const s = await server();
    const dataDir = freshDir();
    let db = await openDb(dataDir);
    const first = await node({ url: s.url, db });
    for (const i of range(1, 3)) await s.append('endpoint.upsert', endpointPayload(i));
    await first.applied(3);

    await first.system.stopActor(ACTOR);
    expect(await metric(first.registry, 'governance_stream_connected')).toBe(0);
    for (const i of range(4, 5)) await s.append('endpoint.upsert', endpointPayload(i));
    await pause(100);
    expect(first.apply.seqs).toEqual(range(1, 3));
    await first.system.startActor(ACTOR);
    await first.applied(5);
    await first.system.restartActor(ACTOR);
    await s.append('endpoint.delete', { id: 'ep_1' });
    await first.applied(6);
    expect(first.apply.seqs).toEqual(range(1, 6));

    // The whole node goes away; messages keep coming; a new node on the same directory resumes.
    await first.system.shutdown('test');
    await db.close();
    for (const i of range(7, 8)) await s.append('subscription.upsert', { id: `sub_${i}`, endpointId: 'ep_2', chainId: 31337 });
    db = await database(dataDir);
    const second = await node({ url: s.url, db });
    await second.applied(8);
    expect(second.apply.seqs).toEqual([7, 8]);
    expect(await metric(second.registry, 'governance_height')).toBe(8);
    expect([...second.apply.subscriptions.keys()]).toEqual(['sub_7', 'sub_8']);
  });

  it('an apply that fails is asked for again and applied, never skipped', async () => {
    const s = await server();
    const apply = new MemoryApplier();
    apply.failures = 2;
    const n = await node({ url: s.url, db: await database(freshDir()), apply });
    await s.append('endpoint.upsert', endpointPayload(1));
    await s.append('endpoint.upsert', endpointPayload(2));
    await n.applied(2);
    expect(apply.seqs).toEqual([1, 2]);
    expect(await metric(n.registry, 'governance_frames_total', { outcome: 'apply-failed' })).toBe(2);
    const failures = n.lines.filter((l) => l.outcome === 'apply-failed');
    expect(failures).toHaveLength(2);
    expect(failures[0]).toMatchObject({
      seq: 1,
      keyId: k1.keyId,
      code: 'ETHHOOK_ERR_GOVERNANCE_APPLY',
      reason: 'simulated store failure at seq 1',
      err: { message: 'simulated store failure at seq 1' },
    });
  });
});

describe('hostile frames are never applied, and are counted', () => {
  it('forged (wrong key, unknown key) and replayed messages', async () => {
    const s = await server();
    const n = await node({ url: s.url, db: await database(freshDir()) });
    for (const i of range(1, 2)) await s.append('endpoint.upsert', endpointPayload(i));
    await n.applied(2);
    const evil = { id: 'ep_evil', url: 'https://evil.example/', description: '' };
    s.injectRaw(signedFrame(foreign, 3, 'endpoint.upsert', evil, k1.keyId)); // claims the trusted key
    s.injectRaw(signedFrame(foreign, 3, 'endpoint.upsert', evil)); // names its own key
    s.injectRaw({ ...s.messages()[1], payload: evil }); // a genuine signature over another payload
    s.injectRaw(s.messages()[0]);
    s.injectRaw(s.messages()[1]);
    await waitFor(async () => (await metric(n.registry, 'governance_frames_total', { outcome: 'replay' })) === 2, 5_000, 'replays');
    expect(await metric(n.registry, 'governance_frames_total', { outcome: 'bad-signature' })).toBe(2);
    expect(await metric(n.registry, 'governance_frames_total', { outcome: 'unknown-key' })).toBe(1);
    expect(await metric(n.registry, 'signature_mismatches_total')).toBe(3);
    expect(await metric(n.registry, 'signature_matches_total')).toBe(4);
    await s.append('endpoint.upsert', endpointPayload(3));
    await n.applied(3);
    expect(n.apply.seqs).toEqual([1, 2, 3]);
    expect(n.apply.endpoints.has('ep_evil')).toBe(false);
    expect(n.apply.calls[2]!.payload).toEqual(endpointPayload(3));
    const rejected = n.lines.filter((l) => l.msg === 'governance message rejected');
    expect(rejected).toHaveLength(3);
    expect(rejected[0]).toMatchObject({
      seq: 3,
      keyId: k1.keyId,
      outcome: 'bad-signature',
      code: 'ETHHOOK_ERR_GOVERNANCE_SIGNATURE',
      reason: expect.any(String),
    });
    expect(rejected[1]).toMatchObject({ seq: 3, keyId: foreign.keyId, outcome: 'unknown-key' });
    expect(rejected[2]).toMatchObject({ seq: 2, keyId: k1.keyId, outcome: 'bad-signature' });
  });

  it('out of order: a gap is ignored, the stream is asked again, and the messages are applied in order', async () => {
    const s = await server();
    const n = await node({ url: s.url, db: await database(freshDir()) });
    await s.append('endpoint.upsert', endpointPayload(1));
    await n.applied(1);
    s.holdBroadcast(true);
    for (const i of range(2, 4)) await s.append('endpoint.upsert', endpointPayload(i));
    await pause(100);
    expect(n.apply.seqs).toEqual([1]);
    // The node only learns of 2..4 through the gap: seq 4 arrives first, it asks again from 2.
    s.injectRaw(s.messages()[3]);
    await n.applied(4);
    expect(n.apply.seqs).toEqual([1, 2, 3, 4]);
    expect(await metric(n.registry, 'governance_frames_total', { outcome: 'gap' })).toBe(1);
    s.holdBroadcast(false);

    // A genuinely signed message from the future is still not applied out of turn.
    s.injectRaw(signedFrame(k1, 7, 'endpoint.upsert', endpointPayload(700)));
    await waitFor(async () => (await metric(n.registry, 'governance_frames_total', { outcome: 'gap' })) === 2, 5_000, 'second gap');
    for (const i of range(5, 7)) await s.append('endpoint.upsert', endpointPayload(i));
    await n.applied(7);
    expect(n.apply.seqs).toEqual(range(1, 7));
    expect(n.apply.endpoints.has('ep_700')).toBe(false);
  });

  it('malformed frames (not JSON, bad envelope, unknown type, invalid payload, oversized)', async () => {
    const s = await server();
    const n = await node({ url: s.url, db: await database(freshDir()) });
    await s.append('endpoint.upsert', endpointPayload(1));
    await n.applied(1);
    const good = signedFrame(k1, 2, 'endpoint.upsert', endpointPayload(2));
    const bad: unknown[] = [
      'not json',
      '[]',
      'null',
      { seq: 2 },
      { ...good, type: 'endpoint.explode' },
      { ...good, extra: true },
      { ...good, keyId: k1.keyId.toUpperCase() },
      { ...good, signature: good.signature.slice(8) },
      { ...good, seq: 2.5 },
      signedFrame(k1, 2, 'endpoint.upsert', { ...endpointPayload(2), url: 'ftp://files.example/' }),
      signedFrame(k1, 2, 'endpoint.pause', { id: 'ep_2', reason: 'unexpected field' }),
    ];
    for (const frame of bad) s.injectRaw(frame);
    await waitFor(
      async () => (await metric(n.registry, 'governance_frames_total', { outcome: 'malformed' })) === bad.length,
      5_000,
      'malformed count',
    );
    expect(await metric(n.registry, 'signature_mismatches_total')).toBe(0);
    expect(n.apply.seqs).toEqual([1]);

    // A frame above 1 MiB closes the connection; the node reconnects and goes on.
    s.injectRaw(`"${'x'.repeat(1024 * 1024 + 10)}"`);
    await waitFor(async () => n.lines.some((l) => l.msg === 'governance stream disconnected'), 5_000, 'disconnect');
    await s.append('endpoint.upsert', endpointPayload(2));
    await n.applied(2);
    expect(n.apply.seqs).toEqual([1, 2]);
    expect(n.apply.calls[1]!.payload).toEqual(endpointPayload(2));
    expect((await n.status()).connected).toBe(true);
  });
});

describe('key rotation', () => {
  it('takes effect: the new key is accepted, the retired key rejected, and the trusted set survives restarts', async () => {
    const s = await server();
    const n = await node({ url: s.url, db: await database(freshDir()) });
    await s.append('endpoint.upsert', endpointPayload(1));
    expect(await s.rotateKey(k2.file)).toBe(2);
    await s.append('endpoint.upsert', endpointPayload(3));
    await n.applied(3);
    expect(s.messages()[2]!.keyId).toBe(k2.keyId);
    expect((await n.status()).trustedKeys).toEqual([k2.keyId]);
    expect(n.apply.seqs).toEqual([1, 3]); // the rotation itself is the stream's business

    // The retired key, and a rotation announced by a key that is not trusted, are rejected.
    s.injectRaw(signedFrame(k1, 4, 'endpoint.upsert', { ...endpointPayload(4), description: 'signed by a retired key' }));
    s.injectRaw(signedFrame(foreign, 4, 'key.rotate', { add: { keyId: foreign.keyId, publicKey: foreign.publicDer }, retire: [k2.keyId] }));
    await waitFor(async () => (await metric(n.registry, 'signature_mismatches_total')) === 2, 5_000, 'two mismatches');
    expect(await metric(n.registry, 'governance_frames_total', { outcome: 'unknown-key' })).toBe(2);
    expect((await n.status()).trustedKeys).toEqual([k2.keyId]);

    // Restarted with the same configuration (which names only k1), the node still trusts k2 only.
    await n.system.stopActor(ACTOR);
    await n.system.startActor(ACTOR);
    expect((await n.status()).trustedKeys).toEqual([k2.keyId]);
    await s.append('endpoint.upsert', endpointPayload(4));
    await n.applied(4);
    expect(n.apply.calls.at(-1)!.payload).toEqual(endpointPayload(4));

    // A rotation that retires nothing: both keys are trusted, the new one signs.
    await s.rotateKey(k3.file, k3.keyId, { retire: false });
    await s.append('endpoint.upsert', endpointPayload(6));
    await n.applied(6);
    expect((await n.status()).trustedKeys).toEqual([k2.keyId, k3.keyId]);
    expect(n.apply.calls.at(-1)).toMatchObject({ seq: 6, keyId: k3.keyId });
    expect(n.lines.filter((l) => l.msg === 'governance signing key rotated')).toHaveLength(2);
  });
});

describe('onApplied', () => {
  it('hears of every applied message once, in order, key rotations included', async () => {
    const s = await server();
    const heard: AppliedMessage[] = [];
    const apply = new MemoryApplier();
    apply.failures = 1;
    const n = await node({ url: s.url, db: await database(freshDir()), apply, onApplied: (a) => heard.push(a) });
    await s.append('endpoint.upsert', endpointPayload(1));
    await s.rotateKey(k2.file);
    await s.append('endpoint.pause', { id: 'ep_1' });
    await n.applied(3);
    // The failed first apply was heard of once, when it finally applied.
    expect(heard).toEqual([
      { seq: 1, type: 'endpoint.upsert', keyId: k1.keyId },
      { seq: 2, type: 'key.rotate', keyId: k1.keyId },
      { seq: 3, type: 'endpoint.pause', keyId: k2.keyId },
    ]);
    expect(n.apply.seqs).toEqual([1, 3]);
  });

  it('a callback that throws is logged; the message stays applied and the stream goes on', async () => {
    const s = await server();
    const onApplied = () => {
      throw new Error('hub on fire');
    };
    const n = await node({ url: s.url, db: await database(freshDir()), onApplied });
    for (const i of range(1, 3)) await s.append('endpoint.upsert', endpointPayload(i));
    await n.applied(3);
    expect(n.apply.seqs).toEqual([1, 2, 3]);
    expect(await metric(n.registry, 'governance_frames_total', { outcome: 'applied' })).toBe(3);
    expect(await metric(n.registry, 'governance_frames_total', { outcome: 'apply-failed' })).toBe(0);
    const warned = n.lines.filter((l) => l.msg === 'governance onApplied callback failed');
    expect(warned.map((l) => [l.seq, (l.err as { message: string }).message])).toEqual(range(1, 3).map((i) => [i, 'hub on fire']));
  });
});

describe('actor messages', () => {
  it('governance.reconnect connects now instead of waiting out the backoff; a stray message gets an error reply', async () => {
    const s = await server();
    const n = await node({ url: s.url, db: await database(freshDir()), reconnect: { minMs: 30_000, maxMs: 60_000 } });
    await waitFor(async () => (await n.status()).connected, 5_000, 'connected');
    s.dropConnections();
    await waitFor(async () => !(await n.status()).connected, 5_000, 'disconnected');
    await pause(200);
    expect((await n.status()).connected).toBe(false);
    const ref = n.system.lookup(ACTOR)!;
    expect(await ref.ask({ type: 'governance.reconnect' })).toEqual({ ok: true });
    await waitFor(async () => (await n.status()).connected, 3_000, 'reconnected at once');
    await s.append('endpoint.upsert', endpointPayload(1));
    await n.applied(1);

    // While connected, it drops the connection and opens a new one at once.
    const before = n.lines.filter((l) => l.msg === 'governance stream connected').length;
    await ref.ask({ type: 'governance.reconnect' });
    await waitFor(() => n.lines.filter((l) => l.msg === 'governance stream connected').length === before + 1, 3_000, 'a new connection');
    await s.append('endpoint.upsert', endpointPayload(2));
    await n.applied(2);
    expect(n.apply.seqs).toEqual([1, 2]);

    // A stray message is answered with an error, without a restart or a dropped connection.
    const connections = n.lines.filter((l) => l.msg === 'governance stream connected').length;
    expect(await ref.ask({ type: 'governance.explode' })).toMatchObject({
      ok: false,
      error: { code: 'ETHHOOK_ERR_GOVERNANCE_UNKNOWN_MESSAGE' },
    });
    expect(n.system.findOrThrow(ACTOR).stats.totalRestarts).toBe(0);
    expect(n.lines.filter((l) => l.msg === 'governance stream connected')).toHaveLength(connections);
  });
});
