/**
 * The loopback webhook receiver of bench:e2e, in a process of its own (a customer's server is not in
 * the node's process, and its CPU must not be the bench driver's).
 *
 * Child side (`runReceiverChild`): node:http on 127.0.0.1, a free port. Every request is verified with
 * the npm `standardwebhooks` library (the reference implementation: timestamp within 5 minutes, HMAC of
 * id.timestamp.body under the path's secret) and counted per path as valid or invalid; a path nobody
 * registered counts as invalid. Per registered path:
 * - `mode`: `ok` answers 204, `fail` answers 503, `hang` never answers (the request stays open until
 *   the client gives up and closes it);
 * - the Tick event's `seq` (topics[2]; 0, 1, 2, ... per contract) of each valid webhook goes into a
 *   bitmap, so `distinct` counts each log once and `duplicates` counts the copies;
 * - `first` / `last`: receipt times (ms since the epoch, sub-millisecond: timeOrigin + performance.now())
 *   of the first and last valid webhook;
 * - with `track`, the transaction hash and receipt time of every valid webhook are kept until read
 *   (`takeTracked`), for latencies;
 * - `sample`: one body as received, so a peer can send payloads of the same size.
 * The parent talks to it over the fork's IPC channel; the child exits when the channel closes.
 *
 * Parent side (`startReceiver(benchFile)`): forks `benchFile --receiver` (the bench dispatches on that
 * flag) and returns a handle whose calls are bounded in time.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Webhook } from 'standardwebhooks';

export type Mode = 'ok' | 'fail' | 'hang';

export interface PathStats {
  valid: number;
  invalid: number;
  distinct: number;
  duplicates: number;
  hung: number;
  first: number | null;
  last: number | null;
}

export interface ReceiverStats {
  paths: Record<string, PathStats>;
  /** Requests to paths nobody registered (all invalid). */
  unknown: number;
  invalid: number;
  valid: number;
}

type Request =
  | { op: 'endpoint'; path: string; secret: string; mode: Mode; track: boolean }
  | { op: 'mode'; path: string; mode: Mode }
  | { op: 'stats' }
  | { op: 'tracked'; path: string }
  | { op: 'sample'; path: string };

const IPC_TIMEOUT_MS = 10_000;
const now = () => performance.timeOrigin + performance.now();

interface PathState {
  webhook: Webhook;
  mode: Mode;
  track: boolean;
  stats: PathStats;
  seen: Uint8Array;
  tracked: Array<[string, number]>;
  sample: { body: string; headers: Record<string, string> } | null;
}

