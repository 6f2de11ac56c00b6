/**
 * The faults a chaos scenario injects into one running node. A fault is one planned occurrence: its
 * `kind`, its parameters already drawn from the scenario's seeded RNG (so a seed gives the same plan),
 * `inject(ctx)` that breaks something (and resolves with what it observed), and, for the faults that
 * last, `heal(ctx)` that the runner calls `holdMs` after the injection. Every fault acts from outside
 * the node, as an operator, a network or a chain would: no hook in src/.
 *
 * | kind            | inject                                                  | heal                     |
 * | kill            | `kill -9` of the node process (in a cluster, of a random instance) | start it on the same data dir |
 * | net-cut         | the chain proxy drops every connection, refuses new ones | accept connections again |
 * | reorg           | `anvil_reorg` of depth 1..3, new branch with other logs (the orphaned logs kept) | — |
 * | receiver-fail   | the receiver fails a ratio of requests: 500 or a hang    | answer 200 again         |
 * | actor-restart   | POST /admin/actors/restart of a random pipeline actor    | —                        |
 * | actor-stop      | POST /admin/actors/stop of a random pipeline actor       | POST /admin/actors/start |
 * | flood           | stop the Matcher, then a burst of blocks full of logs, empty blocks and subscription changes into its mailbox (64) | start it, delete the flood's subscriptions |
 * | store-outage    | PostgreSQL stopped (fast shutdown: the node's connections cut) for 1..4 s; `--store postgres` only | start it on the same data |
 * | kill-holder     | `kill -9` of the instance ingesting the chain; cluster only | once another took the chain, start it on its id |
 * | pause           | SIGSTOP of the instance ingesting the chain, past its lease; cluster only | SIGCONT |
 * | resize          | one instance more; cluster only                          | SIGTERM of a random one (a drain), exit 0 |
 *
 * In a cluster the actor faults and the flood act on the instance ingesting the chain (the holder of
 * its lease), or any ready instance while none does; the heal of an actor stop or a flood goes to the
 * same process, and is moot once that process is gone (a new one starts every actor).
 *
 * A fault that cannot apply now (a reorg too close to the contract's deployment) throws `FaultSkipped`:
 * the runner records it as skipped, not as injected.
 */
import { tickCalldata } from '../src/dev-chain/contract.ts';
import { sendTicks, waitForReceipt } from '../src/dev-chain/tick-contract.ts';
import type { EndpointView, Page, SubscriptionAnswer } from '../test/support/admin-answers.ts';
import type { NodeProcess } from '../test/support/node-process.ts';
import { failRatio } from '../test/support/receiver.ts';
import { CHAIN_ID, sleep } from '../test/e2e/e2e-chain.ts';
import { alive, CHAOS_CLUSTER_TIMING, type ChaosInstance } from './cluster.ts';
import { CHAOS_ACTORS, type ChaosContext } from './context.ts';

