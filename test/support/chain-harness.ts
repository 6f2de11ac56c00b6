/**
 * Runs a ChainListener behaviour without the actor system (a hand-made ActorContext whose `lookup`
 * returns a collector that validates, records and acknowledges every `chain.block` and `chain.finality`
 * message), or builds
 * the pipeline tree with that collector in the matcher's place for the real ActorSystem.
 * Also: `netLogs` (a receiver's view: emits minus retractions) and `waitFor` (poll with a deadline).
 */
import type { LeaseGate } from '../../src/cluster/coordinator.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { expect } from 'vitest';
import { chainConfigSchema, createChainListener, type ChainConfigInput } from '../../src/actors/chain-listener/index.ts';
import { chainListenerName } from '../../src/tree.ts';
import {
  chainBlockMessageSchema,
  chainFinalityMessageSchema,
  type ChainBlockMessage,
  type ChainFinalityMessage,
  type ChainLog,
} from '../../src/actors/chain-listener/messages.ts';
import type { ActorContext, ActorRef, Behaviour, SupervisorSpec } from '../../src/runtime/types.ts';
import { openDb, type Db } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';

export const TARGET = '/pipeline/matcher';

export class Collector {
  readonly messages: ChainBlockMessage[] = [];
  /** The `chain.finality` messages (the chain's finality moved between blocks), apart from the blocks. */
  readonly finality: ChainFinalityMessage[] = [];
  /** Set to make the collector refuse (reply ok: false) until it is cleared. */
  refusing = false;
  ask = async (msg: unknown): Promise<{ ok: boolean }> => {
    if ((msg as { type?: unknown } | null)?.type === 'chain.finality') {
      const finality = chainFinalityMessageSchema.parse(msg);
      if (this.refusing) return { ok: false };
      this.finality.push(finality);
      return { ok: true };
    }
    const parsed = chainBlockMessageSchema.parse(msg);
    if (this.refusing) return { ok: false };
    this.messages.push(parsed);
    return { ok: true };
  };
  get emitted(): ChainBlockMessage[] {
    return this.messages.filter((m) => !m.removed);
  }
  get retracted(): ChainBlockMessage[] {
    return this.messages.filter((m) => m.removed);
  }
}

/** The receiver's net view: each retraction must undo the newest block still standing. */
export function netBlocks(messages: readonly ChainBlockMessage[]): ChainBlockMessage[] {
  const stack: ChainBlockMessage[] = [];
  for (const m of messages) {
    if (m.removed) {
      expect(stack[stack.length - 1]?.blockHash, `retraction of block ${m.blockNumber}`).toBe(m.blockHash);
      stack.pop();
    } else {
      const top = stack[stack.length - 1];
      if (top) {
        expect(m.blockNumber, 'blocks follow each other').toBe(top.blockNumber + 1);
        expect(m.parentHash).toBe(top.blockHash);
      }
      stack.push(m);
    }
  }
  return stack;
}

export const netLogs = (messages: readonly ChainBlockMessage[]): ChainLog[] => netBlocks(messages).flatMap((m) => m.logs);

/** `seq` (topic 2) of Tick logs, as numbers. */
export const seqs = (logs: readonly ChainLog[]): number[] => logs.map((l) => Number.parseInt(l.topics[2]!.slice(2), 16));

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function tempDb(): Promise<{ db: Db; dir: string; close(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'ethhook-chain-'));
  const db = await openDb(dir);
  return {
    db,
    dir,
    close: async () => {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export const testLogger = () => pino({ level: process.env.ETHHOOK_TEST_LOG ?? 'silent' });

export interface Harness {
  behaviour: Behaviour<unknown>;
  collector: Collector;
  registry: Registry;
  failures: unknown[];
  stop(): Promise<void>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

/** Builds the behaviour and runs its preStart with a hand-made context. */
export async function startHarness(opts: {
  chain: ChainConfigInput;
  db: Db;
  collector?: Collector;
  registry?: Registry;
}): Promise<Harness> {
  const collector = opts.collector ?? new Collector();
  const registry = opts.registry ?? new Registry();
  const failures: unknown[] = [];
  const chain = chainConfigSchema.parse(opts.chain);
  const behaviour = createChainListener({ chain, store: new LevelKv(opts.db), target: TARGET, registry }) as Behaviour<unknown>;
  const path = `/pipeline/chains/chain-listener:${chain.chainId}`;
  const collectorRef = { path: TARGET, name: 'matcher', ask: collector.ask } as unknown as ActorRef;
  const ctx: ActorContext<unknown> = {
    self: { path, name: `chain-listener:${chain.chainId}` } as ActorRef,
    path,
    name: `chain-listener:${chain.chainId}`,
    log: testLogger(),
    incarnation: 1,
    lookup: (p: string) => (p === TARGET ? collectorRef : undefined),
    fail: (err) => void failures.push(err),
    stopSelf: () => {},
  };
  await behaviour.preStart!(ctx);
  return {
    behaviour,
    collector,
    registry,
    failures,
    stop: async () => {
      await behaviour.postStop?.(ctx);
    },
    metric: async (name, labels = { chain: chain.name }) => {
      const m = registry.getSingleMetric(name);
      if (!m) return Number.NaN;
      const values = (await m.get()).values;
      const v = values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
      return v?.value ?? 0;
    },
  };
}

/**
 * The pipeline part of the node's tree with a collector in the matcher's place:
 * root → pipeline (rest-for-one) → [matcher (collector), chains (one-for-one) → [chain-listener:<id> ...]].
 */
export function chainTree(opts: {
  chains: ChainConfigInput[];
  db: Db;
  registry: Registry;
  collector: Collector;
  /** Each chain's lease gate (createChainListener's `lease`): absent, every listener ingests. */
  lease?: (chainId: number) => LeaseGate;
}): SupervisorSpec {
  const backoff = { minMs: 10, maxMs: 200, jitter: 0 };
  return {
    kind: 'supervisor',
    name: 'root',
    strategy: 'one-for-one',
    backoff,
    children: [
      {
        kind: 'supervisor',
        name: 'pipeline',
        strategy: 'rest-for-one',
        backoff,
        children: [
          { kind: 'worker', name: 'matcher', behaviour: () => ({ receive: (msg: unknown) => opts.collector.ask(msg) }) },
          {
            kind: 'supervisor',
            name: 'chains',
            strategy: 'one-for-one',
            backoff,
            children: opts.chains.map((input) => {
              const chain = chainConfigSchema.parse(input);
              return {
                kind: 'worker' as const,
                name: chainListenerName(chain.chainId),
                behaviour: () =>
                  createChainListener({
                    chain,
                    store: new LevelKv(opts.db),
                    target: TARGET,
                    registry: opts.registry,
                    ...(opts.lease ? { lease: opts.lease(chain.chainId) } : {}),
                  }),
              };
            }),
          },
        ],
      },
    ],
  };
}
