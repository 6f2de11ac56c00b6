/**
 * ProviderSession: the connection to one of a chain's RPC providers. It follows the provider's head
 * and keeps a transport open for the listener's reads; it never emits anything itself.
 *
 * - WebSocket: connect, `eth_subscribe newHeads`, verify the chain (`verify`: chain id and block 0),
 *   ask `eth_syncing` and the latest block; then every head pushed is reported, and every
 *   `heartbeatMs` without one it asks for the latest block and `eth_syncing` again (a silent socket is
 *   caught by the request timeout). The session ends on any transport or node error; the next starts
 *   after a backoff (exponential, jitter).
 * - After `wsFailuresBeforeFallback` sessions in a row that failed before they were up, or as many reads
 *   in a row from an open WebSocket session that failed (`readFailed`; a proxy that drops large frames),
 *   and when the provider has an `httpUrl`, it polls over HTTP every `pollIntervalMs` while a WebSocket
 *   probe retries with backoff; the first WebSocket that connects takes over again. After reads failed
 *   over an open WebSocket, the probe starts only after `failbackAfterMs` of polling: that WebSocket
 *   connects at once, so taking it back at its first connect would flap between the two transports,
 *   each switch cutting the listener's round short (on a loaded machine, no round ended). A provider
 *   with only an `httpUrl` is polled.
 * - `up` once the chain is verified and a head is known, until the session ends. `syncing` while the
 *   provider reports `eth_syncing` (a provider that does not know the method is taken as synced).
 * - A provider that serves another chain (ETHHOOK_ERR_CHAIN_MISMATCH) stops for good: `mismatch` holds
 *   the error and `onChange` tells the listener. `attempted` is set once its first session came up or
 *   failed (the listener pins a `latest` start only once every provider had its say).
 * - The listener's callbacks (`onHead`, `onChange`) run inside socket events: one that throws is caught
 *   and reported to `onCallbackError`, never left to escape into the socket.
 * - `transport` (what the listener's RpcChainSource calls) goes through the session's current
 *   connection; each call first waits for the provider's Throttle (throttle.ts), its time is observed
 *   in `chain_provider_latency_seconds`, and a rate-limited answer slows the Throttle down and is asked
 *   again after the wait it implies (at least what the provider's Retry-After said), up to
 *   RATE_LIMIT_TRIES times in all (`chain_provider_throttled_total`); only then does it fail with
 *   ETHHOOK_ERR_RPC_RATE_LIMITED. A call the Throttle would hold back longer than `requestTimeoutMs`
 *   is not sent: it fails at once with ETHHOOK_ERR_RPC_RATE_LIMITED, so that the listener can read
 *   from another provider meanwhile.
 */
import { EthhookError, isEthhookError } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log.ts';
import type { ChainConfig, ProviderConfig } from '../../config/chain.ts';
import { Wakeup } from '../../runtime/timers.ts';
import { backoffDelay, sleep } from './backoff.ts';
import { headerSchema, validateResult, type BlockHeader } from './eth-schemas.ts';
import { HttpRpcClient } from './http-rpc.ts';
import type { ChainMetrics, RpcErrorKind } from './metrics.ts';
import { RpcChainSource } from './rpc-source.ts';
import { Throttle } from './throttle.ts';
import { rpcClosed, rpcRateLimited, type RpcCall, type RpcTransport } from './transport.ts';
import { WsRpcClient, nowMs } from './ws-rpc.ts';

/** Tries of one call that the provider keeps rate-limiting, before it fails. */
export const RATE_LIMIT_TRIES = 6;

export interface ProviderHead {
  header: BlockHeader;
  seenAt: number;
}

export interface ProviderSessionDeps {
  provider: ProviderConfig;
  index: number;
  chain: ChainConfig;
  metrics: ChainMetrics;
  log: Logger;
  signal: AbortSignal;
  /** Checks the chain id and block 0; throws ETHHOOK_ERR_CHAIN_MISMATCH. */
  verify(source: RpcChainSource): Promise<void>;
  onHead(session: ProviderSession, head: ProviderHead): void;
  /** up, syncing or mismatch changed. */
  onChange(session: ProviderSession): void;
  problem(session: ProviderSession, kind: RpcErrorKind, err: unknown): void;
  /** A callback above threw (a bug): the listener decides what to do. */
  onCallbackError(err: unknown): void;
}