export const FAULT_KINDS = [
  'kill',
  'net-cut',
  'reorg',
  'receiver-fail',
  'actor-restart',
  'actor-stop',
  'flood',
  'store-outage',
  'kill-holder',
  'pause',
  'resize',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface Fault {
  readonly kind: FaultKind;
  /** The occurrence's parameters, in words (known before it runs). */
  readonly plan: string;
  /** Time between inject and heal (0 for instant faults). */
  readonly holdMs: number;
  /** Breaks something; resolves with what it observed, for the timeline. */
  inject(ctx: ChaosContext): Promise<string>;
  heal?(ctx: ChaosContext): Promise<void>;
}

/** Draws one occurrence of a fault from the scenario's RNG. */
export type FaultFactory = (random: () => number) => Fault;

export class FaultSkipped extends Error {}

const between = (random: () => number, min: number, max: number): number => Math.round(min + random() * (max - min));
const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

/** How long a cluster fault waits for a ready instance holding the chain before it is skipped. */
const HOLDER_WAIT_MS = 15_000;
/** How long the heal of a holder's kill waits for another instance to take the chain: the lease, a few rounds, a margin. */
const TAKEOVER_WAIT_MS = CHAOS_CLUSTER_TIMING.leaseMs + 5 * CHAOS_CLUSTER_TIMING.heartbeatMs + 5_000;

/**
 * `kill -9` of the node (in a cluster, of an instance drawn among those up, running or starting), down
 * for 0..1.5 s, then started again on the same data dir and id. One kill in three is doubled: the
 * restarted node is killed again 100..600 ms after its spawn, while it opens its store or backfills,
 * and started once more.
 */
export const kill: FaultFactory = (random) => {
  const downMs = between(random, 0, 1_500);
  const againMs = random() < 1 / 3 ? between(random, 100, 600) : undefined;
  let victim: ChaosInstance | undefined;
  return {
    kind: 'kill',
    plan: `kill -9, down ${downMs} ms${againMs === undefined ? '' : `, again ${againMs} ms after the restart`}`,
    holdMs: downMs,
    async inject(ctx) {
      victim = await ctx.cluster.pick(ctx.random, { starting: true });
      if (!victim) throw new FaultSkipped('no instance up to kill');
      const starting = victim.node?.adminUrl === '';
      const node = await ctx.cluster.kill(victim);
      return `kill -9 ${ctx.cluster.label(victim)}pid ${node.pid} (${starting ? 'while starting' : 'running'}), down ${downMs} ms`;
    },
    async heal(ctx) {
      const instance = victim!;
      await ctx.cluster.start(instance);
      if (againMs === undefined) return;
      await sleep(againMs);
      // Another fault may have taken it down or away meanwhile: then there is nothing to kill again.
      if (instance.state !== 'up' || !alive(instance.node)) return;
      const starting = instance.node.adminUrl === '';
      const node = await ctx.cluster.kill(instance);
      ctx.injected(
        'kill',
        `kill -9 ${ctx.cluster.label(instance)}pid ${node.pid} again, ${againMs} ms after its spawn (${starting ? 'while starting' : 'running'})`,
      );
      await ctx.cluster.start(instance);
    },
  };
};

/**
 * `kill -9` of the instance ingesting the chain (its lease's holder, read from GET /v1/cluster). The
 * heal waits at least 0..2 s and until another instance holds the chain (at most TAKEOVER_WAIT_MS),
 * records that takeover and how long after the kill it came (`ctx.takeovers`), then starts the killed
 * instance again on its id.
 */
export const killHolder: FaultFactory = (random) => {
  const downMs = between(random, 0, 2_000);
  let victim: ChaosInstance | undefined;
  let killedAt = 0;
  return {
    kind: 'kill-holder',
    plan: `kill -9 of the instance ingesting the chain, down ${downMs} ms or until another took it`,
    holdMs: downMs,
    async inject(ctx) {
      const holder = await ctx.cluster.readyHolder(CHAIN_ID, HOLDER_WAIT_MS);
      if ('why' in holder)
        throw new FaultSkipped(`no ready instance held chain ${CHAIN_ID} within ${HOLDER_WAIT_MS} ms (last: ${holder.why})`);
      victim = holder.instance;
      const node = await ctx.cluster.kill(victim);
      killedAt = Date.now();
      return `kill -9 ${victim.id} pid ${node.pid}, ingesting chain ${CHAIN_ID} at epoch ${holder.epoch}`;
    },
    async heal(ctx) {
      const instance = victim!;
      const until = killedAt + TAKEOVER_WAIT_MS;
      let next: Awaited<ReturnType<typeof ctx.cluster.holder>>;
      while (Date.now() < until && !ctx.aborted) {
        next = await ctx.cluster.holder(CHAIN_ID).catch(() => undefined);
        if (next && next.instance !== instance) break;
        await sleep(100);
      }
      const ms = next && next.instance !== instance ? Date.now() - killedAt : null;
      ctx.takeovers.push(ms);
      ctx.record(
        'takeover',
        ms === null
          ? `no other instance took chain ${CHAIN_ID} within ${TAKEOVER_WAIT_MS} ms of ${instance.id}'s kill`
          : `${next!.instance.id} took chain ${CHAIN_ID} at epoch ${next!.epoch}, within ${ms} ms of ${instance.id}'s kill`,
      );
      await ctx.cluster.start(instance);
    },
  };
};

/**
 * SIGSTOP of the instance ingesting the chain for its lease, a heartbeat and 0.5..2 s more: frozen, it
 * still believes it holds the chain while another takes it. Then SIGCONT: fencing must keep it from
 * writing the chain, and it goes on as a follower. (Killed meanwhile by another fault, it is not
 * continued: its kill's heal starts it.)
 */
export const pause: FaultFactory = (random) => {
  const holdMs = CHAOS_CLUSTER_TIMING.leaseMs + CHAOS_CLUSTER_TIMING.heartbeatMs + between(random, 500, 2_000);
  let paused: { instance: ChaosInstance; node: NodeProcess } | undefined;
  return {
    kind: 'pause',
    plan: `SIGSTOP of the instance ingesting the chain for ${holdMs} ms, past its lease`,
    holdMs,
    async inject(ctx) {
      const holder = await ctx.cluster.readyHolder(CHAIN_ID, HOLDER_WAIT_MS);
      if ('why' in holder)
        throw new FaultSkipped(`no ready instance held chain ${CHAIN_ID} within ${HOLDER_WAIT_MS} ms (last: ${holder.why})`);
      paused = { instance: holder.instance, node: await ctx.cluster.pause(holder.instance) };
      return `SIGSTOP ${holder.instance.id} pid ${paused.node.pid}, ingesting chain ${CHAIN_ID} at epoch ${holder.epoch}; SIGCONT after ${holdMs} ms`;
    },
    async heal(ctx) {
      const { instance, node } = paused!;
      const now = await ctx.cluster.holder(CHAIN_ID).catch(() => undefined);
      const held = now ? `${now.instance.id} at epoch ${now.epoch}` : 'nobody';
      if (!(await ctx.cluster.resume(instance, node))) {
        ctx.record('pause', `${instance.id} was killed while stopped: nothing to continue; chain ${CHAIN_ID} held by ${held}`);
        return;
      }
      ctx.record('pause', `SIGCONT ${instance.id}; chain ${CHAIN_ID} held by ${held}`);
    },
  };
};

/**
 * The cluster grows by one instance (a new id; the fault waits until it runs), and 2..6 s later shrinks
 * by one: SIGTERM of an instance drawn among the ready ones (the holder of the chain, maybe), which
 * drains (its leases and claims released) and must exit 0. It is not started again.
 */
export const resize: FaultFactory = (random) => {
  const holdMs = between(random, 2_000, 6_000);
  return {
    kind: 'resize',
    plan: `one instance more, one less after ${holdMs} ms`,
    holdMs,
    async inject(ctx) {
      const added = await ctx.cluster.grow();
      return `grew to ${ctx.cluster.members().length} instances: ${added.id} (pid ${added.node!.pid}) runs; shrink in ${holdMs} ms`;
    },
    async heal(ctx) {
      const victim = await ctx.cluster.pick(ctx.random);
      if (!victim) throw new Error('no ready instance to shrink the cluster by');
      const holding = (await ctx.cluster.holder(CHAIN_ID).catch(() => undefined))?.instance === victim;
      const began = Date.now();
      const exit = await ctx.cluster.remove(victim);
      if (exit?.code !== 0) throw new Error(`${victim.id} exited ${exit === null ? 'before' : (exit.code ?? exit.signal)} on its SIGTERM`);
      ctx.record(
        'resize',
        `shrank to ${ctx.cluster.members().length} instances: SIGTERM of ${victim.id}${holding ? ' (ingesting the chain)' : ''}, exit 0 after ${Date.now() - began} ms`,
      );
    },
  };
};

/** Every chain connection of the node (WebSocket and HTTP polling) dropped, new ones refused, for 0.5..3 s. */
export const netCut: FaultFactory = (random) => {
  const holdMs = between(random, 500, 3_000);
  return {
    kind: 'net-cut',
    plan: `chain connections cut for ${holdMs} ms`,
    holdMs,
    async inject(ctx) {
      const open = ctx.proxy.open;
      ctx.proxy.refuse(true);
      ctx.proxy.cutAll();
      return `${open} chain connection(s) cut, new ones refused for ${holdMs} ms`;
    },
    async heal(ctx) {
      ctx.proxy.refuse(false);
    },
  };
};

/**
 * A reorg of depth 1..3 whose new branch holds one or two Tick transactions of 5..7 logs (never the
 * traffic's sizes, so no new block can equal an orphaned one). The logs of the blocks it replaces are
 * read just before and kept in `ctx.orphaned`: what the chain said of them, for the invariant.
 */
export const reorg: FaultFactory = (random) => {
  const depth = between(random, 1, 3);
  const sizes = [between(random, 5, 7), between(random, 5, 7)];
  return {
    kind: 'reorg',
    plan: `reorg depth ${depth}`,
    holdMs: 0,
    inject: (ctx) =>
      ctx.chainLock.run(async () => {
        const head = await ctx.chain.head();
        const d = Math.min(depth, head - ctx.deployBlock);
        if (d < 1) throw new FaultSkipped(`head ${head} is too close to the contract's block ${ctx.deployBlock}`);
        const orphaned = await ctx.contractLogs(head - d + 1);
        const tx = (n: number) => ({ from: ctx.chain.from, to: ctx.contract, data: tickCalldata(n) });
        const branch: Array<[ReturnType<typeof tx>, number]> = [[tx(sizes[0]!), 0]];
        if (d > 1) branch.push([tx(sizes[1]!), d - 1]);
        await ctx.chain.anvil.rpc('anvil_reorg', [d, branch]);
        ctx.orphaned.push(...orphaned);
        const logs = branch.reduce((sum, [t]) => sum + Number.parseInt(t.data, 16), 0);
        return `reorg depth ${d} at head ${head}: ${orphaned.length} logs orphaned, ${logs} on the new branch`;
      }),
  };
};

/** The receiver fails 30..100% of requests (half 500s, half hangs past the node's request timeout) for 2..5 s. */
export const receiverFail: FaultFactory = (random) => {
  const ratio = Math.round((0.3 + random() * 0.7) * 100) / 100;
  const holdMs = between(random, 2_000, 5_000);
  const seed = Math.floor(random() * 2 ** 31);
  return {
    kind: 'receiver-fail',
    plan: `receiver fails ${Math.round(ratio * 100)}% for ${holdMs} ms`,
    holdMs,
    async inject(ctx) {
      ctx.receiver.setBehaviour(failRatio(ratio, seed, [{ status: 500 }, { hang: true }], ctx.healthy));
      return `receiver fails ${Math.round(ratio * 100)}% of requests (500 or hang) for ${holdMs} ms`;
    },
    async heal(ctx) {
      ctx.receiver.setBehaviour(ctx.healthy);
    },
  };
};

/** An actor operation through the admin API; a 503 (the node still starting its tree) is asked again, any other non-200 is a failure to report. */
async function actorAction(
  ctx: ChaosContext,
  action: 'restart' | 'stop' | 'start',
  actor: string,
  target: ChaosInstance,
  deadlineMs = 30_000,
): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const res = await ctx.admin('POST', `/admin/actors/${action}`, { actor }, Math.max(1, until - Date.now()), target);
    if (res.status === 200) return;
    if (res.status !== 503 || Date.now() > until) throw new Error(`${action} ${actor} answered ${res.status}: ${JSON.stringify(res.body)}`);
    await sleep(100);
  }
}

