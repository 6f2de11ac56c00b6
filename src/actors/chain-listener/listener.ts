/**
 * ChainListener: the connection side of one chain's ingestion. It runs one ProviderSession per
 * configured provider (provider.ts: each follows its provider's head), chooses the provider to read
 * from (provider-pool.ts), and feeds that provider's heads to the ChainFollower (follower.ts), which
 * decides what to emit.
 *
 * - The active provider is the healthy one of the highest weight. After each sync round, on every head
 *   and on every change of a session, the choice is made again; a new choice aborts the sync round
 *   under way (reads from the provider left stop at once; a block it was emitting is emitted again
 *   from the new provider: at least once), is logged, counted in `chain_provider_failovers_total{reason}`
 *   for the provider left, and gives the new provider's latest head to the follower (a lower head, or
 *   one on another fork, is checked as any suspicious head is).
 * - A read that fails because of the provider (a transport or node error, an inconsistent, incomplete
 *   or contradicted answer; a chain moving under one range read is forgiven once) holds the active
 *   provider off for `failbackAfterMs`, and the next round reads from another provider at once when an
 *   unheld one is usable; otherwise (and after any other error) the next round waits a backoff. Nothing
 *   read from a failed round is emitted.
 * - A provider that claims a head it does not serve (SHORT_ROUNDS rounds in a row that end because it
 *   does not have a block below its own confirmed head, without progress) is held off likewise when
 *   another provider can serve. Rounds that end waiting for a quorum or the other providers do not count.
 * - With several providers, reads go through PoolSource (pool-source.ts): quorum ceiling, confirmation
 *   of what is emitted, corroboration of reorgs by the other providers.
 * - Each provider's session first checks that it serves the configured chain (`eth_chainId`) and the
 *   chain the cursor was built on (hash of block 0, persisted at the first verification). A provider
 *   that does not is left out for good (logged, `chain_provider_errors_total{kind="mismatch"}`); when
 *   every provider is left out, the listener stops with ETHHOOK_ERR_CHAIN_MISMATCH.
 * - A chain without a persisted position gets one at the first session, before anything else: the
 *   configured `startBlock`, or for `latest` (and after a reset to `latest`) the confirmed head seen
 *   then: with several providers, once each had its first session (up or failed), the lowest head of
 *   those up (more blocks, never fewer: a provider claiming a far head cannot move the start past
 *   blocks it does not have). Only then does it report `onReady` (the node's /ready waits for it), so
 *   no block after /ready can be skipped. `chain_up` is 1 while a provider is read from; `chain_ws_connected` while
 *   that provider's session is a WebSocket.
 * - ETHHOOK_ERR_REORG_TOO_DEEP, ETHHOOK_ERR_CHAIN_MISMATCH and ETHHOOK_ERR_CURSOR_CORRUPT are fatal: logged at fatal level, reported
 *   through `onFatal`, and the listener stops.
 * - Every problem is counted in `chain_rpc_errors_total{kind}` and `chain_provider_errors_total` and
 *   logged with its context (at most LOG_BURST lines per provider and kind every 10 s, so a hostile
 *   node cannot flood the logs). A callback that throws (a bug) stops the listener as a fatal error
 *   (`onFatal`: the supervisor restarts it).
 *
 * - In `follow` mode (another instance holds the chain's lease, src/cluster/coordinator.ts) the same
 *   sessions follow the heads and choose the active provider, whose head sets `chain_height`, so every
 *   instance's height compares with the others'; nothing is read beyond heads, nothing emitted and
 *   nothing written (block 0's hash is checked against the stored one, not stored). Every
 *   `heartbeatMs` the stored position is read for `chain_processed_height` and `chain_lag_blocks`: the
 *   ingesting instance's progress. `onReady` once a provider serves the chain.
 *
 * - The chain's `safe` and `finalized` blocks are polled from the active provider every `finalityPollMs`,
 *   in both modes (finality.ts: each answer is checked before it is trusted); every block emitted carries
 *   the heights trusted at that moment (`finality`), for the Matcher's jobs waiting for them. In ingest
 *   mode, a poll whose heights are above those the last acknowledged block (or finality message)
 *   carried sends them on their own (`tellFinality`, a `chain.finality` message anchored on a trusted
 *   block at or below the processed height, finality.ts `proof`; one at a time, tried again after the
 *   next poll until acknowledged), so a chain that stops making blocks still releases what became final.
 *
 * Memory: per provider a session (one connection, its last head, a throttle), a few numbers per
 * provider and kind for the log limit and the last height a disagreement was counted at; providers are
 * at most MAX_PROVIDERS (config/chain.ts).
 */
