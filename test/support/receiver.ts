/**
 * A real webhook receiver for tests: an HTTP server on 127.0.0.1, port 0.
 *
 * - Records every request (arrival order, path, headers, raw body, parsed JSON) unless `record: false`
 *   (benchmarks), and checks its Standard Webhooks signature with the npm `standardwebhooks` library
 *   against the secrets of the request's path (`verified`: true / false, null when no secret is known).
 * - Answers as its behaviour says, per request: a status (with headers, body, delay), `hang` (never
 *   answers; the client must time out) or `destroy` (resets the connection). Helpers build the usual
 *   behaviours: `ok`, `status`, `sequence`, `failRatio` (seeded, reproducible).
 * - `close()` ends hanging requests and every connection, then the server.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export type Reply =
  { status: number; headers?: Record<string, string>; body?: string; delayMs?: number } | { hang: true } | { destroy: true };

export interface Incoming {
  seq: number;
  at: number;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The client's port: requests sharing it came over one kept-alive connection. */
  remotePort: number | undefined;
  body: string;
  webhookId: string | undefined;
  json: unknown;
  verified: boolean | null;
}

export interface ReceivedRequest extends Incoming {
  reply: Reply;
}

export type Behaviour = (req: Incoming) => Reply;

export interface ReceiverOptions {
  behaviour?: Behaviour;
  /** Secrets to verify with, for every path or per path. */
  secrets?: readonly string[] | ((path: string) => readonly string[]);
  /** Keep every request in `requests` (default true). Counting always happens. */
  record?: boolean;
}

export interface Receiver {
  readonly url: string;
  readonly port: number;
  readonly requests: readonly ReceivedRequest[];
  /** Requests seen, recorded or not. */
  readonly count: number;
  /** Requests being answered now, and the most there ever were at once. */
  readonly inFlight: number;
  readonly maxInFlight: number;
  setBehaviour(b: Behaviour): void;
  setSecrets(s: ReceiverOptions['secrets']): void;
  /** Distinct `webhook-id`s among the requests answered 2xx. */
  deliveredIds(): Set<string>;
  waitFor(predicate: (r: Receiver) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export const ok: Behaviour = () => ({ status: 200, body: 'ok' });

export const status =
  (code: number, headers?: Record<string, string>): Behaviour =>
  () => ({ status: code, ...(headers ? { headers } : {}) });

/** The replies in turn, then `then` for every later request. */
export function sequence(replies: readonly Reply[], then: Behaviour = ok): Behaviour {
  let i = 0;
  return (req) => (i < replies.length ? (replies[i++] as Reply) : then(req));
}

/** Fails `ratio` of the requests with one of `failures` (chosen by the same seeded RNG), else `then`. */
export function failRatio(ratio: number, seed: number, failures: readonly Reply[] = [{ status: 500 }], then: Behaviour = ok): Behaviour {
  const random = mulberry32(seed);
  return (req) => (random() < ratio ? (failures[Math.floor(random() * failures.length)] as Reply) : then(req));
}

/** A small, fast, seeded PRNG (Mulberry32): the same seed gives the same sequence in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export async function startReceiver(options: ReceiverOptions = {}): Promise<Receiver> {
  let behaviour = options.behaviour ?? ok;
  let secrets = options.secrets;
  const record = options.record ?? true;
  const requests: ReceivedRequest[] = [];
  const pending = new Set<ServerResponse>();
  const timers = new Set<NodeJS.Timeout>();
  let count = 0;
  let inFlight = 0;
  let maxInFlight = 0;

  const verify = (path: string, body: string, headers: IncomingHttpHeaders): boolean | null => {
    const keys = typeof secrets === 'function' ? secrets(path) : secrets;
    if (!keys || keys.length === 0) return null;
    const flat: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) if (typeof v === 'string') flat[k] = v;
    return keys.some((secret) => {
      try {
        new Webhook(secret).verify(body, flat, { jsonParse: false });
        return true;
      } catch {
        return false;
      }
    });
  };

  const handle = (req: IncomingMessage, res: ServerResponse, body: string) => {
    const path = req.url ?? '/';
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      json = undefined;
    }
    const incoming: Incoming = {
      seq: count++,
      at: Date.now(),
      method: req.method ?? '',
      path,
      headers: req.headers,
      remotePort: req.socket.remotePort,
      body,
      webhookId: typeof req.headers['webhook-id'] === 'string' ? req.headers['webhook-id'] : undefined,
      json,
      verified: record ? verify(path, body, req.headers) : null,
    };
    const reply = behaviour(incoming);
    if (record) requests.push({ ...incoming, reply });
    if ('destroy' in reply) {
      req.socket.destroy();
      return;
    }
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    pending.add(res);
    res.on('close', () => {
      inFlight--;
      pending.delete(res);
    });
    if ('hang' in reply) return;
    const send = () => {
      res.writeHead(reply.status, reply.headers);
      res.end(reply.body ?? '');
    };
    if (!reply.delayMs) return send();
    const t = setTimeout(() => {
      timers.delete(t);
      send();
    }, reply.delayMs);
    timers.add(t);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  const receiver: Receiver = {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    get count() {
      return count;
    },
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    setBehaviour(b) {
      behaviour = b;
    },
    setSecrets(s) {
      secrets = s;
    },
    deliveredIds() {
      const ids = new Set<string>();
      for (const r of requests) {
        if ('status' in r.reply && r.reply.status >= 200 && r.reply.status < 300 && r.webhookId) ids.add(r.webhookId);
      }
      return ids;
    },
    async waitFor(predicate, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs;
      while (!predicate(receiver)) {
        if (Date.now() > until) throw new Error(`receiver: condition not met within ${timeoutMs} ms (${count} requests seen)`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const res of pending) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return receiver;
}