/**
 * The instance an actor fault acts on, with its process then: the node; in a cluster, the instance
 * ingesting the chain, or any ready one while none does.
 */
async function actorTarget(ctx: ChaosContext): Promise<{ instance: ChaosInstance; node: NodeProcess | undefined }> {
  const found = ctx.cluster.isCluster ? await ctx.cluster.readyHolder(CHAIN_ID, 0) : undefined;
  const instance =
    (found && 'instance' in found ? found.instance : undefined) ??
    (await ctx.cluster.pick(ctx.random, { starting: true })) ??
    ctx.cluster.members()[0];
  if (!instance) throw new Error('no instance to act on');
  return { instance, node: instance.node };
}

/**
 * An actor fault's admin call on actorTarget's instance, 10 s per try. The fault is about the actor,
 * not the instance: when the call cannot reach that instance (a shrink removed it, other faults keep
 * killing it while it starts, or it is still starting: 503), it goes to the next target, three tries
 * (30 s) in all. Another answer than 200 or 503 fails the fault at once.
 */
async function onActorTarget(
  ctx: ChaosContext,
  call: (instance: ChaosInstance, deadlineMs: number) => Promise<void>,
): Promise<Awaited<ReturnType<typeof actorTarget>>> {
  for (let attempt = 1; ; attempt++) {
    const target = await actorTarget(ctx);
    try {
      await call(target.instance, 10_000);
      return target;
    } catch (err) {
      const unreached = target.instance.state === 'removed' || /did not get through|was removed|answered 503/.test((err as Error).message);
      if (!unreached || attempt >= 3) throw err;
    }
  }
}