import type { Logger } from '../../runtime/log.ts';
import { EthhookError, describeError, isEthhookError } from '../../runtime/errors.ts';
import type { CursorStore } from '../../store/cursors.ts';
import { Wakeup } from '../../runtime/timers.ts';
import { backoffDelay, sleep } from './backoff.ts';
import type { ChainConfig } from '../../config/chain.ts';
import { FinalityPoller, type FinalityAnchor, type FinalityHeights, type FinalityProof } from './finality.ts';
import { readHistory } from './history.ts';
import { ChainFollower, type EmittedBlock } from './follower.ts';
import type { ChainBlockMessage, ChainLog, ChainStatus, HistoryRead, ProviderStatus } from './messages.ts';
import type { ChainMetrics, FailoverReason, RpcErrorKind } from './metrics.ts';
import { PoolSource } from './pool-source.ts';
import { assess, choose, failoverReason, quorumHeight, referenceHead, type Assessment, type ProviderView } from './provider-pool.ts';
import { ProviderSession, classify } from './provider.ts';
import type { LogFilter, RpcChainSource } from './rpc-source.ts';
import { nowMs } from './ws-rpc.ts';

export interface ChainListenerDeps {
  config: ChainConfig;
  cursors: CursorStore<EmittedBlock, ChainLog>;
  metrics: ChainMetrics;
  log: Logger;
  /** Delivers one message downstream; resolves once acknowledged (retrying meanwhile): true when the receiver wrote its `cursor` ops. */
  emit(msg: ChainBlockMessage, signal: AbortSignal): Promise<boolean>;
  /** Tells the receiver the chain's finality moved (see the header); resolves with whether it acknowledged. */
  tellFinality?(heights: FinalityHeights, anchor: FinalityAnchor, signal: AbortSignal): Promise<boolean>;
  onFatal(error: EthhookError): void;
  /** A provider was reached, the chain verified and the start block pinned (at every session). */
  onReady?(): void;
  /**
   * `ingest` (default): follow the chain from the cursor and emit its blocks. `follow`: another instance
   * of the cluster ingests the chain; only the heads are followed (see the header).
   */
  mode?: 'ingest' | 'follow';
}

const LOG_BURST = 20;
const LOG_PERIOD_MS = 10_000;
/** Sync rounds in a row that end below the active provider's confirmed head without progress before it is held off. */
const SHORT_ROUNDS = 3;
/** Pause after a short round, so that a provider whose head runs ahead of its blocks by a moment is not asked in a loop. */
const SHORT_ROUND_PAUSE_MS = 250;

