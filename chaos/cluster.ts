/**
 * The node processes of a chaos run, and the runner as their process manager: one node (the default),
 * or with `size` (`--cluster N`) a cluster of N instances on one PostgreSQL schema.
 *
 * - One node: instance `node`, the config's default `node.id`, one data dir (its master key in it),
 *   no `cluster` section: exactly the single node the single-node faults were written for.
 * - A cluster: instances `n1`..`nN`, each with a dir of its own (its config file) and `node.id` =
 *   its name, every one with the same store and the same `ETHHOOK_MASTER_KEY` (a secret one instance
 *   sealed, another opens), `cluster: CHAOS_CLUSTER_TIMING` (short leases, so a takeover fits a short
 *   run). `grow()` starts one more (`n<N+1>`, ...); `remove(i)` is the SIGTERM of a shrink (drain).
 *
 * An instance is `up` (its process meant to run; `ready(i)` once it logged `node running`), `down` (a
 * fault killed it; the fault starts it again), `paused` (SIGSTOP; `resume` is SIGCONT) or `removed`
 * (shrunk away for good). Operations on one instance are serialized (its own Serial), so two processes
 * never share an instance. A process that exits when nobody asked (not killed, terminated or stopped by
 * the runner) is recorded in `unexpectedExits` (a crash, or a start that timed out) and, while its
 * instance is meant to run, started again 200 ms later; the run fails on any such exit.
 *
 * `admin(...)` is an admin API call that survives churn: on `target`, or on the ready instances in turn,
 * it waits for a ready one and retries on connection errors (a process killed mid-request) until
 * `deadlineMs`; a request to an instance paused meanwhile waits for its SIGCONT or its kill.
 * `holder(chainId)` reads the chain's lease from GET /v1/cluster (an unexpired holder, or undefined).
 * `stop()` sends SIGTERM to every instance (SIGCONT first to a paused one; SIGKILL after 15 s) and
 * resolves with how each exited; `exit` folds them: the first that is not code 0, else code 0.
 */
import { randomBytes } from 'node:crypto';
import type { ClusterStatus } from '../src/cluster/coordinator.ts';
import { Serial } from '../src/runtime/serial.ts';
import { createNodeDir, spawnNodeProcess, type ApiAnswer, type NodeDir, type NodeProcess } from '../test/support/node-process.ts';
import { sleep } from '../test/e2e/e2e-chain.ts';

/** Lease timing of a chaos cluster: a chain changes hands within about 4 s, so a short run sees takeovers. */
export const CHAOS_CLUSTER_TIMING = { leaseMs: 3_000, heartbeatMs: 1_000 } as const;
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

export type InstanceState = 'up' | 'down' | 'paused' | 'removed';

export class ChaosInstance {
  /** The newest process; undefined before the first start. */
  node: NodeProcess | undefined;
  state: InstanceState = 'up';
  readonly lock = new Serial();

  constructor(
    readonly id: string,
    readonly dir: NodeDir,
  ) {}
}

export interface UnexpectedExit {
  t: number;
  /** The instance's name. */
  id: string;
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  lastErrors: string[];
}

/** How the node stopped at the end of the run: `null` when no node was running to stop. */
export type FinalExit = { code: number | null; signal: NodeJS.Signals | null } | null;

export interface ChaosClusterOptions {
  /** Instances of a cluster; undefined for one node. */
  size: number | undefined;
  /** The config of instance `id` (its `node.id` when in a cluster). */
  config(id: string | undefined): Record<string, unknown>;
  record(kind: string, detail: string): void;
  now(): number;
  signal?: AbortSignal;
}

export const alive = (node: NodeProcess | undefined): node is NodeProcess =>
  node !== undefined && node.child.exitCode === null && node.child.signalCode === null;

export class ChaosCluster {
  /** Every instance the run had, removed ones included, in order of creation. */
  readonly instances: ChaosInstance[] = [];
  /** Every process of the run, oldest first. */
  readonly processes: NodeProcess[] = [];
  readonly unexpectedExits: UnexpectedExit[] = [];
  /** How each instance exited on the final SIGTERM, by name (filled by `stop()`). */
  readonly finalExits = new Map<string, FinalExit>();
  private readonly meant = new WeakSet<NodeProcess>();
  private readonly masterKey = randomBytes(32).toString('hex');
  private stopping = false;
  private turn = 0;

  constructor(private readonly options: ChaosClusterOptions) {}

  get isCluster(): boolean {
    return this.options.size !== undefined;
  }

  /** `"n2 "` in a cluster, nothing for one node: the prefix of a timeline entry about an instance. */
  label(instance: ChaosInstance): string {
    return this.isCluster ? `${instance.id} ` : '';
  }