/** Whether the heal of an actor fault still has its process to act on (a new process starts every actor). */
const sameProcess = (target: { instance: ChaosInstance; node: NodeProcess | undefined }): boolean =>
  target.instance.state !== 'removed' && target.instance.node === target.node && alive(target.node);

/** The admin API restarts a random pipeline actor (Deliverer, Matcher, the chain's listener). */
export const actorRestart: FaultFactory = (random) => {
  const actor = pick(random, CHAOS_ACTORS);
  return {
    kind: 'actor-restart',
    plan: `restart ${actor}`,
    holdMs: 0,
    async inject(ctx) {
      const { instance } = await onActorTarget(ctx, (on, ms) => actorAction(ctx, 'restart', actor, on, ms));
      return `${ctx.cluster.label(instance)}POST /admin/actors/restart ${actor}`;
    },
  };
};

/** The admin API stops a random pipeline actor for 0.5..3 s, then starts it. */
export const actorStop: FaultFactory = (random) => {
  const actor = pick(random, CHAOS_ACTORS);
  const holdMs = between(random, 500, 3_000);
  let target: Awaited<ReturnType<typeof actorTarget>> | undefined;
  return {
    kind: 'actor-stop',
    plan: `stop ${actor} for ${holdMs} ms`,
    holdMs,
    async inject(ctx) {
      target = await onActorTarget(ctx, (on, ms) => actorAction(ctx, 'stop', actor, on, ms));
      return `${ctx.cluster.label(target.instance)}POST /admin/actors/stop ${actor}, start after ${holdMs} ms`;
    },
    async heal(ctx) {
      if (sameProcess(target!)) await actorAction(ctx, 'start', actor, target!.instance);
    },
  };
};

