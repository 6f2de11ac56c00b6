/**
 * Helpers for governance tests: an in-memory GovernanceApplier that records every call, Ed25519 key
 * files in a temp dir, a forger of signed frames, a governance-stream worker spec, and metric reads.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import {
  createGovernanceStream,
  type ApplyMeta,
  type GovernanceApplier,
  type GovernanceStreamOptions,
} from '../../src/actors/governance/index.ts';
import { keyIdOf, signMessage, spkiBase64 } from '../../src/governance-protocol/keys.ts';
import type { GovernancePayload, GovernanceType } from '../../src/governance-protocol/protocol.ts';
import type { WorkerSpec } from '../../src/runtime/types.ts';

export interface AppliedCall {
  seq: number;
  type: GovernanceType;
  keyId: string;
  payload: unknown;
}

/** Applies to maps; every call is recorded in `calls` (so a test can prove exactly-once, in order). */
export class MemoryApplier implements GovernanceApplier {
  readonly calls: AppliedCall[] = [];
  readonly endpoints = new Map<string, GovernancePayload<'endpoint.upsert'> & { paused: boolean }>();
  readonly subscriptions = new Map<string, GovernancePayload<'subscription.upsert'>>();
  /** Calls to reject before applying anything again (simulates a store that fails). */
  failures = 0;

  private record(type: GovernanceType, payload: unknown, meta: ApplyMeta): void {
    if (this.failures > 0) {
      this.failures--;
      throw new Error(`simulated store failure at seq ${meta.seq}`);
    }
    this.calls.push({ seq: meta.seq, type, keyId: meta.keyId, payload });
  }

  get seqs(): number[] {
    return this.calls.map((c) => c.seq);
  }

  async endpointUpsert(p: GovernancePayload<'endpoint.upsert'>, meta: ApplyMeta): Promise<void> {
    this.record('endpoint.upsert', p, meta);
    this.endpoints.set(p.id, { ...p, paused: this.endpoints.get(p.id)?.paused ?? false });
  }
  async endpointDelete(p: GovernancePayload<'endpoint.delete'>, meta: ApplyMeta): Promise<void> {
    this.record('endpoint.delete', p, meta);
    this.endpoints.delete(p.id);
  }
  async endpointPause(p: GovernancePayload<'endpoint.pause'>, meta: ApplyMeta): Promise<void> {
    this.record('endpoint.pause', p, meta);
    const e = this.endpoints.get(p.id);
    if (e) e.paused = true;
  }
  async endpointResume(p: GovernancePayload<'endpoint.resume'>, meta: ApplyMeta): Promise<void> {
    this.record('endpoint.resume', p, meta);
    const e = this.endpoints.get(p.id);
    if (e) e.paused = false;
  }
  async subscriptionUpsert(p: GovernancePayload<'subscription.upsert'>, meta: ApplyMeta): Promise<void> {
    this.record('subscription.upsert', p, meta);
    this.subscriptions.set(p.id, p);
  }
  async subscriptionDelete(p: GovernancePayload<'subscription.delete'>, meta: ApplyMeta): Promise<void> {
    this.record('subscription.delete', p, meta);
    this.subscriptions.delete(p.id);
  }
}

export interface TestKey {
  file: string;
  keyId: string;
  privateKey: KeyObject;
  publicPem: string;
  publicDer: string;
}

export async function tempDir(prefix = 'ethhook-gov-'): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A fresh Ed25519 key pair, its private key written as PEM to `<dir>/<name>.pem`. */
export async function makeKey(dir: string, name: string): Promise<TestKey> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const file = join(dir, `${name}.pem`);
  await writeFile(file, privateKey.export({ format: 'pem', type: 'pkcs8' }));
  return {
    file,
    keyId: keyIdOf(publicKey),
    privateKey,
    publicPem: String(publicKey.export({ format: 'pem', type: 'spki' })),
    publicDer: spkiBase64(publicKey),
  };
}

/** A frame signed by `key` (any key: trusted, retired or foreign), under `keyId` (default: its own). */
export function signedFrame(key: TestKey, seq: number, type: GovernanceType, payload: unknown, keyId = key.keyId) {
  return { seq, type, payload, keyId, signature: signMessage(key.privateKey, seq, type, payload) };
}

export const endpointPayload = (n: number) => ({ id: `ep_${n}`, url: `https://hooks.example.com/${n}`, description: '' });

export function governanceWorker(
  options: Omit<GovernanceStreamOptions, 'config'> & { url: string; publicKeys: string[]; reconnect?: { minMs: number; maxMs: number } },
): WorkerSpec {
  const { url, publicKeys, reconnect = { minMs: 20, maxMs: 200 }, ...rest } = options;
  return {
    kind: 'worker',
    name: 'governance-stream',
    behaviour: () => createGovernanceStream({ ...rest, config: { url, publicKeys, reconnect } }),
  };
}

export async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) throw new Error(`metric ${name} is not registered`);
  const values = (await m.get()).values;
  return values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
}