export class ChainListener {
  private readonly abort = new AbortController();
  private readonly wakeup = new Wakeup(this.abort.signal);
  private readonly label: { chain: string };
  /** Head seen and processed height, for `chain_lag_blocks` (undefined until known). */
  private readonly heights: { head?: number; processed?: number } = {};
  /** The chain's `safe` and `finalized` blocks, polled from the active provider; they ride on every block emitted. */
  private readonly finality: FinalityPoller;
  /** The heights the receiver acknowledged last (on a block or a finality message), and whether a finality message is on its way. */
  private told: FinalityHeights = {};
  private telling = false;
  private readonly sessions: ProviderSession[];
  private follower: ChainFollower | null = null;
  private running: Promise<void> | null = null;
  private active: ProviderSession | null = null;
  private connected = false;
  private pinned = false;
  private fatal: EthhookError | null = null;
  private readonly logWindow = new Map<string, { start: number; count: number }>();
  /** Aborts the sync round under way (a switch of provider, or stop). */
  private round: AbortController | null = null;
  /** The height at which a disagreement was last counted, per provider. */
  private readonly disagreedAt = new Map<string, number>();
  /** Verifications run one at a time, so that the first provider's block 0 is the one persisted. */
  private verifying: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: ChainListenerDeps) {
    this.label = { chain: deps.config.name };
    this.sessions = deps.config.providers.map(
      (provider, index) =>
        new ProviderSession({
          provider,
          index,
          chain: deps.config,
          metrics: deps.metrics,
          log: deps.log,
          signal: this.abort.signal,
          verify: (source) => this.verifyChain(source),
          onHead: (session, head) => {
            if (session === this.active) {
              this.follower?.noteHead(head.header, head.seenAt);
              if (this.following) this.noteHead(head.header.number);
            }
            this.reconsider();
          },
          onChange: () => this.reconsider(),
          problem: (session, kind, err) => this.problem(kind, err, session),
          onCallbackError: (err) => this.crash(err),
        }),
    );
    this.finality = new FinalityPoller({
      chain: deps.config.name,
      intervalMs: deps.config.finalityPollMs,
      active: () => this.active,
      head: () => this.active?.head?.header.number ?? this.heights.head,
      metrics: deps.metrics,
      log: deps.log,
      signal: this.abort.signal,
      polled: (proof) => this.tellFinality(proof),
    });
  }

  private get following(): boolean {
    return this.deps.mode === 'follow';
  }

  /** Loads the cursor and starts following the chain in the background. */
  async start(): Promise<void> {
    if (this.following) return this.startFollowing();
    const { config, cursors, metrics } = this.deps;
    const persisted = await cursors.load(config.chainId, config.maxReorgDepth + 1);
    this.pinned = persisted !== null;
    const startBlock = persisted ? config.startBlock : ((await cursors.pendingStart(config.chainId)) ?? config.startBlock);
    this.follower = new ChainFollower(
      {
        chainId: config.chainId,
        confirmations: config.confirmations,
        maxReorgDepth: config.maxReorgDepth,
        backfillRange: config.backfillRange,
        targetLogsPerRead: config.targetLogsPerRead,
        startBlock,
        emit: async (msg, signal) => {
          const finality = this.finality.heights();
          const persisted = await this.deps.emit({ ...msg, finality }, signal);
          // A retraction releases nothing in the Matcher: only a block's heights count as told.
          if (!msg.removed) this.noteTold(finality);
          if (!msg.removed && msg.logs.length > 0) metrics.eventsReceived.inc(this.label, msg.logs.length);
          return persisted;
        },
        persist: {
          append: (block, logs, floor, keep) => cursors.append(config.chainId, block, logs, floor, keep),
          retract: (n, floor) => cursors.retract(config.chainId, n, floor),
          appendOps: (block, logs, floor, keep) => cursors.appendOps(config.chainId, block, logs, floor, keep),
          retractOps: (n, floor) => cursors.retractOps(config.chainId, n, floor),
          write: (ops) => cursors.write(ops),
          logs: (n) => cursors.logs(config.chainId, n),
        },
        onHead: (head) => this.noteHead(head),
        onProcessed: (n) => this.noteProcessed(n),
        onReorg: (depth) => {
          metrics.reorgs.inc(this.label);
          metrics.reorgDepth.observe(this.label, depth);
          this.deps.log.warn(
            { depth, processed: this.follower?.processed, provider: this.active?.name },
            'chain reorg: orphaned blocks retracted',
          );
        },
        onProblem: (kind, err) => this.problem(kind, err, this.active),
        now: nowMs,
      },
      persisted,
    );
    if (persisted) {
      metrics.processedHeight.set(this.label, persisted.next - 1);
      this.heights.processed = persisted.next - 1;
    }
    metrics.wsConnected.set(this.label, 0);
    metrics.up.set(this.label, 0);
    this.deps.log.info(
      {
        next: persisted?.next ?? startBlock,
        confirmations: config.confirmations,
        providers: config.providers.map((p) => p.name),
        quorum: config.quorum,
      },
      'chain listener starting',
    );
    for (const session of this.sessions) session.start();
    this.finality.start();
    this.running = this.run();
  }

  /** Follow mode's start: the sessions only, and the loop of `watch`. */
  private async startFollowing(): Promise<void> {
    const { metrics, config } = this.deps;
    metrics.wsConnected.set(this.label, 0);
    metrics.up.set(this.label, 0);
    this.deps.log.info({ providers: config.providers.map((p) => p.name) }, 'chain listener following heads (another instance ingests)');
    for (const session of this.sessions) session.start();
    this.finality.start();
    this.running = this.watch();
  }

  /** A poll's heights, sent on their own when they moved past what the receiver was told (see the header). */
  private tellFinality(proofOf: (atMost: number) => FinalityProof | undefined): void {
    const processed = this.heights.processed;
    if (this.following || !this.deps.tellFinality || processed === undefined || this.telling) return;
    const proof = proofOf(processed);
    if (!proof || !beyond(proof.heights, this.told)) return;
    const { heights, anchor } = proof;
    this.telling = true;
    this.deps
      .tellFinality(heights, anchor, this.signal)
      .then((acknowledged) => {
        if (acknowledged) this.noteTold(heights);
      })
      .catch((err: unknown) => {
        if (!this.signal.aborted) this.deps.log.warn({ err: describeError(err) }, 'telling the chain finality failed');
      })
      .finally(() => {
        this.telling = false;
      });
  }

  private noteTold(heights: FinalityHeights): void {
    const higher = (a: number | undefined, b: number | undefined) => (a === undefined ? b : b === undefined ? a : Math.max(a, b));
    const safe = higher(this.told.safe, heights.safe);
    const finalized = higher(this.told.finalized, heights.finalized);
    this.told = { ...(safe === undefined ? {} : { safe }), ...(finalized === undefined ? {} : { finalized }) };
  }

  private noteHead(head: number): void {
    const { metrics } = this.deps;
    metrics.height.set(this.label, head);
    this.heights.head = head;
    metrics.lag.set(this.label, lagOf(this.heights));
  }

  private noteProcessed(n: number): void {
    this.deps.metrics.processedHeight.set(this.label, n);
    this.heights.processed = n;
    this.deps.metrics.lag.set(this.label, lagOf(this.heights));
  }

  /** Follow mode's loop: choose the active provider, report ready, read the stored position. */
  private async watch(): Promise<void> {
    const { config, cursors } = this.deps;
    try {
      while (!this.signal.aborted) {
        if (this.sessions.every((s) => s.mismatch)) return this.die(this.sessions[0]!.mismatch!);
        const active = this.pick(Date.now());
        if (active !== this.active) this.setActive(active, this.active ? this.reasonToLeave(this.active) : 'down');
        this.setConnected(active !== null);
        if (active) {
          if (active.head) this.noteHead(active.head.header.number);
          this.deps.onReady?.();
        }
        try {
          const position = await cursors.position(config.chainId);
          if (position && position.next > 0) this.noteProcessed(position.next - 1);
        } catch (err) {
          this.deps.log.warn({ err: describeError(err) }, 'reading the chain position failed');
        }
        await this.wakeup.wait(config.heartbeatMs);
      }
    } catch (err) {
      if (!this.signal.aborted) this.crash(err);
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.wakeup.wake();
    await this.running;
    await this.finality.stopped();
    await Promise.all(this.sessions.map((s) => s.stopped()));
    if (this.active) this.deps.metrics.providerActive.set({ chain: this.deps.config.name, provider: this.active.name }, 0);
    this.active = null;
    this.setConnected(false);
  }

  status(): ChainStatus {
    const assessed = this.assess();
    return {
      chainId: this.deps.config.chainId,
      name: this.deps.config.name,
      transport: this.connected && this.active ? this.active.kind : 'none',
      connected: this.connected,
      provider: this.active?.name ?? null,
      head: this.follower?.head ?? this.heights.head ?? null,
      processed: this.follower?.processed ?? this.heights.processed ?? null,
      ingesting: !this.following,
      failed: this.fatal?.message ?? null,
      providers: assessed.map((a): ProviderStatus => ({
        name: a.view.name,
        weight: a.view.weight,
        health: a.health,
        transport: this.sessions[a.view.index]!.kind,
        head: a.view.head,
        lag: a.lag,
        heldUntil: a.view.heldUntil > Date.now() ? new Date(a.view.heldUntil).toISOString() : null,
      })),
    };
  }

  health(): { ok: boolean; detail?: string } {
    if (this.fatal) return { ok: false, detail: this.fatal.message };
    const via = this.active ? `${this.active.name} (${this.active.kind})` : 'no provider';
    return { ok: true, detail: `${via} ${this.connected ? 'connected' : 'connecting'}` };
  }

  /**
   * Moves the chain off `provider` (an operator's failover): it is held off for `holdMs` (0 releases a
   * hold). Returns the provider read from next, or throws ETHHOOK_ERR_PROVIDER_UNKNOWN /
   * ETHHOOK_ERR_NO_OTHER_PROVIDER (then nothing changed).
   */
  failover(provider: string, holdMs: number): { from: string; to: string | null; heldUntil: string | null } {
    const session = this.sessions.find((s) => s.name === provider);
    if (!session) {
      throw new EthhookError(
        'ETHHOOK_ERR_PROVIDER_UNKNOWN',
        `chain ${this.deps.config.name} has no provider ${provider} (it has ${this.sessions.map((s) => s.name).join(', ')})`,
        {
          field: 'provider',
        },
      );
    }
    if (holdMs === 0) {
      session.heldUntil = 0;
      this.deps.log.info({ provider }, 'chain provider hold released by an operator');
    } else {
      const now = Date.now();
      const others = this.assess(now).filter((a) => a.view.index !== session.index && a.health === 'healthy');
      if (others.length === 0) {
        throw new EthhookError('ETHHOOK_ERR_NO_OTHER_PROVIDER', `no other healthy provider of chain ${this.deps.config.name} to move to`, {
          field: 'provider',
        });
      }
      session.heldUntil = now + holdMs;
      this.deps.log.warn({ provider, holdMs }, 'chain provider held off by an operator');
      if (this.active === session) this.setActive(this.pick(now), 'operator');
    }
    this.reconsider();
    return {
      from: provider,
      to: this.active?.name ?? null,
      heldUntil: session.heldUntil > Date.now() ? new Date(session.heldUntil).toISOString() : null,
    };
  }

  /**
   * A Backfill's read (src/actors/backfill/; history.ts), from the active provider (through its
   * throttle). Counts nothing against the provider: the backfill retries on its own.
   */
  async readHistory(from: number, to: number, filter: LogFilter): Promise<HistoryRead> {
    const active = this.active;
    if (!active) {
      throw new EthhookError('ETHHOOK_ERR_RPC_CLOSED', `chain ${this.deps.config.name} has no usable provider now`, {
        chainId: this.deps.config.chainId,
      });
    }
    return readHistory(active.source, this.deps.config.chainId, from, to, filter);
  }

  private get signal(): AbortSignal {
    return this.abort.signal;
  }

  private async run(): Promise<void> {
    try {
      await this.follow();
    } catch (err) {
      if (!this.signal.aborted) this.crash(err);
    }
  }

  private async follow(): Promise<void> {
    const { config } = this.deps;
    const follower = this.follower!;
    let failures = 0;
    let shortRounds = 0;
    while (!this.signal.aborted) {
      if (this.sessions.every((s) => s.mismatch)) return this.die(this.sessions[0]!.mismatch!);
      const active = this.pick(Date.now());
      if (active !== this.active) this.setActive(active, this.active ? this.reasonToLeave(this.active) : 'down');
      if (!active || !(await this.pin())) {
        if (!active) this.setConnected(false);
        await this.wakeup.wait(config.heartbeatMs);
        continue;
      }
      const before = follower.processed;
      const round = new AbortController();
      this.round = round;
      let outcome;
      try {
        this.setConnected(true);
        outcome = await follower.sync(this.sourceFor(active), AbortSignal.any([this.signal, round.signal]));
        failures = 0;
        active.readSucceeded();
      } catch (err) {
        if (this.signal.aborted) break;
        if (round.signal.aborted) continue; // another provider was chosen meanwhile
        if (isFatal(err)) return this.die(err);
        failures++;
        if (!isProviderFault(err)) {
          this.deps.log.error({ err: describeError(err), provider: active.name, attempt: failures }, 'chain sync round failed');
          await sleep(backoffDelay(failures, config.reconnect), this.signal);
          continue;
        }
        this.problem(classify(err), err, active);
        active.readFailed();
        const forgiven = isEthhookError(err, 'ETHHOOK_ERR_CHAIN_INCONSISTENT') && failures === 1;
        if (!forgiven && this.sessions.length > 1) {
          active.heldUntil = Date.now() + config.failbackAfterMs;
          const next = this.pick(Date.now());
          if (next && next !== active && next.heldUntil <= Date.now()) {
            this.setActive(next, isEthhookError(err, 'ETHHOOK_ERR_PROVIDER_DISAGREES') ? 'disagreement' : 'error');
            continue;
          }
        }
        await sleep(backoffDelay(failures, config.reconnect), this.signal);
        continue;
      } finally {
        if (this.round === round) this.round = null;
      }
      // A round that ended because the provider lacks a block below its own confirmed head, without progress: it may claim blocks it does not serve.
      const short = outcome === 'missing' && follower.processed === before && active === this.active;
      shortRounds = short ? shortRounds + 1 : 0;
      if (short && shortRounds >= SHORT_ROUNDS && this.sessions.length > 1) {
        shortRounds = 0;
        const head = active.head?.header.number;
        this.problem(
          'incomplete',
          new EthhookError(
            'ETHHOOK_ERR_RPC_INCOMPLETE',
            `provider ${active.name} claims head ${head} but serves no block after ${follower.processed}`,
            {
              provider: active.name,
            },
          ),
          active,
        );
        active.heldUntil = Date.now() + config.failbackAfterMs;
        const next = this.pick(Date.now());
        if (next !== active) this.setActive(next, 'error');
        continue;
      }
      await this.wakeup.wait(short ? SHORT_ROUND_PAUSE_MS : config.heartbeatMs);
    }
  }

  /** After a head or a session change: the metrics, the choice (a new one aborts the round), a wake-up. */
  private reconsider(): void {
    if (this.signal.aborted) return;
    this.updateProviderMetrics();
    if (this.active && this.round) {
      const next = this.pick(Date.now());
      if (next !== this.active) this.setActive(next, this.reasonToLeave(this.active));
    }
    this.wakeup.wake();
  }

  private sourceFor(active: ProviderSession): PoolSource {
    return new PoolSource({
      active,
      others: () => this.sessions.filter((s) => s !== active && s.up && !s.mismatch && !s.syncing && s.heldUntil <= Date.now()),
      quorum: this.deps.config.quorum,
      quorumHeight: () => quorumHeight(this.views(), this.deps.config.quorum),
      disagreed: (provider, n, hash, activeHash) => {
        if (this.disagreedAt.get(provider) === n) return;
        this.disagreedAt.set(provider, n);
        this.deps.metrics.providerDisagreements.inc({ chain: this.deps.config.name, provider });
        this.deps.log.warn({ block: n, provider, hash, active: active.name, activeHash }, 'chain providers disagree on a block hash');
      },
    });
  }

  private views(): ProviderView[] {
    return this.sessions.map((s) => ({
      name: s.name,
      index: s.index,
      weight: s.config.weight,
      up: s.up,
      syncing: s.syncing,
      mismatched: s.mismatch !== null,
      head: s.head?.header.number ?? null,
      movedAt: s.movedAt,
      behindSince: s.behindSince,
      heldUntil: s.heldUntil,
    }));
  }

  private assess(now = Date.now()): Assessment[] {
    const { maxLagBlocks, stallTimeoutMs } = this.deps.config;
    return assess(this.views(), now, { maxLagBlocks, stallTimeoutMs });
  }

  private pick(now: number): ProviderSession | null {
    const chosen = choose(this.assess(now));
    return chosen ? this.sessions[chosen.view.index]! : null;
  }

  private reasonToLeave(session: ProviderSession): FailoverReason {
    return failoverReason(this.assess().find((a) => a.view.index === session.index)!);
  }

  private setActive(next: ProviderSession | null, reason: FailoverReason): void {
    const previous = this.active;
    if (next === previous) return;
    this.active = next;
    this.round?.abort();
    const { metrics, log, config } = this.deps;
    if (previous) {
      metrics.providerActive.set({ chain: config.name, provider: previous.name }, 0);
      metrics.providerFailovers.inc({ chain: config.name, provider: previous.name, reason });
    }
    if (next) {
      metrics.providerActive.set({ chain: config.name, provider: next.name }, 1);
      if (next.head) this.follower?.noteHead(next.head.header, next.head.seenAt);
    }
    if (previous && !this.signal.aborted) {
      log.warn({ from: previous.name, to: next?.name ?? null, reason }, next ? 'chain provider failover' : 'chain has no usable provider');
    }
    this.setConnected(this.connected && next !== null);
  }

  private updateProviderMetrics(): void {
    const { metrics, config } = this.deps;
    const now = Date.now();
    const reference = referenceHead(this.views(), now, config.maxLagBlocks);
    for (const s of this.sessions) {
      const behind = s.head !== null && reference >= 0 && s.head.header.number < reference;
      s.behindSince = behind ? (s.behindSince ?? now) : null;
    }
    let healthy = 0;
    for (const a of this.assess(now)) {
      metrics.providerLag.set({ chain: config.name, provider: a.view.name }, a.lag);
      if (a.health === 'healthy') healthy++;
    }
    metrics.providersHealthy.set(this.label, healthy);
  }

  /** Throws ETHHOOK_ERR_CHAIN_MISMATCH when the provider is not on the chain this listener follows. */
  private verifyChain(source: RpcChainSource): Promise<void> {
    const run = this.verifying.then(async () => {
      const { config, cursors } = this.deps;
      const served = await source.chainId();
      if (served !== config.chainId) {
        throw new EthhookError('ETHHOOK_ERR_CHAIN_MISMATCH', `the node serves chain ${served}, not ${config.chainId}`, {
          chainId: config.chainId,
          served,
        });
      }
      const genesis = (await source.headerByNumber(0))?.hash;
      if (!genesis) throw new EthhookError('ETHHOOK_ERR_RPC_MALFORMED', 'the node has no block 0', { method: 'eth_getBlockByNumber' });
      const known = await cursors.genesis(config.chainId);
      if (known === undefined && !this.following) await cursors.setGenesis(config.chainId, genesis);
      else if (known !== undefined && known !== genesis) {
        throw new EthhookError(
          'ETHHOOK_ERR_CHAIN_MISMATCH',
          'the node serves another chain than the one the cursor was built on (block 0 differs); if that is intended, reset the cursor (POST /admin/chains/:chainId/reset-cursor, runbooks/chains.md)',
          { chainId: config.chainId, genesis, cursorGenesis: known },
        );
      }
    });
    this.verifying = run.catch(() => {});
    return run;
  }

  /**
   * Pins the start block of a chain without a position (see the header), then reports ready. False
   * while a provider has not had its first session yet.
   */
  private async pin(): Promise<boolean> {
    if (!this.pinned) {
      if (!this.sessions.every((s) => s.attempted || s.mismatch)) return false;
      const heads = this.sessions.filter((s) => s.up && !s.syncing && s.head).map((s) => s.head!.header.number);
      const next = this.follower!.pin(heads.length > 0 ? Math.min(...heads) : null);
      await this.deps.cursors.setPosition(this.deps.config.chainId, { next, floor: next });
      this.pinned = true;
      this.deps.log.info({ next }, 'chain start block pinned');
    }
    this.deps.onReady?.();
    return true;
  }

  private setConnected(up: boolean): void {
    this.connected = up;
    this.deps.metrics.up.set(this.label, up ? 1 : 0);
    this.deps.metrics.wsConnected.set(this.label, up && this.active?.kind === 'ws' ? 1 : 0);
  }

  /** An unexpected error (a bug): the listener stops and the supervisor hears of it. */
  private crash(err: unknown): void {
    if (this.fatal) return;
    const cause =
      err instanceof EthhookError
        ? err
        : new EthhookError(
            'ETHHOOK_ERR_LISTENER_FAILED',
            `chain listener failed: ${(err as Error)?.message ?? String(err)}`,
            {},
            { cause: err },
          );
    this.abort.abort();
    this.wakeup.wake();
    this.die(cause);
  }

  private die(err: EthhookError): void {
    this.fatal = err;
    this.setConnected(false);
    this.deps.log.fatal({ err: describeError(err) }, `chain listener stopped: ${err.message}`);
    this.deps.onFatal(err);
  }

  private problem(kind: RpcErrorKind, err: unknown, session: ProviderSession | null): void {
    const provider = session?.name;
    this.deps.metrics.rpcErrors.inc({ ...this.label, kind });
    if (provider !== undefined) this.deps.metrics.providerErrors.inc({ ...this.label, provider, kind });
    const key = `${provider ?? ''}/${kind}`;
    const now = Date.now();
    const win = this.logWindow.get(key);
    if (!win || now - win.start > LOG_PERIOD_MS) this.logWindow.set(key, { start: now, count: 1 });
    else if (++win.count > LOG_BURST) return;
    const level = kind === 'mismatch' ? 'error' : 'warn';
    this.deps.log[level](
      { kind, provider, err: { ...describeError(err), stack: undefined }, transport: session?.kind },
      'chain RPC problem',
    );
  }
}

