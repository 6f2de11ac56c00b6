/**
 * Stream clients for tests and the stream benchmark: a WebSocket client (`ws`) and an SSE client
 * (node `http`, its own parser), both recording what they receive, and both answering a refused
 * connection with its status, headers and JSON body instead of throwing.
 */
import { request, type IncomingMessage } from 'node:http';
import { WebSocket } from 'ws';
import { wsText } from './ws-text.ts';

export interface Refused {
  status: number;
  headers: IncomingMessage['headers'];
  /** The admin API's error body (`{ error: { code, message } }`) when it is JSON, else the text. */
  body: unknown;
}

export interface SseBlock {
  id?: string;
  event?: string;
  data?: string;
}

export interface StreamClientHandle {
  readonly transport: 'websocket' | 'sse';
  /** Called with each event's JSON text, in arrival order. */
  onMessage: (text: string) => void;
  /** Stops reading from the socket (the server's writes pile up in the kernel, then in its buffers). */
  pause(): void;
  resume(): void;
  close(): void;
  /** Resolves when the connection is over, with how it ended. */
  readonly ended: Promise<{ code?: number; reason?: string; error?: SseBlock }>;
}

async function readBody(res: IncomingMessage): Promise<Refused> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.statusCode ?? 0, headers: res.headers, body };
}

export function openWebSocket(url: string, headers: Record<string, string> = {}): Promise<StreamClientHandle | Refused> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    let settle: (v: { code?: number; reason?: string }) => void = () => {};
    const ended = new Promise<{ code?: number; reason?: string }>((r) => (settle = r));
    const handle: StreamClientHandle = {
      transport: 'websocket',
      onMessage: () => {},
      pause: () => ws.pause(),
      resume: () => ws.resume(),
      close: () => ws.close(),
      ended,
    };
    ws.on('message', (data) => handle.onMessage(wsText(data)));
    ws.once('close', (code, reason) => settle({ code, reason: reason.toString() }));
    ws.once('open', () => resolve(handle));
    ws.once('unexpected-response', (_req, res) => void readBody(res).then(resolve, reject));
    ws.on('error', (err) => {
      if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.CLOSED) reject(err);
    });
  });
}

export function openSse(
  url: string,
  headers: Record<string, string> = {},
): Promise<(StreamClientHandle & { comments: string[]; blocks: number }) | Refused> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: 'text/event-stream', ...headers }, agent: false });
    req.once('error', reject);
    req.once('response', (res) => {
      if (res.statusCode !== 200) return void readBody(res).then(resolve, reject);
      let settle: (v: { error?: SseBlock }) => void = () => {};
      const ended = new Promise<{ error?: SseBlock }>((r) => (settle = r));
      let error: SseBlock | undefined;
      let rest = '';
      const handle = {
        transport: 'sse' as const,
        onMessage: (_text: string) => {},
        pause: () => res.pause(),
        resume: () => res.resume(),
        close: () => req.destroy(),
        ended,
        comments: [] as string[],
        blocks: 0,
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const text = rest + chunk;
        let start = 0;
        let end: number;
        while ((end = text.indexOf('\n\n', start)) >= 0) {
          const block = parseBlock(text.slice(start, end), handle.comments);
          start = end + 2;
          if (block === null) continue;
          handle.blocks++;
          if (block.event === 'error') error = block;
          else if (block.data !== undefined) handle.onMessage(block.data);
        }
        rest = text.slice(start);
      });
      res.once('close', () => settle(error ? { error } : {}));
      res.once('error', () => {});
      resolve(handle);
    });
    req.end();
  });
}

/** One SSE block: its fields, or null for a block of comments only (heartbeats). */
function parseBlock(text: string, comments: string[]): SseBlock | null {
  const block: SseBlock = {};
  let fields = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(':')) {
      comments.push(line.slice(1).trim());
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (name === 'id' || name === 'event') block[name] = value;
    else if (name === 'data') block.data = block.data === undefined ? value : `${block.data}\n${value}`;
    fields++;
  }
  return fields === 0 ? null : block;
}

export function isRefused(x: unknown): x is Refused {
  return typeof x === 'object' && x !== null && 'status' in x;
}
