/**
 * The webhook HTTP client: one POST per attempt, an outcome for every attempt, never a throw.
 *
 * - One undici `Agent` (a keep-alive pool per origin, `pipelining` 1) whose connector is the SSRF
 *   guard's `pinnedConnector`: every new connection is checked and goes to the address checked.
 * - A global concurrency limit across all endpoints (`concurrency`, required: the Deliverer gives its
 *   scheduler's `requestSlots`); each origin may use up to that many connections.
 * - Timeouts: connect (DNS + TCP/TLS, default 5 s), headers (10 s), body idle (10 s), all three
 *   undici's own, and a total deadline per attempt (`requestTimeoutMs`, 15 s) that also bounds a
 *   receiver dripping its body.
 *   The deadline costs no timer per attempt: attempts in flight sit in start order in one set, and one
 *   timer, armed for the oldest, aborts those past it. An attempt still connecting when its deadline
 *   passes is aborted as soon as undici hands it a socket (the connect timeout bounds that wait).
 * - Redirects are never followed: a 3xx comes back as its status (undici 7 follows none unless a
 *   redirect interceptor is installed, and we install none).
 * - Only the first `maxResponseBytes` (4 KiB) of a response body are kept; a body longer than that is
 *   cut there and its connection closed instead of draining an unbounded body.
 * - Result `{ status, durationMs, bodySnippet, retryAfter?, error? }`: `status` null when no response
 *   came; `error.kind` is `timeout`, `network` (including DNS failures) or `refused` (SSRF policy).
 *   A body that fails after the status line keeps the status (the receiver did answer) and notes the
 *   error.
 * Attempts go through undici's `dispatch` with a handler of our own rather than `request`: the body
 * arrives as chunks we bound ourselves, with no response stream or abort signal per attempt.
 */
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { Agent } from '../../undici-parts.ts';
import { isEthhookError } from '../../runtime/errors.ts';
import { ConcurrencyLimit } from './concurrency-limit.ts';
import type { AttemptOutcome, FailureKind } from './retry.ts';
import { pinnedConnector, type TargetPolicy } from '../../target-policy/ssrf.ts';

export interface HttpClientOptions {
  policy: TargetPolicy;
  concurrency: number;
  connectTimeoutMs?: number;
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
  requestTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  maxResponseBytes?: number;
  userAgent?: string;
}

export interface HttpAttempt extends AttemptOutcome {
  durationMs: number;
  bodySnippet: string;
}

/** The defaults of the optional settings (`deliverer.requestTimeoutMs`'s schema reads its default here). */
export const DEFAULT_HTTP_CLIENT_OPTIONS = Object.freeze({
  connectTimeoutMs: 5_000,
  headersTimeoutMs: 10_000,
  bodyTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  keepAliveTimeoutMs: 30_000,
  maxResponseBytes: 4_096,
  userAgent: 'ethhook',
});

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEOUT', 'ETIMEDOUT']);

export class WebhookHttpClient {
  private readonly agent: Agent;
  private readonly limit: ConcurrencyLimit;
  private readonly deadlines: Deadlines;
  private readonly opts: Required<Omit<HttpClientOptions, 'policy'>>;
  /** Called by each attempt as it ends, before its caller hears of it (one function for all attempts). */
  private readonly ended = (attempt: Attempt): void => {
    this.deadlines.delete(attempt);
    this.limit.release();
  };
  /** Origin and path per URL object (URLs are read, never changed, once handed to `post`). */
  private readonly targets = new WeakMap<URL, { origin: string; path: string }>();

  constructor(options: HttpClientOptions) {
    this.opts = { ...DEFAULT_HTTP_CLIENT_OPTIONS, ...stripUndefined(options), concurrency: options.concurrency };
    this.limit = new ConcurrencyLimit(this.opts.concurrency);
    this.deadlines = new Deadlines(this.opts.requestTimeoutMs);
    this.agent = new Agent({
      connections: this.opts.concurrency,
      pipelining: 1,
      keepAliveTimeout: this.opts.keepAliveTimeoutMs,
      headersTimeout: this.opts.headersTimeoutMs,
      bodyTimeout: this.opts.bodyTimeoutMs,
      connect: pinnedConnector(options.policy, { timeout: this.opts.connectTimeoutMs }),
    });
  }

  /** Attempts running now and attempts waiting for a slot. */
  get load(): { active: number; waiting: number } {
    return { active: this.limit.active, waiting: this.limit.waiting };
  }

  post(url: string | URL, headers: Record<string, string>, body: string | Buffer): Promise<HttpAttempt> {
    return new Promise((resolve) => {
      // A free slot (nearly always): straight on, no callback queued.
      if (this.limit.tryAcquire()) this.send(url, headers, body, resolve);
      else this.limit.acquire(() => this.send(url, headers, body, resolve));
    });
  }

  /** Waits for the attempts in flight, then closes every connection. */
  async close(): Promise<void> {
    await this.agent.close();
  }

  /** Aborts the attempts in flight (they come back as network errors) and closes every connection. */
  async destroy(): Promise<void> {
    await this.agent.destroy();
  }

  /** A URL's origin and path, worked out once per URL object (the loop keeps one per endpoint). */
  private target(url: string | URL): { origin: string; path: string } {
    if (typeof url === 'string') return originAndPath(new URL(url));
    let target = this.targets.get(url);
    if (target === undefined) {
      target = originAndPath(url);
      this.targets.set(url, target);
    }
    return target;
  }