/** An address no Tick contract has: the flood's subscriptions match nothing, so they change no expectation. */
const FLOOD_ADDRESS = `0x${'f1'.repeat(20)}`;

/**
 * A burst from outside, into a Matcher the admin API has stopped (a stopped actor's mailbox keeps
 * queuing, and the chaos config gives the Matcher a mailbox of 64): 10..20 transactions of 20..40
 * logs sent back to back (as many blocks) and 50..150 empty blocks, so the listener's block asks
 * queue and time out and are asked again, while 100..150 subscriptions are created concurrently
 * (each an ask to the Matcher, past its capacity: backpressure). The Matcher is started again after
 * 1..3 s, then the subscriptions are deleted (a second burst, to a running Matcher). The peak of
 * every actor's mailbox is read from /metrics every 50 ms. (Without the stop, the Matcher drains
 * faster than the admin API or the listener can fill it: the listener asks one block at a time and
 * the Deliverer pulls from the outbox, so no burst of the chain reaches a mailbox.)
 */
export const flood: FaultFactory = (random) => {
  const txs = between(random, 10, 20);
  const logsPerTx = between(random, 20, 40);
  const emptyBlocks = between(random, 50, 150);
  const changes = between(random, 100, 150);
  const holdMs = between(random, 1_000, 3_000);
  let peaks: MailboxSampler | undefined;
  let creations: Promise<number> = Promise.resolve(0);
  let target: Awaited<ReturnType<typeof actorTarget>> | undefined;
  return {
    kind: 'flood',
    plan: `matcher stopped ${holdMs} ms under ${txs} tx × ${logsPerTx} logs, ${emptyBlocks} empty blocks, ${changes} subscription changes`,
    holdMs,
    async inject(ctx) {
      target = await onActorTarget(ctx, (on, ms) => actorAction(ctx, 'stop', 'matcher', on, ms));
      const { instance } = target;
      peaks = sampleMailboxes(ctx, instance);
      const rpc = (method: string, params: unknown[]) => ctx.chain.anvil.rpc(method, params);
      const endpointId = await floodEndpoint(ctx);
      // The creations wait on the stopped Matcher (each ask up to its timeout): they finish during the hold.
      creations = Promise.allSettled(
        Array.from({ length: changes }, async () => {
          const res = await ctx.admin<SubscriptionAnswer>(
            'POST',
            '/v1/subscriptions',
            { endpointId, chainId: CHAIN_ID, addresses: [FLOOD_ADDRESS] },
            15_000,
            instance,
          );
          if (res.status === 201) ctx.floodSubscriptions.add(res.body.subscription.id);
          return res.status;
        }),
      ).then((all) => all.filter((c) => c.status === 'fulfilled' && c.value === 201).length);
      await ctx.chainLock.run(async () => {
        const hashes: string[] = [];
        for (let i = 0; i < txs; i++) hashes.push(await sendTicks(rpc, ctx.chain.from, ctx.contract, logsPerTx));
        await ctx.chain.anvil.mine(emptyBlocks);
        for (const h of hashes) await waitForReceipt(rpc, h);
      });
      return `${ctx.cluster.label(instance)}matcher stopped; ${txs} tx × ${logsPerTx} logs + ${emptyBlocks} empty blocks mined, ${changes} subscription creations sent; start in ${holdMs} ms`;
    },
    async heal(ctx) {
      if (sameProcess(target!)) await actorAction(ctx, 'start', 'matcher', target!.instance);
      const made = await creations;
      await Promise.allSettled(
        [...ctx.floodSubscriptions].map(async (id) => {
          const res = await ctx.admin('DELETE', `/v1/subscriptions/${id}`, undefined, 15_000);
          if (res.status === 200 || res.status === 404) ctx.floodSubscriptions.delete(id);
        }),
      );
      const seen = await peaks?.stop();
      const top = [...(seen ?? new Map<string, number>())].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
      ctx.record(
        'flood',
        `matcher started; ${made}/${changes} flood subscriptions created, then deleted; peak mailboxes: ${top.length === 0 ? 'all empty at every sample' : top.map(([a, n]) => `${a} ${n}`).join(', ')}`,
      );
    },
  };
};

