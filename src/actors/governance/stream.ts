/**
 * GovernanceStream: the connection side of the governance stream. It owns the WebSocket to the server
 * and feeds the GovernanceSequencer (sequencer.ts) with frames, one at a time, in arrival order.
 *
 * - Sessions: connect, send `hello` with the recorded height, then process frames until the socket
 *   closes. The next session starts after a delay (backoff.ts: exponential from reconnect.minMs to
 *   reconnect.maxMs, jittered), forever; a session that stayed up longer than reconnect.maxMs starts the
 *   backoff over. `reconnect()` drops the current session and connects again at once.
 * - Re-requests: when the sequencer needs the stream again from seq E, `resume { from: E }` is sent at
 *   once the first time; further needs for the same E before it arrives are sent again after a backoff,
 *   so a server that keeps sending the wrong thing is not answered with a storm of resumes.
 * - Flow control: more than HIGH_WATER frames waiting for the sequencer pause the socket (TCP pushes
 *   back on the server) until the backlog is below LOW_WATER.
 * - Liveness: a ping every HEARTBEAT_MS; no pong by the next ping ends the session.
 * - Frames of a session that ended are dropped unprocessed; the next hello is sent only after the frame
 *   in flight finished, so it always carries the true height.
 */
import WebSocket from 'ws';
import type { Logger } from '../../runtime/log.ts';
import { governanceDelay, sleep, type ReconnectSpec } from './backoff.ts';
import type { GovernanceMetrics } from './metrics.ts';
import { frameText, MAX_FRAME_BYTES, PROTOCOL_VERSION, type ClientFrame } from '../../governance-protocol/protocol.ts';
import type { GovernanceSequencer } from './sequencer.ts';

export const HEARTBEAT_MS = 15_000;
const HANDSHAKE_TIMEOUT_MS = 10_000;
const HIGH_WATER = 256;
const LOW_WATER = 32;

export interface GovernanceStatus {
  connected: boolean;
  height: number;
  trustedKeys: string[];
  lastError: string | null;
}

export interface GovernanceConnectionDeps {
  url: string;
  reconnect: ReconnectSpec;
  sequencer: GovernanceSequencer;
  metrics: GovernanceMetrics;
  log: Logger;
  random?: () => number;
}

interface Session {
  socket: WebSocket;
  generation: number;
}

export class GovernanceConnection {
  private readonly abort = new AbortController();
  private running: Promise<void> | null = null;
  private session: Session | null = null;
  private generation = 0;
  private queue: Promise<void> = Promise.resolve();
  private backlog = 0;
  private forced = false;
  private wakeSleep = new AbortController();
  private connectionError: { message: string; at: number } | null = null;
  private resume: { from: number; attempt: number; timer: NodeJS.Timeout | null } | null = null;

  constructor(private readonly deps: GovernanceConnectionDeps) {}

  start(): void {
    this.deps.metrics.connected.set(0);
    this.running = this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.wakeSleep.abort();
    this.session?.socket.terminate();
    await this.running;
    await this.queue;
  }

  /** Drops the current session (if any) and connects again without waiting for the backoff. */
  reconnect(): void {
    this.forced = true;
    this.wakeSleep.abort();
    this.session?.socket.terminate();
  }

  /** Called by the sequencer (its `onNeed`): ask the server again from `from`. */
  need(from: number): void {
    const session = this.session;
    if (!session) return;
    if (this.resume?.from !== from) {
      this.clearResume();
      this.resume = { from, attempt: 1, timer: null };
      this.send(session, { type: 'resume', from });
      return;
    }
    const pending = this.resume;
    if (pending.timer) return;
    pending.timer = setTimeout(
      () => {
        pending.timer = null;
        pending.attempt++;
        if (this.session === session && this.resume === pending && this.deps.sequencer.height < from) {
          this.send(session, { type: 'resume', from });
        }
      },
      governanceDelay(pending.attempt, this.deps.reconnect, this.deps.random),
    );
  }

  status(): GovernanceStatus {
    const { sequencer } = this.deps;
    return {
      connected: this.session !== null,
      height: sequencer.height,
      trustedKeys: sequencer.trustedKeyIds,
      lastError: latest(sequencer.lastError, this.connectionError)?.message ?? null,
    };
  }

  private noteConnectionError(why: string): void {
    this.connectionError = { message: `connection: ${why}`, at: Date.now() };
  }