  private send(url: string | URL, headers: Record<string, string>, body: string | Buffer, resolve: (a: HttpAttempt) => void): void {
    const attempt = new Attempt(this.opts, this.ended, resolve);
    this.deadlines.add(attempt);
    // The caller's headers over ours by Object.assign onto a literal: a two-object spread here took
    // V8's slow path and cost ~10 µs per attempt in bench:deliver.
    const all = Object.assign({ 'content-type': 'application/json', 'user-agent': this.opts.userAgent }, headers);
    try {
      const { origin, path } = this.target(url);
      this.agent.dispatch({ origin, path, method: 'POST', headers: all, body }, attempt);
    } catch (err) {
      attempt.fail(err);
    }
  }
}

/** One attempt: undici's handler for the request, collecting what the outcome needs. */
class Attempt implements Dispatcher.DispatchHandler {
  readonly started = performance.now();
  private controller: Dispatcher.DispatchController | null = null;
  private status: number | null = null;
  private retryAfter: string | undefined;
  /** The body read so far: its first chunk, then the others (most answers come in one: no array for them). */
  private first: Buffer | null = null;
  private more: Buffer[] | null = null;
  private size = 0;
  private cut = false;
  private expired = false;
  private done = false;

  constructor(
    private readonly opts: { maxResponseBytes: number; requestTimeoutMs: number },
    private readonly ended: (attempt: Attempt) => void,
    private readonly resolve: (outcome: HttpAttempt) => void,
  ) {}

  /** The total deadline passed: abort now, or as soon as the request has a socket. */
  expire(): void {
    this.expired = true;
    this.controller?.abort(new Error('deadline'));
  }

  fail(err: unknown): void {
    this.finish(this.cut ? undefined : describeFailure(err, this.expired, this.opts.requestTimeoutMs));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.expired) controller.abort(new Error('deadline'));
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    // 1xx informational answers come before the real one.
    if (statusCode < 200) return;
    this.status = statusCode;
    const retryAfter = headers['retry-after'];
    if (typeof retryAfter === 'string') this.retryAfter = retryAfter;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const room = this.opts.maxResponseBytes - this.size;
    if (chunk.length <= room) {
      this.keep(chunk);
      this.size += chunk.length;
      return;
    }
    // More than we read: keep the bound, drop the connection rather than drain the rest.
    if (room > 0) this.keep(chunk.subarray(0, room));
    this.size += room;
    this.cut = true;
    controller.abort(new Error('response body bound reached'));
  }

  private keep(chunk: Buffer): void {
    if (this.first === null) this.first = chunk;
    else (this.more ??= []).push(chunk);
  }

  onResponseEnd(): void {
    this.finish(undefined);
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.fail(err);
  }

  private finish(error: { kind: FailureKind; message: string } | undefined): void {
    if (this.done) return;
    this.done = true;
    const outcome: HttpAttempt = {
      status: this.status,
      durationMs: performance.now() - this.started,
      bodySnippet:
        this.first === null
          ? ''
          : (this.more === null ? this.first : Buffer.concat([this.first, ...this.more], this.size)).toString('utf8'),
    };
    // Assigned, not spread: this runs once per attempt (conditional spreads take V8's slow path).
    if (this.retryAfter !== undefined) outcome.retryAfter = this.retryAfter;
    if (error) outcome.error = error;
    this.ended(this);
    this.resolve(outcome);
  }
}

/**
 * The total deadline of every attempt in flight, with one timer: all attempts share the same timeout,
 * so the set's insertion order is deadline order and a sweep stops at the first attempt still in time.
 */
class Deadlines {
  private readonly live = new Set<Attempt>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly timeoutMs: number) {}

  add(attempt: Attempt): void {
    this.live.add(attempt);
    if (this.timer === null) this.arm(this.timeoutMs);
  }

  delete(attempt: Attempt): void {
    this.live.delete(attempt);
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.sweep(), ms);
    // The sockets of the attempts in flight keep the process alive, not this timer.
    this.timer.unref();
  }

  private sweep(): void {
    this.timer = null;
    const now = performance.now();
    for (const attempt of this.live) {
      const left = attempt.started + this.timeoutMs - now;
      if (left > 0) {
        this.arm(left);
        return;
      }
      this.live.delete(attempt);
      attempt.expire();
    }
  }
}

function originAndPath(url: URL): { origin: string; path: string } {
  return { origin: url.origin, path: `${url.pathname}${url.search}` };
}

function describeFailure(err: unknown, deadlineHit: boolean, requestTimeoutMs: number): { kind: FailureKind; message: string } {
  if (deadlineHit) return { kind: 'timeout', message: `no complete response within ${requestTimeoutMs} ms` };
  if (isEthhookError(err, 'ETHHOOK_ERR_TARGET_REFUSED')) {
    return { kind: err.context.kind === 'dns' ? 'network' : 'refused', message: err.message };
  }
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  const text = typeof code === 'string' ? `${code}: ${message}` : message;
  return { kind: typeof code === 'string' && TIMEOUT_CODES.has(code) ? 'timeout' : 'network', message: text };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([k, v]) => v !== undefined && k !== 'policy')) as Partial<T>;
}