/** The endpoint the flood's subscriptions hang on: the first endpoint of the node (any will do: they match nothing). */
async function floodEndpoint(ctx: ChaosContext): Promise<string> {
  const res = await ctx.admin<Partial<Page<EndpointView, string>> | undefined>('GET', '/v1/endpoints?limit=1');
  const id = res.body?.data?.[0]?.id;
  if (typeof id !== 'string') throw new Error(`no endpoint to hang flood subscriptions on: ${JSON.stringify(res.body)}`);
  return id;
}

export interface MailboxSampler {
  /** Stops sampling; the highest `actor_mailbox_size` seen per actor. */
  stop(): Promise<Map<string, number>>;
}

/** Reads every actor's `actor_mailbox_size` from the instance's /metrics every 50 ms (a scrape failing while it is down is skipped). */
export function sampleMailboxes(ctx: ChaosContext, instance: ChaosInstance): MailboxSampler {
  const peaks = new Map<string, number>();
  let on = true;
  const loop = (async () => {
    while (on && !ctx.aborted) {
      try {
        const node = instance.state === 'up' ? instance.node : undefined;
        const res = node ? await node.api<string>('GET', '/metrics') : { body: '' };
        for (const m of String(res.body).matchAll(/^actor_mailbox_size\{[^}]*\bactor="([^"]+)"[^}]*\} (\S+)/gm)) {
          peaks.set(m[1]!, Math.max(peaks.get(m[1]!) ?? 0, Number(m[2])));
        }
      } catch {
        // the node is down or starting: nothing to read now
      }
      await sleep(50);
    }
  })();
  return {
    async stop() {
      on = false;
      await loop;
      return peaks;
    },
  };
}

/**
 * The node's PostgreSQL (a run with `--store postgres`) stopped for 1..4 s: a fast shutdown, so every
 * connection of the node is cut, statements in flight fail and open transactions roll back; then
 * started again on the same data directory. The node must wait for it (its pool retries), not fail a
 * delivery, lose a block or exit.
 */
export const storeOutage: FaultFactory = (random) => {
  const holdMs = between(random, 1_000, 4_000);
  return {
    kind: 'store-outage',
    plan: `PostgreSQL stopped for ${holdMs} ms`,
    holdMs,
    async inject(ctx) {
      if (ctx.pg === undefined) throw new Error('store-outage needs a run on PostgreSQL (--store postgres)');
      await ctx.pg.stop();
      return `PostgreSQL stopped (fast shutdown), start after ${holdMs} ms`;
    },
    async heal(ctx) {
      await ctx.pg?.start();
    },
  };
};

export const FAULTS: Readonly<Record<FaultKind, FaultFactory>> = {
  kill,
  'net-cut': netCut,
  reorg,
  'receiver-fail': receiverFail,
  'actor-restart': actorRestart,
  'actor-stop': actorStop,
  flood,
  'store-outage': storeOutage,
  'kill-holder': killHolder,
  pause,
  resize,
};