  /** Instances that are not removed. */
  members(): ChaosInstance[] {
    return this.instances.filter((i) => i.state !== 'removed');
  }

  /** Instances up and answering (their process logged `node running`). */
  ready(): ChaosInstance[] {
    return this.instances.filter((i) => i.state === 'up' && alive(i.node) && i.node.adminUrl !== '');
  }

  /** Creates the run's first instances and starts them; resolves once every one runs. */
  async create(): Promise<void> {
    for (let n = 0; n < (this.options.size ?? 1); n++) await this.grow(false);
    await Promise.all(this.instances.map((i) => i.node!.running));
  }

  /**
   * A new instance, started; with `wait`, resolves once it runs (a kill while it starts is another
   * fault's, whose heal starts it again: it is waited for too, up to the start timeout).
   */
  async grow(wait = true): Promise<ChaosInstance> {
    const id = this.isCluster ? `n${this.instances.length + 1}` : 'node';
    const instance = new ChaosInstance(id, await createNodeDir());
    this.instances.push(instance);
    await this.start(instance);
    const until = Date.now() + START_TIMEOUT_MS;
    while (wait && !this.ready().includes(instance)) {
      if (Date.now() > until || this.aborted || instance.state === 'removed')
        throw new Error(`${id} did not run within ${START_TIMEOUT_MS} ms (${instance.state})`);
      await sleep(100);
    }
    return instance;
  }

  /** Starts the instance's process unless one is alive; marks it up. Does not wait for it to run. */
  start(instance: ChaosInstance): Promise<NodeProcess> {
    return instance.lock.run(async () => {
      if (instance.state === 'removed') throw new Error(`${instance.id} was removed`);
      instance.state = 'up';
      if (alive(instance.node) || this.stopping || this.aborted) return instance.node!;
      const node = await spawnNodeProcess({
        dir: instance.dir,
        config: this.options.config(this.isCluster ? instance.id : undefined),
        ...(this.isCluster ? { env: { ETHHOOK_MASTER_KEY: this.masterKey } } : {}),
        startTimeoutMs: START_TIMEOUT_MS,
      });
      instance.node = node;
      this.processes.push(node);
      node.child.once('exit', (code, signal) => this.onExit(instance, node, code, signal));
      return node;
    });
  }

  /** `kill -9` of the instance's process (paused or not); resolves once it is gone, the instance down. */
  kill(instance: ChaosInstance): Promise<NodeProcess> {
    return instance.lock.run(async () => {
      const node = instance.node!;
      this.meant.add(node);
      instance.state = 'down';
      node.kill('SIGKILL');
      await node.waitForExit(10_000);
      return node;
    });
  }

  /** SIGSTOP: the process freezes, its connections stay open and silent. Resolves with the frozen process. */
  pause(instance: ChaosInstance): Promise<NodeProcess> {
    return instance.lock.run(async () => {
      const node = instance.node!;
      instance.state = 'paused';
      node.kill('SIGSTOP');
      return node;
    });
  }

  /** SIGCONT of `node` if it is still the instance's process and paused; false when something else ended the pause. */
  resume(instance: ChaosInstance, node: NodeProcess): Promise<boolean> {
    return instance.lock.run(async () => {
      if (instance.node !== node || instance.state !== 'paused') return false;
      node.kill('SIGCONT');
      instance.state = 'up';
      return true;
    });
  }

  /** SIGTERM (a drain), the instance removed for good; resolves with its exit (SIGKILL after 15 s). */
  remove(instance: ChaosInstance): Promise<FinalExit> {
    return instance.lock.run(async () => {
      instance.state = 'removed';
      return this.terminate(instance.node);
    });
  }

  /**
   * An instance drawn with `random` among those ready (or, with `starting`, up with a live process,
   * running or still starting), waiting up to `waitMs` for one; undefined when none came.
   */
  async pick(random: () => number, { waitMs = 10_000, starting = false } = {}): Promise<ChaosInstance | undefined> {
    const until = Date.now() + waitMs;
    for (;;) {
      const ready = starting ? this.instances.filter((i) => i.state === 'up' && alive(i.node)) : this.ready();
      if (ready.length > 0) return ready[Math.floor(random() * ready.length)];
      if (Date.now() >= until || this.aborted) return undefined;
      await sleep(100);
    }
  }

