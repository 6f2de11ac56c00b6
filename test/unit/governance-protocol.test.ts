// The governance protocol's fixed points: the worked example of docs/governance.md (canonical bytes,
// key id, deterministic signature), key parsing and ids, frame parsing edge cases, the persisted state
// (seeding, re-seeding, rotation), a failed height write, and the actor's configuration checks.
import { generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGovernanceStream } from '../../src/actors/governance/index.ts';
import { canonicalJson } from '../../src/governance-protocol/canonical.ts';
import {
  keyIdOf,
  parsePrivateKey,
  parsePublicKey,
  signMessage,
  spkiBase64,
  trustedKey,
  verifyMessage,
} from '../../src/governance-protocol/keys.ts';
import { parseGovernanceFrame } from '../../src/governance-protocol/protocol.ts';
import { GovernanceSequencer, rotate } from '../../src/actors/governance/sequencer.ts';
import { getGovernanceMetrics } from '../../src/actors/governance/metrics.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { GovernanceStateStore } from '../../src/actors/governance/state.ts';
import { isEthhookError } from '../../src/runtime/errors.ts';
import { openDb, type Db } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import { MemoryApplier, signedFrame, tempDir } from '../support/governance.ts';

const EXAMPLE_KEY =
  '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n';
const EXAMPLE_PUBLIC = 'MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=';
const EXAMPLE_PAYLOAD = { url: 'https://hooks.example.com/in', id: 'ep_demo', description: 'Café ☕', rateLimitPerSec: 2.5 };
const EXAMPLE_CANONICAL =
  '{"payload":{"description":"Café ☕","id":"ep_demo","rateLimitPerSec":2.5,"url":"https://hooks.example.com/in"},"seq":1,"type":"endpoint.upsert"}';
const EXAMPLE_SIGNATURE = 'o9L4A6XsmxzqRtQurZ0mf65TmZNgp6ATBU5TZym8h/7TVlVhqbqHUO7/Jk5vY9R2yM+2bLFf8q3CVplUrAe5CQ==';

describe('the worked example of docs/governance.md', () => {
  it('gives the documented canonical bytes, key id and signature, and the doc says so', async () => {
    const key = parsePrivateKey(EXAMPLE_KEY);
    expect(spkiBase64(key)).toBe(EXAMPLE_PUBLIC);
    expect(keyIdOf(key)).toBe('21fe31dfa154a261626bf854046fd227');
    const canonical = canonicalJson({ seq: 1, type: 'endpoint.upsert', payload: EXAMPLE_PAYLOAD });
    expect(canonical).toBe(EXAMPLE_CANONICAL);
    expect(Buffer.byteLength(canonical)).toBe(146);
    expect(signMessage(key, 1, 'endpoint.upsert', EXAMPLE_PAYLOAD)).toBe(EXAMPLE_SIGNATURE);
    expect(verifyMessage(parsePublicKey(EXAMPLE_PUBLIC), 1, 'endpoint.upsert', EXAMPLE_PAYLOAD, EXAMPLE_SIGNATURE)).toBe(true);
    const doc = await readFile(new URL('../../docs/governance.md', import.meta.url), 'utf8');
    for (const fixed of [EXAMPLE_CANONICAL, EXAMPLE_SIGNATURE, EXAMPLE_PUBLIC, '21fe31dfa154a261626bf854046fd227', '146 bytes'])
      expect(doc).toContain(fixed);
  });
});

describe('canonical encoding edges', () => {
  it('escapes like JSON.stringify, writes -0 as 0, and refuses what is not JSON', () => {
    expect(canonicalJson({ b: [1, -0, 1e21, 0.1], a: 'q"\\\n\u0001\ud800' })).toBe('{"a":"q\\"\\\\\\n\\u0001\\ud800","b":[1,0,1e+21,0.1]}');
    expect(canonicalJson({ é: 1, z: 2, Z: 3, '': 4 })).toBe('{"":4,"Z":3,"z":2,"é":1}');
    for (const bad of [undefined, NaN, Infinity, 1n, () => 1, new Date(0), new Map(), { a: undefined }, [Symbol('x')]]) {
      expect(() => canonicalJson(bad)).toThrow(TypeError);
    }
  });
});

