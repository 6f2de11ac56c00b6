/**
 * The demo's webhook receiver: a plain node `http` server on 127.0.0.1 (port 0: a free one) that
 * verifies the Standard Webhooks signature of every request (verify.ts) with the demo endpoint's secret.
 * It is a service main.ts starts and stops, not an actor: it stands for a customer's server, outside
 * the node.
 *
 * - `POST` with a body of at most 1 MiB: verified → 204 (counted `verified`; a repeated webhook-id,
 *   a redelivery, is also counted `duplicates`); not verified → 401 with the reason (counted `failed`,
 *   logged at warn). Anything else: 405 / 413.
 * - Every `logEvery` verified deliveries (default 10) it logs one info line with its counts, so the
 *   node's log shows webhooks arriving and verifying.
 * - `stats()` gives the counts; `close()` stops it (open keep-alive connections included).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../runtime/log.ts';
import { verifySignature } from './verify.ts';

const MAX_BODY_BYTES = 1024 * 1024;
/** webhook-ids remembered to count redeliveries; older ones are forgotten first. */
const REMEMBERED_IDS = 10_000;

export interface DemoReceiverOptions {
  /** The demo endpoint's signing secret(s). */
  secrets: readonly string[];
  logger: Logger;
  logEvery?: number;
  port?: number;
}

export interface DemoReceiverStats {
  received: number;
  verified: number;
  failed: number;
  duplicates: number;
}

export interface DemoReceiver {
  /** `http://127.0.0.1:<port>/webhooks` */
  readonly url: string;
  stats(): DemoReceiverStats;
  close(): Promise<void>;
}

export async function startDemoReceiver(options: DemoReceiverOptions): Promise<DemoReceiver> {
  const { logger } = options;
  const logEvery = options.logEvery ?? 10;
  const counts: DemoReceiverStats = { received: 0, verified: 0, failed: 0, duplicates: 0 };
  const seen = new Set<string>();

  const onVerified = (id: string) => {
    counts.verified++;
    if (seen.has(id)) counts.duplicates++;
    else {
      seen.add(id);
      if (seen.size > REMEMBERED_IDS) seen.delete(seen.values().next().value!);
    }
    if (counts.verified % logEvery === 0) logger.info({ ...counts }, `demo receiver: ${counts.verified} webhooks verified`);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'POST') return void res.writeHead(405, { allow: 'POST' }).end();
    const body = await readBody(req);
    if (body === null) return void res.writeHead(413, { connection: 'close' }).end();
    counts.received++;
    const result = verifySignature({ headers: req.headers, body, secrets: options.secrets });
    if (!result.ok) {
      counts.failed++;
      logger.warn(
        { reason: result.reason, webhookId: req.headers['webhook-id'], failed: counts.failed },
        'demo receiver: signature NOT verified',
      );
      return void res.writeHead(401, { 'content-type': 'text/plain' }).end(`${result.reason}\n`);
    }
    onVerified(result.id);
    res.writeHead(204).end();
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      logger.warn({ err: err.message }, 'demo receiver: request failed');
      if (!res.headersSent) res.writeHead(400).end();
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}/webhooks`;
  logger.info({ url }, `demo receiver listening on ${url}`);

  return {
    url,
    stats: () => ({ ...counts }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The body, or null when it exceeds MAX_BODY_BYTES (the rest is left unread). */
function readBody(req: IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.off('data', onData);
        resolve(null);
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}