export class ProviderSession {
  readonly name: string;
  /** The transport the listener reads through (see the header). */
  readonly transport: RpcTransport;
  readonly source: RpcChainSource;
  head: ProviderHead | null = null;
  /** When the head number last went up (ms). */
  movedAt = 0;
  up = false;
  syncing = false;
  mismatch: EthhookError | null = null;
  kind: 'ws' | 'http' | 'none' = 'none';
  /** Held off by the listener until then (ms since the epoch). */
  heldUntil = 0;
  /** Since when its head has been below the chain's reference head (kept by the listener). */
  behindSince: number | null = null;
  /** Its first session came up or failed. */
  attempted = false;
  private current: RpcTransport | null = null;
  private currentWs: WsRpcClient | null = null;
  private readFailures = 0;
  /** The last WebSocket session ended because its reads kept failing (it connects, but cannot be read from). */
  private readsFailedOverWs = false;
  private readonly throttle: Throttle;
  private readonly labels: { chain: string; provider: string };
  private running: Promise<void> | null = null;
  private readonly wakeup: Wakeup;

  constructor(private readonly deps: ProviderSessionDeps) {
    this.name = deps.provider.name;
    this.labels = { chain: deps.chain.name, provider: deps.provider.name };
    this.wakeup = new Wakeup(deps.signal);
    this.throttle = new Throttle(deps.provider.maxRequestsPerSecond ?? Number.POSITIVE_INFINITY, Date.now());
    this.transport = this.makeTransport();
    this.source = new RpcChainSource(this.transport);
  }

  get config(): ProviderConfig {
    return this.deps.provider;
  }

  get index(): number {
    return this.deps.index;
  }

  /** Calls per second the throttle allows now (Infinity: no limit). */
  get rate(): number {
    return this.throttle.currentRate;
  }

  start(): void {
    this.running ??= this.run();
  }

  /** Resolves once the session is over (the listener's signal aborted, or a chain mismatch). */
  async stopped(): Promise<void> {
    this.wakeup.wake();
    await this.running;
  }

  private get signal(): AbortSignal {
    return this.deps.signal;
  }

  private async run(): Promise<void> {
    const { provider, chain } = this.deps;
    let failures = 0;
    let handover: WsRpcClient | null = null;
    while (!this.signal.aborted) {
      try {
        if (!provider.wsUrl) {
          await this.followHttp(provider.httpUrl!, false);
          continue;
        }
        if (provider.httpUrl && failures >= chain.wsFailuresBeforeFallback && !handover) {
          handover = await this.followHttp(provider.httpUrl, true, this.readsFailedOverWs ? chain.failbackAfterMs : 0);
          this.readsFailedOverWs = false;
          continue;
        }
        const client = handover ?? (await this.connectWs(provider.wsUrl));
        handover = null;
        await this.followWs(client, () => {
          failures = 0;
        });
      } catch (err) {
        if (this.signal.aborted) break;
        this.attempted = true;
        if (isEthhookError(err, 'ETHHOOK_ERR_CHAIN_MISMATCH')) {
          this.mismatch = err;
          this.deps.problem(this, 'mismatch', err);
          this.setUp(false);
          this.changed();
          break;
        }
        if (this.readFailures >= chain.wsFailuresBeforeFallback) {
          failures = Math.max(failures, chain.wsFailuresBeforeFallback);
          this.readsFailedOverWs = true;
        }
        this.readFailures = 0;
        failures++;
        this.deps.problem(this, classify(err), err);
        this.changed();
        await sleep(backoffDelay(failures, chain.reconnect), this.signal);
      }
    }
    handover?.close();
    this.setUp(false);
  }

  /** A read from this provider failed: enough in a row end an open WebSocket session (HTTP fallback). */
  readFailed(): void {
    const { chain, provider } = this.deps;
    if (++this.readFailures >= chain.wsFailuresBeforeFallback && provider.httpUrl && this.currentWs) {
      this.deps.log.warn(
        { provider: this.name, failures: this.readFailures },
        'chain provider: reads keep failing over its WebSocket: ending the session',
      );
      this.currentWs.close();
    }
  }

  readSucceeded(): void {
    this.readFailures = 0;
  }

  private connectWs(url: string): Promise<WsRpcClient> {
    const { chain } = this.deps;
    return WsRpcClient.connect({
      url,
      requestTimeoutMs: chain.requestTimeoutMs,
      maxFrameBytes: chain.maxFrameBytes,
      onProblem: (kind, err) => this.deps.problem(this, kind, err),
    });
  }