export function runReceiverChild(): void {
  const paths = new Map<string, PathState>();
  const hanging = new Set<ServerResponse>();
  let unknown = 0;

  const mark = (p: PathState, seq: number): boolean => {
    if (seq >= p.seen.length * 8) {
      const grown = new Uint8Array(Math.max(p.seen.length * 2, (seq >> 3) + 1));
      grown.set(p.seen);
      p.seen = grown;
    }
    const bit = 1 << (seq & 7);
    const fresh = (p.seen[seq >> 3]! & bit) === 0;
    p.seen[seq >> 3]! |= bit;
    return fresh;
  };

  const handle = (req: IncomingMessage, res: ServerResponse, body: string) => {
    const at = now();
    const p = paths.get(req.url ?? '');
    if (!p) {
      unknown++;
      res.statusCode = 404;
      res.end();
      return;
    }
    let payload: { data?: { topics?: string[]; transactionHash?: string } } | undefined;
    try {
      payload = p.webhook.verify(body, req.headers as Record<string, string>) as typeof payload;
    } catch {
      payload = undefined;
    }
    if (payload === undefined) p.stats.invalid++;
    else {
      p.stats.valid++;
      p.stats.first ??= at;
      p.stats.last = at;
      p.sample ??= { body, headers: { ...(req.headers as Record<string, string>) } };
      const seqTopic = payload.data?.topics?.[2];
      if (seqTopic !== undefined) {
        if (mark(p, Number.parseInt(seqTopic, 16))) p.stats.distinct++;
        else p.stats.duplicates++;
      } else p.stats.distinct++;
      if (p.track && payload.data?.transactionHash) p.tracked.push([payload.data.transactionHash, at]);
    }
    if (p.mode === 'hang') {
      p.stats.hung++;
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      return;
    }
    res.statusCode = p.mode === 'ok' ? 204 : 503;
    res.end();
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, chunks.length === 1 ? chunks[0]!.toString() : Buffer.concat(chunks).toString()));
  });
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 130_000;
  server.requestTimeout = 0;

  const stats = (): ReceiverStats => {
    const out: ReceiverStats = { paths: {}, unknown, invalid: unknown, valid: 0 };
    for (const [path, p] of paths) {
      out.paths[path] = { ...p.stats };
      out.invalid += p.stats.invalid;
      out.valid += p.stats.valid;
    }
    return out;
  };

  process.on('message', (msg: { id: number; req: Request }) => {
    const { id, req } = msg;
    let result: unknown = null;
    if (req.op === 'endpoint') {
      paths.set(req.path, {
        webhook: new Webhook(req.secret),
        mode: req.mode,
        track: req.track,
        stats: { valid: 0, invalid: 0, distinct: 0, duplicates: 0, hung: 0, first: null, last: null },
        seen: new Uint8Array(1024),
        tracked: [],
        sample: null,
      });
    } else if (req.op === 'mode') {
      const p = paths.get(req.path);
      if (p) p.mode = req.mode;
    } else if (req.op === 'stats') {
      result = stats();
    } else if (req.op === 'tracked') {
      const p = paths.get(req.path);
      result = p?.tracked ?? [];
      if (p) p.tracked = [];
    } else if (req.op === 'sample') {
      result = paths.get(req.path)?.sample ?? null;
    }
    process.send?.({ id, result });
  });
  process.on('disconnect', () => {
    for (const res of hanging) res.destroy();
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as { port: number }).port }));
}

export interface ReceiverHandle {
  readonly origin: string;
  readonly pid: number;
  /** Registers `path` with the endpoint's secret; webhooks to it are verified and counted from now. */
  addEndpoint(path: string, secret: string, mode?: Mode, track?: boolean): Promise<void>;
  setMode(path: string, mode: Mode): Promise<void>;
  stats(): Promise<ReceiverStats>;
  /** The [transactionHash, receivedAt] pairs of `path` since the last call. */
  takeTracked(path: string): Promise<Array<[string, number]>>;
  sample(path: string): Promise<{ body: string; headers: Record<string, string> } | null>;
  stop(): Promise<void>;
}

export async function startReceiver(benchFile: string, execArgv: string[]): Promise<ReceiverHandle> {
  const child: ChildProcess = fork(benchFile, ['--receiver'], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the receiver did not listen within 30 s')), 30_000);
    child.once('message', (m: { port: number }) => {
      clearTimeout(timer);
      resolve(m.port);
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`the receiver exited with ${child.exitCode ?? child.signalCode}`));
    });
  });
  let nextId = 0;
  const waiting = new Map<number, (result: unknown) => void>();
  child.on('message', (m: { id?: number; result?: unknown }) => {
    if (m.id === undefined) return;
    waiting.get(m.id)?.(m.result);
    waiting.delete(m.id);
  });
  const call = <T>(req: Request): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = ++nextId;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`the receiver did not answer ${req.op} within ${IPC_TIMEOUT_MS} ms`));
      }, IPC_TIMEOUT_MS);
      waiting.set(id, (result) => {
        clearTimeout(timer);
        resolve(result as T);
      });
      child.send({ id, req });
    });
  return {
    origin: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    addEndpoint: (path, secret, mode = 'ok', track = false) => call({ op: 'endpoint', path, secret, mode, track }),
    setMode: (path, mode) => call({ op: 'mode', path, mode }),
    stats: () => call({ op: 'stats' }),
    takeTracked: (path) => call({ op: 'tracked', path }),
    sample: (path) => call({ op: 'sample', path }),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (child.connected) child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