  private get signal(): AbortSignal {
    return this.abort.signal;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.signal.aborted) {
      const startedAt = Date.now();
      try {
        await this.runSession(await this.connect());
        failures = Date.now() - startedAt > this.deps.reconnect.maxMs ? 1 : failures + 1;
      } catch (err) {
        failures++;
        this.noteConnectionError((err as Error).message);
        if (!this.signal.aborted) {
          this.deps.log.warn(
            { url: redactUrl(this.deps.url), attempt: failures, why: (err as Error).message },
            'governance connection failed',
          );
        }
      }
      if (this.signal.aborted) break;
      if (this.forced) {
        this.forced = false;
        failures = 0;
        continue;
      }
      this.wakeSleep = new AbortController();
      await sleep(governanceDelay(failures, this.deps.reconnect, this.deps.random), this.wakeSleep.signal);
      if (this.forced) {
        this.forced = false;
        failures = 0;
      }
    }
  }

  private connect(): Promise<WebSocket> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.deps.url, {
        maxPayload: MAX_FRAME_BYTES,
        handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
        perMessageDeflate: false,
      });
      const fail = (err: Error) => {
        socket.removeAllListeners();
        socket.on('error', () => {});
        socket.terminate();
        this.signal.removeEventListener('abort', onAbort);
        reject(err);
      };
      const onAbort = () => fail(new Error('stopped'));
      this.signal.addEventListener('abort', onAbort, { once: true });
      socket.once('error', fail);
      socket.once('close', (code) => fail(new Error(`closed during handshake (${code})`)));
      socket.once('unexpected-response', (_req, res) => fail(new Error(`HTTP ${res.statusCode} on upgrade`)));
      socket.once('open', () => {
        socket.removeAllListeners();
        this.signal.removeEventListener('abort', onAbort);
        resolve(socket);
      });
    });
  }

  /** One session: resolves when the socket closes, for whatever reason. */
  private async runSession(socket: WebSocket): Promise<void> {
    const session: Session = { socket, generation: ++this.generation };
    const closed = new Promise<string>((resolve) => {
      socket.on('close', (code, reason) => resolve(`closed (${code}${reason.length ? ` ${reason.toString().slice(0, 80)}` : ''})`));
    });
    socket.on('error', (err) => {
      this.noteConnectionError(err.message);
      socket.terminate();
    });
    let alive = true;
    socket.on('pong', () => (alive = true));
    const heartbeat = setInterval(() => {
      if (!alive) return socket.terminate();
      alive = false;
      socket.ping();
    }, HEARTBEAT_MS);
    socket.on('message', (data, isBinary) => this.enqueue(session, frameText(data, isBinary)));
    // The frame in flight from the previous session must finish before the height is announced.
    socket.pause();
    await this.queue;
    if (socket.readyState === WebSocket.OPEN && !this.signal.aborted) {
      this.session = session;
      // A connection problem is over once a session is up: lastError then shows only what still stands.
      this.connectionError = null;
      this.deps.metrics.connected.set(1);
      this.send(session, { type: 'hello', protocol: PROTOCOL_VERSION, lastApplied: this.deps.sequencer.height });
      socket.resume();
      this.deps.log.info({ url: redactUrl(this.deps.url), height: this.deps.sequencer.height }, 'governance stream connected');
    }
    const why = await closed;
    clearInterval(heartbeat);
    if (this.session === session) {
      this.session = null;
      this.deps.metrics.connected.set(0);
      this.clearResume();
    }
    this.noteConnectionError(why);
    if (!this.signal.aborted) this.deps.log.warn({ url: redactUrl(this.deps.url), why }, 'governance stream disconnected');
  }

  private enqueue(session: Session, text: string | null): void {
    this.backlog++;
    if (this.backlog >= HIGH_WATER && !session.socket.isPaused) session.socket.pause();
    this.queue = this.queue.then(async () => {
      this.backlog--;
      if (this.backlog <= LOW_WATER && session.socket.isPaused && this.session === session) session.socket.resume();
      if (this.session !== session || this.signal.aborted) return;
      await this.deps.sequencer.handle(text);
      if (this.resume && this.deps.sequencer.height >= this.resume.from) this.clearResume();
    });
  }

  private send(session: Session, frame: ClientFrame): void {
    if (session.socket.readyState === WebSocket.OPEN) session.socket.send(JSON.stringify(frame));
  }

  private clearResume(): void {
    if (this.resume?.timer) clearTimeout(this.resume.timer);
    this.resume = null;
  }
}

/** The URL without credentials or query, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid url)';
  }
}

type Noted = { message: string; at: number } | null;
const latest = (a: Noted, b: Noted): Noted => (!a ? b : !b ? a : a.at >= b.at ? a : b);