  /** One WebSocket session: runs until the socket or the node fails (throws) or the listener stops. */
  private async followWs(client: WsRpcClient, onUp: () => void): Promise<void> {
    const stopOnAbort = () => client.close();
    this.signal.addEventListener('abort', stopOnAbort, { once: true });
    void client.closed.then(() => this.wakeup.wake());
    let heard = false;
    this.kind = 'ws';
    this.current = client;
    this.currentWs = client;
    try {
      await client.subscribe(['newHeads'], (result, receivedAt) => {
        let header;
        try {
          header = validateResult(headerSchema, result, 'eth_subscription(newHeads)');
        } catch (err) {
          return this.deps.problem(this, 'malformed', err);
        }
        heard = true;
        if (this.up) this.noteHead(header, receivedAt);
      });
      await this.deps.verify(this.source);
      await this.checkSyncing();
      this.noteHead(await this.source.latestHeader(), nowMs());
      this.setUp(true);
      this.attempted = true;
      onUp();
      this.deps.log.info({ provider: this.name, url: redactUrl(this.deps.provider.wsUrl!) }, 'chain WebSocket session up');
      for (;;) {
        heard = false;
        const outcome = await this.wakeup.wait(this.deps.chain.heartbeatMs);
        if (this.signal.aborted) return;
        if (!client.isOpen) throw new EthhookError('ETHHOOK_ERR_RPC_CLOSED', 'WebSocket closed', {});
        if (outcome === 'timeout' && !heard) {
          await this.checkSyncing();
          this.noteHead(await this.source.latestHeader(), nowMs());
        }
      }
    } finally {
      this.signal.removeEventListener('abort', stopOnAbort);
      client.close();
      this.current = null;
      this.currentWs = null;
      this.setUp(false);
    }
  }

  /**
   * HTTP polling; with `probe`, while a WebSocket probe retries with backoff, starting after
   * `probeAfterMs`. Returns the probe's connected client, or null when the listener stops.
   */
  private async followHttp(url: string, probe: boolean, probeAfterMs = 0): Promise<WsRpcClient | null> {
    const { chain, log, provider } = this.deps;
    const http = new HttpRpcClient({ url, requestTimeoutMs: chain.requestTimeoutMs, maxFrameBytes: chain.maxFrameBytes });
    let probed: WsRpcClient | null = null;
    // The probe ends with this polling (stop, a mismatch, or the probe's own success).
    const probeStop = new AbortController();
    const probeSignal = AbortSignal.any([this.signal, probeStop.signal]);
    const probing = (async () => {
      if (probe && probeAfterMs > 0) await sleep(probeAfterMs, probeSignal);
      for (let attempt = 1; probe && !probeSignal.aborted && !probed; attempt++) {
        await sleep(backoffDelay(attempt, chain.reconnect), probeSignal);
        if (probeSignal.aborted) return;
        try {
          const client = await this.connectWs(provider.wsUrl!);
          if (probeSignal.aborted) client.close();
          else probed = client;
          this.wakeup.wake();
        } catch (err) {
          this.deps.problem(this, 'connection', err);
        }
      }
    })();
    this.kind = 'http';
    this.current = http;
    if (probe) log.warn({ provider: this.name, url: redactUrl(url) }, 'chain WebSocket keeps failing: polling over HTTP');
    let failures = 0;
    let verified = false;
    try {
      while (!this.signal.aborted && !probed) {
        try {
          if (!verified) {
            await this.deps.verify(this.source);
            verified = true;
          }
          await this.checkSyncing();
          this.noteHead(await this.source.latestHeader(), nowMs());
          this.setUp(true);
          this.attempted = true;
          failures = 0;
          await this.wakeup.wait(chain.pollIntervalMs);
        } catch (err) {
          if (this.signal.aborted) break;
          if (isEthhookError(err, 'ETHHOOK_ERR_CHAIN_MISMATCH')) throw err;
          this.setUp(false);
          this.attempted = true;
          this.deps.problem(this, classify(err), err);
          this.changed();
          await sleep(backoffDelay(++failures, chain.reconnect), this.signal);
        }
      }
    } finally {
      http.close();
      this.current = null;
      this.setUp(false);
      const handedOver = probed as WsRpcClient | null;
      probeStop.abort();
      await probing;
      // Only a probe that connected while polling went on is handed over; on any other way out it is closed.
      if (this.signal.aborted || !handedOver) (probed as WsRpcClient | null)?.close();
    }
    if (this.signal.aborted || !probed) return null;
    log.info({ provider: this.name }, 'chain WebSocket back: leaving HTTP polling');
    return probed;
  }

