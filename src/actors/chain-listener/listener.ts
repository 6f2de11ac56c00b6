/**
 * ChainListener: the connection side of one chain's ingestion. It owns the transports and feeds the
 * ChainFollower (follower.ts) with heads; the follower decides what to emit.
 *
 * - WebSocket session: connect, `eth_subscribe newHeads`, note the latest head, then sync after every
 *   head. Every `heartbeatMs` without a head it asks for the latest block (a silent socket is caught by
 *   the request timeout). The session ends on any transport or node error; the next one starts after a
 *   backoff (exponential, jitter) and backfills from the cursor, so nothing is skipped.
 * - After `wsFailuresBeforeFallback` sessions in a row that failed before a complete sync, and when
 *   `httpUrl` is set, it polls over HTTP every `pollIntervalMs`, while it keeps trying the WebSocket with
 *   backoff; the first WebSocket that connects takes over again. It never gives up.
 * - Each session first checks that the node serves the configured chain (`eth_chainId`) and the chain
 *   the cursor was built on (hash of block 0, persisted at the first session).
 * - A chain without a persisted position gets one at the first session, before anything else: the
 *   configured `startBlock`, or for `latest` (and after a reset to `latest`) the confirmed head seen
 *   then. Only then does it report `onReady` (the node's /ready waits for it), so no block after
 *   /ready can be skipped. `chain_up` is 1 while a session (WebSocket or HTTP) works.
 * - ETHHOOK_ERR_REORG_TOO_DEEP, ETHHOOK_ERR_CHAIN_MISMATCH and ETHHOOK_ERR_CURSOR_CORRUPT are fatal: logged at fatal level, reported
 *   through `onFatal`, and the listener stops.
 * - Every problem is counted in `chain_rpc_errors_total{kind}` and logged with its context (at most
 *   `LOG_BURST` lines per kind every 10 s, so a hostile node cannot flood the logs).
 */
import type { Logger } from '../../runtime/log.ts';
import { EthhookError, describeError, isEthhookError } from '../../runtime/errors.ts';
import type { CursorStore } from '../../store/cursors.ts';
import { backoffDelay, sleep } from './backoff.ts';
import type { ChainConfig } from './config.ts';
import { headerSchema, validateResult } from './eth-schemas.ts';
import { ChainFollower, type EmittedBlock } from './follower.ts';
import { HttpRpcClient } from './http-rpc.ts';
import type { ChainBlockMessage, ChainLog, ChainStatus } from './messages.ts';
import type { ChainMetrics, RpcErrorKind } from './metrics.ts';
import { RpcChainSource } from './rpc-source.ts';
import { WsRpcClient, nowMs } from './ws-rpc.ts';

export interface ChainListenerDeps {
  config: ChainConfig;
  cursors: CursorStore<EmittedBlock, ChainLog>;
  metrics: ChainMetrics;
  log: Logger;
  /** Delivers one message downstream; resolves once acknowledged (retrying meanwhile). */
  emit(msg: ChainBlockMessage, signal: AbortSignal): Promise<void>;
  onFatal(error: EthhookError): void;
  /** The node was reached, the chain verified and the start block pinned (at every session). */
  onReady?(): void;
}

const LOG_BURST = 20;
const LOG_PERIOD_MS = 10_000;

const KIND_BY_CODE: Record<string, RpcErrorKind> = {
  ETHHOOK_ERR_RPC_TIMEOUT: 'timeout',
  ETHHOOK_ERR_RPC_ERROR: 'rpc',
  ETHHOOK_ERR_RPC_MALFORMED: 'malformed',
  ETHHOOK_ERR_RPC_CLOSED: 'connection',
  ETHHOOK_ERR_RPC_RANGE_TOO_LARGE: 'range-too-large',
  ETHHOOK_ERR_CHAIN_INCONSISTENT: 'inconsistent',
};

export class ChainListener {
  private readonly abort = new AbortController();
  private readonly label: { chain: string };
  /** Head seen and processed height, for `chain_lag_blocks` (undefined until known). */
  private readonly heights: { head?: number; processed?: number } = {};
  private follower: ChainFollower | null = null;
  private running: Promise<void> | null = null;
  private transport: 'ws' | 'http' | 'none' = 'none';
  private connected = false;
  private pinned = false;
  private fatal: EthhookError | null = null;
  private readonly logWindow = new Map<RpcErrorKind, { start: number; count: number }>();
  private wake: () => void = () => {};

  constructor(private readonly deps: ChainListenerDeps) {
    this.label = { chain: deps.config.name };
  }