  /** The chain's lease as GET /v1/cluster gives it now: its holder (an instance of the run) and epoch, unless free or expired. */
  async holder(chainId: number, deadlineMs = 30_000): Promise<{ instance: ChaosInstance; epoch: number } | undefined> {
    const res = await this.admin<{ cluster?: ClusterStatus }>('GET', '/v1/cluster', undefined, deadlineMs);
    if (res.status !== 200) throw new Error(`GET /v1/cluster answered ${res.status}: ${JSON.stringify(res.body).slice(0, 200)}`);
    const lease = res.body.cluster?.leases.find((l) => l.name === `chain:${chainId}`);
    if (!lease || lease.holder === null || Date.parse(lease.expiresAt) <= Date.now()) return undefined;
    const instance = this.instances.find((i) => i.id === lease.holder);
    return instance ? { instance, epoch: lease.epoch } : undefined;
  }

  /**
   * The chain's holder once it is a ready instance (waiting up to `waitMs`); otherwise what was seen
   * last (`why`), for the timeline.
   */
  async readyHolder(chainId: number, waitMs: number): Promise<{ instance: ChaosInstance; epoch: number } | { why: string }> {
    const until = Date.now() + waitMs;
    for (;;) {
      let why: string;
      try {
        const found = await this.holder(chainId, Math.max(1_000, until - Date.now()));
        if (found && this.ready().includes(found.instance)) return found;
        why = found ? `held by ${found.instance.id}, ${found.instance.state}` : 'free or expired';
      } catch (err) {
        why = (err as Error).message;
      }
      if (Date.now() >= until || this.aborted) return { why };
      await sleep(200);
    }
  }

  /** An admin API call on `target`, or on the ready instances in turn, retried across churn until `deadlineMs`. */
  async admin<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    deadlineMs = 30_000,
    target?: ChaosInstance,
  ): Promise<ApiAnswer<T>> {
    const until = Date.now() + deadlineMs;
    let last: unknown;
    while (Date.now() < until && !this.aborted) {
      const ready = this.ready();
      const instance = target ?? ready[this.turn++ % Math.max(1, ready.length)];
      if (instance?.state === 'removed') throw new Error(`${instance.id} was removed`);
      const node = instance?.node;
      if (instance?.state !== 'up' || node === undefined) {
        await sleep(100);
        continue;
      }
      try {
        await withTimeout(node.running, Math.max(1, until - Date.now()));
        return await withTimeout(node.api<T>(method, path, body), Math.max(1, until - Date.now()));
      } catch (err) {
        last = err;
        await sleep(100);
      }
    }
    throw new Error(
      `chaos: ${method} ${path} did not get through within ${deadlineMs} ms: ${(last as Error | undefined)?.message ?? 'no instance ready'}`,
    );
  }

  /** SIGTERM to every instance at once (after SIGCONT to a paused one); fills `finalExits`; resolves with the folded exit. */
  async stop(): Promise<FinalExit> {
    this.stopping = true;
    await Promise.all(
      this.members().map(async (instance) => {
        if (!alive(instance.node)) return;
        if (instance.state === 'paused') instance.node.kill('SIGCONT');
        this.finalExits.set(instance.id, await this.terminate(instance.node));
      }),
    );
    for (const n of this.processes) if (alive(n)) n.kill('SIGKILL');
    for (const i of this.instances) await i.dir.remove().catch(() => undefined);
    const exits = [...this.finalExits.values()];
    if (exits.length === 0) return null;
    return exits.find((e) => e?.code !== 0) ?? { code: 0, signal: null };
  }

  private get aborted(): boolean {
    return this.options.signal?.aborted ?? false;
  }

  private async terminate(node: NodeProcess | undefined): Promise<FinalExit> {
    if (!alive(node)) return null;
    this.meant.add(node);
    node.kill('SIGTERM');
    try {
      return await node.waitForExit(STOP_TIMEOUT_MS);
    } catch {
      node.kill('SIGKILL');
      return node.waitForExit(5_000).catch(() => ({ code: null, signal: 'SIGKILL' as const }));
    }
  }

  private onExit(instance: ChaosInstance, node: NodeProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.meant.has(node) || this.stopping || this.aborted) return;
    const lastErrors = node.logs
      .filter((l) => (l.level ?? 0) >= 50)
      .slice(-3)
      .map((l) => `${String(l.code ?? '')} ${String(l.msg ?? '')}`.trim());
    this.unexpectedExits.push({ t: this.options.now(), id: instance.id, pid: node.pid, code, signal, lastErrors });
    this.options.record(
      'node-exit',
      `${this.label(instance)}pid ${node.pid} exited by itself (${code ?? signal}); restarted as a process manager would`,
    );
    if (instance.node !== node || instance.state === 'removed' || instance.state === 'down') return;
    setTimeout(() => void this.start(instance).catch(() => undefined), 200);
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