  private noteHead(header: BlockHeader, seenAt: number): void {
    if (this.head === null || header.number > this.head.header.number) this.movedAt = Date.now();
    this.head = { header, seenAt };
    this.deps.metrics.providerHeight.set(this.labels, header.number);
    try {
      this.deps.onHead(this, this.head);
    } catch (err) {
      this.deps.onCallbackError(err);
    }
  }

  private changed(): void {
    try {
      this.deps.onChange(this);
    } catch (err) {
      this.deps.onCallbackError(err);
    }
  }

  private async checkSyncing(): Promise<void> {
    let syncing: boolean;
    try {
      syncing = (await this.transport.request('eth_syncing', [])) !== false;
    } catch (err) {
      // A provider without eth_syncing (method not found) is taken as synced.
      if (isEthhookError(err, 'ETHHOOK_ERR_RPC_ERROR') && err.context.rpcCode === -32601) syncing = false;
      else throw err;
    }
    if (syncing !== this.syncing) {
      this.syncing = syncing;
      this.deps.log.warn({ provider: this.name, syncing }, syncing ? 'chain provider is syncing: not read from' : 'chain provider synced');
      this.changed();
    }
  }

  private setUp(up: boolean): void {
    if (!up) this.kind = this.current?.kind ?? 'none';
    if (this.up === up) return;
    this.up = up;
    this.deps.metrics.providerUp.set(this.labels, up ? 1 : 0);
    this.changed();
  }

  private makeTransport(): RpcTransport {
    const send = async <T>(label: string, calls: number, call: (t: RpcTransport) => Promise<T>): Promise<T> => {
      for (let attempt = 1; ; attempt++) {
        const wait = this.throttle.reserve(calls, Date.now());
        if (wait > this.deps.chain.requestTimeoutMs) {
          this.throttle.refund(calls);
          throw rpcRateLimited(label, `held back ${wait} ms by the provider's throttle (${this.throttle.currentRate.toFixed(1)} calls/s)`);
        }
        if (wait > 0) await sleep(wait, this.signal);
        const transport = this.current;
        if (!transport || this.signal.aborted) throw rpcClosed(label, `provider ${this.name} has no session`);
        const started = performance.now();
        try {
          const result = await call(transport);
          this.deps.metrics.providerLatency.observe(this.labels, (performance.now() - started) / 1000);
          this.throttle.succeeded(Date.now());
          return result;
        } catch (err) {
          if (!isEthhookError(err, 'ETHHOOK_ERR_RPC_RATE_LIMITED') || attempt >= RATE_LIMIT_TRIES) throw err;
          this.throttle.limited(Date.now());
          this.deps.metrics.providerThrottled.inc(this.labels);
          const asked = typeof err.context.retryAfterMs === 'number' ? err.context.retryAfterMs : 0;
          await sleep(Math.max(asked, this.throttle.reserve(0, Date.now()), Math.ceil(1000 / this.throttle.currentRate)), this.signal);
        }
      }
    };
    // Read at each use: the session changes transport when it falls back or reconnects.
    const kind = (): 'http' | 'ws' => (this.kind === 'http' ? 'http' : 'ws');
    return {
      get kind() {
        return kind();
      },
      request: (method, params) => send(method, 1, (t) => t.request(method, params)),
      batch: (calls: RpcCall[]) =>
        send(`batch(${calls[0]?.method ?? ''} x${calls.length})`, Math.max(1, calls.length), (t) => t.batch(calls)),
      close: () => {},
    };
  }
}

const KIND_BY_CODE: Record<string, RpcErrorKind> = {
  ETHHOOK_ERR_RPC_TIMEOUT: 'timeout',
  ETHHOOK_ERR_RPC_ERROR: 'rpc',
  ETHHOOK_ERR_RPC_MALFORMED: 'malformed',
  ETHHOOK_ERR_RPC_CLOSED: 'connection',
  ETHHOOK_ERR_RPC_RANGE_TOO_LARGE: 'range-too-large',
  ETHHOOK_ERR_CHAIN_INCONSISTENT: 'inconsistent',
  ETHHOOK_ERR_RPC_RATE_LIMITED: 'rate-limited',
  ETHHOOK_ERR_RPC_INCOMPLETE: 'incomplete',
  ETHHOOK_ERR_PROVIDER_DISAGREES: 'inconsistent',
  ETHHOOK_ERR_CHAIN_MISMATCH: 'mismatch',
};

export function classify(err: unknown): RpcErrorKind {
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