  /** Loads the cursor and starts following the chain in the background. */
  async start(): Promise<void> {
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
          await this.deps.emit(msg, signal);
          if (!msg.removed && msg.logs.length > 0) metrics.eventsReceived.inc(this.label, msg.logs.length);
        },
        persist: {
          append: (block, logs, floor, keep) => cursors.append(config.chainId, block, logs, floor, keep),
          retract: (n, floor) => cursors.retract(config.chainId, n, floor),
          logs: (n) => cursors.logs(config.chainId, n),
        },
        onHead: (head) => {
          metrics.height.set(this.label, head);
          metrics.finalizedHeight.set(this.label, Math.max(0, head - config.maxReorgDepth));
          this.heights.head = head;
          metrics.lag.set(this.label, lagOf(this.heights));
        },
        onProcessed: (n) => {
          metrics.processedHeight.set(this.label, n);
          this.heights.processed = n;
          metrics.lag.set(this.label, lagOf(this.heights));
        },
        onReorg: (depth) => {
          metrics.reorgs.inc(this.label);
          metrics.reorgDepth.observe(this.label, depth);
          this.deps.log.warn({ depth, processed: this.follower?.processed }, 'chain reorg: orphaned blocks retracted');
        },
        onProblem: (kind, err) => this.problem(kind, err),
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
    this.deps.log.info({ next: persisted?.next ?? startBlock, confirmations: config.confirmations }, 'chain listener starting');
    this.running = this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.wake();
    await this.running;
    this.deps.metrics.wsConnected.set(this.label, 0);
    this.deps.metrics.up.set(this.label, 0);
  }

  status(): ChainStatus {
    return {
      chainId: this.deps.config.chainId,
      name: this.deps.config.name,
      transport: this.transport,
      connected: this.connected,
      head: this.follower?.head ?? null,
      processed: this.follower?.processed ?? null,
      failed: this.fatal?.message ?? null,
    };
  }

  health(): { ok: boolean; detail?: string } {
    if (this.fatal) return { ok: false, detail: this.fatal.message };
    return { ok: true, detail: `${this.transport} ${this.connected ? 'connected' : 'connecting'}` };
  }

  private get signal(): AbortSignal {
    return this.abort.signal;
  }

  private async run(): Promise<void> {
    const { config } = this.deps;
    let failures = 0;
    let handover: WsRpcClient | null = null;
    while (!this.signal.aborted) {
      try {
        if (config.httpUrl && failures >= config.wsFailuresBeforeFallback && !handover) {
          handover = await this.followHttp(config.httpUrl);
          continue;
        }
        const client = handover ?? (await this.connectWs());
        handover = null;
        await this.followWs(client, () => {
          failures = 0;
        });
      } catch (err) {
        if (this.signal.aborted) break;
        if (isFatal(err)) return this.die(err);
        failures++;
        this.problem(classify(err), err);
        await sleep(backoffDelay(failures, config.reconnect), this.signal);
      }
    }
    handover?.close();
  }

  private connectWs(): Promise<WsRpcClient> {
    const { config } = this.deps;
    return WsRpcClient.connect({
      url: config.wsUrl,
      requestTimeoutMs: config.requestTimeoutMs,
      maxFrameBytes: config.maxFrameBytes,
      onProblem: (kind, err) => this.problem(kind, err),
    });
  }

  /** One WebSocket session: runs until the socket or the node fails (throws) or the listener stops. */
  private async followWs(client: WsRpcClient, onHealthy: () => void): Promise<void> {
    const follower = this.follower!;
    const source = new RpcChainSource(client);
    const stopOnAbort = () => client.close();
    this.signal.addEventListener('abort', stopOnAbort, { once: true });
    void client.closed.then(() => this.wake());
    let woken = false;
    this.transport = 'ws';
    try {
      await client.subscribe(['newHeads'], (result, receivedAt) => {
        let header;
        try {
          header = validateResult(headerSchema, result, 'eth_subscription(newHeads)');
        } catch (err) {
          return this.problem('malformed', err);
        }
        follower.noteHead(header, receivedAt);
        woken = true;
        this.wake();
      });
      await this.verifyChain(source);
      this.setConnected(true);
      this.deps.log.info({ url: redactUrl(this.deps.config.wsUrl) }, 'chain WebSocket session up');
      follower.noteHead(await source.latestHeader(), nowMs());
      await this.pin();
      for (;;) {
        await follower.sync(source, this.signal);
        onHealthy();
        if (!woken) {
          const outcome = await this.waitForWake(this.deps.config.heartbeatMs);
          if (!client.isOpen) throw new EthhookError('ETHHOOK_ERR_RPC_CLOSED', 'WebSocket closed', {});
          if (outcome === 'timeout') follower.noteHead(await source.latestHeader(), nowMs());
        }
        woken = false;
        if (this.signal.aborted) return;
      }
    } finally {
      this.signal.removeEventListener('abort', stopOnAbort);
      client.close();
      this.setConnected(false);
    }
  }

  /**
   * HTTP polling while a WebSocket probe retries with backoff. Returns the probe's connected client,
   * or null when the listener stops.
   */
  private async followHttp(url: string): Promise<WsRpcClient | null> {
    const { config, log } = this.deps;
    const follower = this.follower!;
    const http = new HttpRpcClient({ url, requestTimeoutMs: config.requestTimeoutMs, maxFrameBytes: config.maxFrameBytes });
    const source = new RpcChainSource(http);
    let probed: WsRpcClient | null = null;
    const probe = (async () => {
      for (let attempt = 1; !this.signal.aborted && !probed; attempt++) {
        await sleep(backoffDelay(attempt, config.reconnect), this.signal);
        if (this.signal.aborted) return;
        try {
          probed = await this.connectWs();
          this.wake();
        } catch (err) {
          this.problem('connection', err);
        }
      }
    })();
    this.transport = 'http';
    log.warn({ url: redactUrl(url) }, 'chain WebSocket keeps failing: polling over HTTP');
    let failures = 0;
    let verified = false;
    try {
      while (!this.signal.aborted && !probed) {
        try {
          if (!verified) verified = await this.verifyChain(source);
          follower.noteHead(await source.latestHeader(), nowMs());
          await this.pin();
          this.setConnected(true);
          await follower.sync(source, this.signal);
          failures = 0;
          await this.waitForWake(config.pollIntervalMs);
        } catch (err) {
          if (this.signal.aborted) break;
          if (isFatal(err)) throw err;
          this.setConnected(false);
          this.problem(classify(err), err);
          await sleep(backoffDelay(++failures, config.reconnect), this.signal);
        }
      }
    } finally {
      http.close();
      this.setConnected(false);
      this.wake();
      await probe;
    }
    if (this.signal.aborted) {
      (probed as WsRpcClient | null)?.close();
      return null;
    }
    log.info('chain WebSocket back: leaving HTTP polling');
    return probed;
  }

  /** Waits for a wake-up (a head, a probe that connected, the socket closing, stop) or a timeout. */
  private waitForWake(timeoutMs: number): Promise<'woken' | 'timeout'> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish('timeout'), timeoutMs);
      const finish = (outcome: 'woken' | 'timeout') => {
        clearTimeout(timer);
        this.wake = () => {};
        resolve(outcome);
      };
      this.wake = () => finish('woken');
      if (this.signal.aborted) finish('woken');
    });
  }

  /** Throws ETHHOOK_ERR_CHAIN_MISMATCH when the node is not on the chain this listener follows. */
  private async verifyChain(source: RpcChainSource): Promise<true> {
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
    if (known === undefined) await cursors.setGenesis(config.chainId, genesis);
    else if (known !== genesis) {
      throw new EthhookError(
        'ETHHOOK_ERR_CHAIN_MISMATCH',
        'the node serves another chain than the one the cursor was built on (block 0 differs); clear the cursor if that is intended',
        { chainId: config.chainId, genesis, cursorGenesis: known },
      );
    }
    return true;
  }

  /** Pins the start block at the first session of a chain without a position, then reports ready. */
  private async pin(): Promise<void> {
    if (!this.pinned) {
      const next = this.follower!.pin();
      await this.deps.cursors.setPosition(this.deps.config.chainId, { next, floor: next });
      this.pinned = true;
      this.deps.log.info({ next }, 'chain start block pinned');
    }
    this.deps.onReady?.();
  }

  private setConnected(up: boolean): void {
    this.connected = up;
    this.deps.metrics.up.set(this.label, up ? 1 : 0);
    if (this.transport === 'ws') this.deps.metrics.wsConnected.set(this.label, up ? 1 : 0);
  }

  private die(err: EthhookError): void {
    this.fatal = err;
    this.transport = 'none';
    this.deps.log.fatal({ err: describeError(err) }, `chain listener stopped: ${err.message}`);
    this.deps.onFatal(err);
  }

  private problem(kind: RpcErrorKind, err: unknown): void {
    this.deps.metrics.rpcErrors.inc({ ...this.label, kind });
    const now = Date.now();
    const win = this.logWindow.get(kind);
    if (!win || now - win.start > LOG_PERIOD_MS) this.logWindow.set(kind, { start: now, count: 1 });
    else if (++win.count > LOG_BURST) return;
    this.deps.log.warn({ kind, err: { ...describeError(err), stack: undefined }, transport: this.transport }, 'chain RPC problem');
  }
}

function isFatal(err: unknown): err is EthhookError {
  return (
    isEthhookError(err, 'ETHHOOK_ERR_REORG_TOO_DEEP') ||
    isEthhookError(err, 'ETHHOOK_ERR_CHAIN_MISMATCH') ||
    isEthhookError(err, 'ETHHOOK_ERR_CURSOR_CORRUPT')
  );
}

function classify(err: unknown): RpcErrorKind {
  return (err instanceof EthhookError && KIND_BY_CODE[err.code]) || 'connection';
}

/** Node URLs often carry an API key in the path or query: log only the origin. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' && !u.search ? '' : '/…'}`;
  } catch {
    return '[invalid url]';
  }
}

/** Blocks between the head seen and the processed height; 0 until both are known. */
function lagOf(h: { head?: number; processed?: number }): number {
  return h.head === undefined || h.processed === undefined ? 0 : Math.max(0, h.head - h.processed);
}