describe('keys', () => {
  it('takes PEM and base64 DER alike, derives the same id, refuses non-Ed25519 keys with a coded error', () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const pem = String(publicKey.export({ format: 'pem', type: 'spki' }));
    expect(trustedKey(pem)).toEqual(trustedKey(spkiBase64(publicKey)));
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'pem', type: 'spki' });
    for (const bad of [String(rsa), 'not a key', '']) {
      const err = (() => {
        try {
          return trustedKey(bad);
        } catch (e) {
          return e;
        }
      })();
      expect(isEthhookError(err, 'ETHHOOK_ERR_GOVERNANCE_KEY_INVALID')).toBe(true);
    }
  });

  it('a signature does not verify under another key, or when it is not 64 bytes', () => {
    const a = generateKeyPairSync('ed25519');
    const b = generateKeyPairSync('ed25519');
    const sig = signMessage(a.privateKey, 3, 'endpoint.pause', { id: 'ep_x' });
    expect(verifyMessage(a.publicKey, 3, 'endpoint.pause', { id: 'ep_x' }, sig)).toBe(true);
    expect(verifyMessage(b.publicKey, 3, 'endpoint.pause', { id: 'ep_x' }, sig)).toBe(false);
    expect(verifyMessage(a.publicKey, 3, 'endpoint.pause', { id: 'ep_x' }, sig.slice(4))).toBe(false);
  });
});

describe('frame parsing', () => {
  const k = { ...generateKeyPairSync('ed25519'), file: '', publicPem: '', publicDer: '' };
  const key = { ...k, keyId: keyIdOf(k.publicKey) };
  const frame = (over: Record<string, unknown>) => JSON.stringify({ ...signedFrame(key, 1, 'endpoint.pause', { id: 'ep_1' }), ...over });

  it('says why a frame is malformed, with the seq and keyId it claimed', () => {
    expect(parseGovernanceFrame('{')).toMatchObject({ ok: false, reason: 'not JSON' });
    expect(parseGovernanceFrame(frame({ extra: 1 }))).toMatchObject({ ok: false, seq: 1, keyId: key.keyId });
    expect(parseGovernanceFrame(frame({ type: 'endpoint.explode' }))).toMatchObject({ ok: false, reason: expect.stringMatching(/^type/) });
    expect(parseGovernanceFrame(frame({ payload: { id: 'ep_1', more: true } }))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^payload/),
    });
    expect(parseGovernanceFrame(frame({ seq: 0 }))).toMatchObject({ ok: false, seq: 0 });
    expect(parseGovernanceFrame(frame({ keyId: 'KEY' }))).toMatchObject({ ok: false, keyId: 'KEY' });
    expect(parseGovernanceFrame(frame({}))).toMatchObject({ ok: true, message: { seq: 1, parsed: { id: 'ep_1' } } });
  });

  it('a key.rotate must name the fingerprint of the key it adds, and not retire it', () => {
    const next = generateKeyPairSync('ed25519').publicKey;
    const add = { keyId: keyIdOf(next), publicKey: spkiBase64(next) };
    const rot = (payload: unknown) => parseGovernanceFrame(JSON.stringify(signedFrame(key, 2, 'key.rotate', payload)));
    expect(rot({ add })).toMatchObject({ ok: true, message: { parsed: { add, retire: [] } } });
    expect(rot({ add: { ...add, keyId: key.keyId } })).toMatchObject({ ok: false, reason: expect.stringMatching(/^payload\.add\.keyId/) });
    expect(rot({ add, retire: [add.keyId] })).toMatchObject({ ok: false, reason: expect.stringMatching(/^payload\.retire/) });
    expect(rot({ add: { ...add, publicKey: 'AAAA' } })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^payload\.add\.publicKey/),
    });
  });
});