/** Errors a provider's answer (or silence) caused: they count against it and may move the chain off it. */
const PROVIDER_FAULTS = new Set<string>([
  'ETHHOOK_ERR_RPC_TIMEOUT',
  'ETHHOOK_ERR_RPC_ERROR',
  'ETHHOOK_ERR_RPC_MALFORMED',
  'ETHHOOK_ERR_RPC_CLOSED',
  'ETHHOOK_ERR_RPC_RANGE_TOO_LARGE',
  'ETHHOOK_ERR_RPC_RATE_LIMITED',
  'ETHHOOK_ERR_RPC_INCOMPLETE',
  'ETHHOOK_ERR_CHAIN_INCONSISTENT',
  'ETHHOOK_ERR_PROVIDER_DISAGREES',
]);

function isProviderFault(err: unknown): boolean {
  return err instanceof EthhookError && PROVIDER_FAULTS.has(err.code);
}

function isFatal(err: unknown): err is EthhookError {
  return (
    isEthhookError(err, 'ETHHOOK_ERR_REORG_TOO_DEEP') ||
    isEthhookError(err, 'ETHHOOK_ERR_CHAIN_MISMATCH') ||
    isEthhookError(err, 'ETHHOOK_ERR_CURSOR_CORRUPT')
  );
}

/** Whether `heights` has a tag above `told`'s (a tag `told` does not know counts as above). */
function beyond(heights: FinalityHeights, told: FinalityHeights): boolean {
  const above = (h: number | undefined, t: number | undefined) => h !== undefined && (t === undefined || h > t);
  return above(heights.safe, told.safe) || above(heights.finalized, told.finalized);
}

/** Blocks between the head seen and the processed height; 0 until both are known. */
function lagOf(h: { head?: number; processed?: number }): number {
  return h.head === undefined || h.processed === undefined ? 0 : Math.max(0, h.head - h.processed);
}
