/**
 * The webhook HTTP client: one POST per attempt, an outcome for every attempt, never a throw.
 *
 * - One undici `Agent` (a keep-alive pool per origin, `pipelining` 1) whose connector is the SSRF
 *   guard's `pinnedConnector`: every new connection is checked and goes to the address checked.
 * - A global concurrency limit across all endpoints (`concurrency`, default 64); each origin may use up
 *   to that many connections.
 * - Timeouts: connect (DNS + TCP/TLS, default 5 s), headers (10 s), body idle (10 s), and a total
 *   deadline per attempt (30 s) that also bounds a receiver dripping its body.
 * - Redirects are never followed: a 3xx comes back as its status (undici 7 follows none unless a
 *   redirect interceptor is installed, and we install none).
 * - Only the first `maxResponseBytes` (4 KiB) of a response body are read; then the stream is destroyed,
 *   which closes that connection instead of draining an unbounded body.
 * - Result `{ status, durationMs, bodySnippet, retryAfter?, error? }`: `status` null when no response
 *   came; `error.kind` is `timeout`, `network` (including DNS failures) or `refused` (SSRF policy).
 *   A body that fails after the status line keeps the status (the receiver did answer) and notes the
 *   error.
 */
import { performance } from 'node:perf_hooks';
import { Agent } from 'undici';
import { isEthhookError } from '../../runtime/errors.ts';
import { ConcurrencyLimit } from './concurrency-limit.ts';
import type { AttemptOutcome, FailureKind } from './retry.ts';
import { pinnedConnector, type TargetPolicy } from './ssrf.ts';

export interface HttpClientOptions {
  policy: TargetPolicy;
  concurrency?: number;
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

const DEFAULTS = {
  concurrency: 64,
  connectTimeoutMs: 5_000,
  headersTimeoutMs: 10_000,
  bodyTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 30_000,
  maxResponseBytes: 4_096,
  userAgent: 'ethhook',
};

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEOUT', 'ETIMEDOUT']);

export class WebhookHttpClient {
  private readonly agent: Agent;
  private readonly limit: ConcurrencyLimit;
  private readonly opts: Required<Omit<HttpClientOptions, 'policy'>>;

  constructor(options: HttpClientOptions) {
    this.opts = { ...DEFAULTS, ...stripUndefined(options) };
    this.limit = new ConcurrencyLimit(this.opts.concurrency);
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
    return this.limit.run(() => this.attempt(typeof url === 'string' ? new URL(url) : url, headers, body));
  }

  /** Waits for the attempts in flight, then closes every connection. */
  async close(): Promise<void> {
    await this.agent.close();
  }

  /** Aborts the attempts in flight (they come back as network errors) and closes every connection. */
  async destroy(): Promise<void> {
    await this.agent.destroy();
  }

  private async attempt(url: URL, headers: Record<string, string>, body: string | Buffer): Promise<HttpAttempt> {
    const started = performance.now();
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), this.opts.requestTimeoutMs);
    try {
      const res = await this.agent.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': this.opts.userAgent, ...headers },
        body,
        signal: deadline.signal,
      });
      const retryAfter = res.headers['retry-after'];
      const length = Number(res.headers['content-length']);
      // A declared small body is read whole (undici enforces the declared length); others through the bound.
      const reading = length <= this.opts.maxResponseBytes ? res.body.text() : readBounded(res.body, this.opts.maxResponseBytes);
      const read = await reading.then(
        (bodySnippet) => ({ bodySnippet }),
        (err: unknown) => ({ bodySnippet: '', error: describeFailure(err, deadline.signal.aborted, this.opts.requestTimeoutMs) }),
      );
      return {
        status: res.statusCode,
        durationMs: performance.now() - started,
        ...read,
        ...(typeof retryAfter === 'string' ? { retryAfter } : {}),
      };
    } catch (err) {
      return {
        status: null,
        durationMs: performance.now() - started,
        bodySnippet: '',
        error: describeFailure(err, deadline.signal.aborted, this.opts.requestTimeoutMs),
      };
    } finally {
      clearTimeout(timer);
    }
  }
}

async function readBounded(stream: AsyncIterable<Buffer> & { destroy(): void }, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const room = max - size;
    chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
    size += Math.min(chunk.length, room);
    if (size >= max) {
      stream.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
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