describe('persisted state', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let db: Db;
  beforeAll(async () => {
    tmp = await tempDir();
    db = await openDb(tmp.dir);
  });
  afterAll(async () => {
    await db.close();
    await tmp.remove();
  });

  const fresh = () => trustedKey(spkiBase64(generateKeyPairSync('ed25519').publicKey));

  it('seeds from the configured keys once, keeps rotations, and re-seeds (keeping the height) when the configuration changes', async () => {
    await db.sublevel('governance').clear();
    const k1 = fresh();
    const k2 = fresh();
    const store = new GovernanceStateStore(new LevelKv(db));
    expect(await store.load([k1])).toEqual({ state: { height: 0, keys: [k1], genesis: [k1.keyId] }, reseeded: false });
    await store.commit({ height: 7, keys: rotate([k1], { add: k2, retire: [k1.keyId] }), genesis: [k1.keyId] });
    expect(await new GovernanceStateStore(new LevelKv(db)).load([k1])).toEqual({
      state: { height: 7, keys: [k2], genesis: [k1.keyId] },
      reseeded: false,
    });
    const k3 = fresh();
    expect(await new GovernanceStateStore(new LevelKv(db)).load([k3, k1])).toEqual({
      state: { height: 7, keys: [k3, k1], genesis: [k3.keyId, k1.keyId] },
      reseeded: true,
    });
    expect((await new GovernanceStateStore(new LevelKv(db)).load([k1, k3])).reseeded).toBe(false);
  });

  it('rotate keeps other keys, drops retired ones and never lists a key twice', () => {
    const [a, b, c] = [fresh(), fresh(), fresh()];
    expect(rotate([a, b], { add: c, retire: [] })).toEqual([a, b, c]);
    expect(rotate([a, b], { add: c, retire: [a.keyId] })).toEqual([b, c]);
    expect(rotate([a, c], { add: c, retire: [] })).toEqual([a, c]);
  });
});

describe('sequencer', () => {
  it('a height write that fails after the apply makes the message apply again (the applier is idempotent by seq)', async () => {
    const key = generateKeyPairSync('ed25519');
    const keyId = keyIdOf(key.publicKey);
    const apply = new MemoryApplier();
    let failWrites = 1;
    const heights: number[] = [];
    const needs: number[] = [];
    const sequencer = new GovernanceSequencer({
      store: {
        height: async () => 0,
        commit: async (state) => {
          if (state.height === 2 && failWrites-- > 0) throw new Error('disk full');
          heights.push(state.height);
        },
      },
      state: { height: 0, keys: [{ keyId, publicKey: spkiBase64(key.publicKey) }], genesis: [keyId] },
      apply,
      metrics: getGovernanceMetrics(new Registry()),
      log: createLogger({ level: 'silent' }),
      onNeed: (from) => needs.push(from),
    });
    const frame = (seq: number) => {
      const payload = { id: `ep_${seq}`, url: 'https://h.example/', description: '' };
      return JSON.stringify({
        seq,
        type: 'endpoint.upsert',
        payload,
        keyId,
        signature: signMessage(key.privateKey, seq, 'endpoint.upsert', payload),
      });
    };
    for (const seq of [1, 2, 2, 3]) await sequencer.handle(frame(seq));
    expect(apply.seqs).toEqual([1, 2, 2, 3]);
    expect(heights).toEqual([1, 2, 3]);
    expect(needs).toEqual([2]);
    expect(sequencer.height).toBe(3);
  });
});

describe('actor configuration', () => {
  it('refuses a bad public key naming its index, and a config without keys', async () => {
    const tmp = await tempDir();
    const db = await openDb(tmp.dir);
    try {
      const base = { kv: new LevelKv(db), apply: new MemoryApplier(), registry: new Registry() };
      const good = spkiBase64(generateKeyPairSync('ed25519').publicKey);
      const err = (fn: () => unknown) => {
        try {
          fn();
        } catch (e) {
          return e as { code: string; message: string };
        }
        throw new Error('did not throw');
      };
      const badKey = err(() =>
        createGovernanceStream({
          ...base,
          config: { url: 'ws://127.0.0.1:1', publicKeys: [good, 'nope'], reconnect: { minMs: 1, maxMs: 2 } },
        }),
      );
      expect(badKey.code).toBe('ETHHOOK_ERR_GOVERNANCE_KEY_INVALID');
      expect(badKey.message).toContain('governance.publicKeys[1]');
      const noKey = err(() =>
        createGovernanceStream({ ...base, config: { url: 'ws://127.0.0.1:1', publicKeys: [], reconnect: { minMs: 1, maxMs: 2 } } }),
      );
      expect(noKey.code).toBe('ETHHOOK_ERR_CONFIG_INVALID');
      const badUrl = err(() =>
        createGovernanceStream({ ...base, config: { url: 'http://127.0.0.1:1', publicKeys: [good], reconnect: { minMs: 1, maxMs: 2 } } }),
      );
      expect(badUrl.message).toContain('governance.url');
    } finally {
      await db.close();
      await tmp.remove();
    }
  });
});
