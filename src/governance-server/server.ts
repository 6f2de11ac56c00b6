/**
 * The reference governance server: signs governance messages with an Ed25519 key read from a file,
 * keeps them in an ordered log (message-log.ts, optionally a JSON-lines file) and streams them to every
 * connected node over WebSocket (protocol: docs/governance.md). For development, tests and drills.
 *
 * - `startGovernanceServer({ host = '127.0.0.1', port = 0, keyFile, keyId?, store?, logger? })`
 *   listens and resolves with the handle below. `keyId`, when given, must be the key's fingerprint
 *   (keys.ts): a node names keys by fingerprint, so any other id would be rejected by every node.
 * - A node's `hello { lastApplied }` starts its stream at lastApplied + 1: the backlog, then every new
 *   message as it is appended. `resume { from }` restarts its stream at `from`. Any other frame closes
 *   the connection with 1008 and the reason.
 * - `append(type, payload)` validates the payload with the protocol's schema (the server never signs
 *   what a node would reject), signs it with the current key, writes it to the log, broadcasts it, and
 *   resolves with its seq. Appends are serialized.
 * - `rotateKey(newKeyFile, newKeyId?, { retire = true })` appends a `key.rotate` signed by the current
 *   key, adding the new key (and retiring the current one unless retire is false), then signs every
 *   later message with the new key. Resolves with the rotation's seq.
 * - Test-only: `injectRaw(frame)` sends any text (or JSON of any value) to every node that said hello,
 *   outside the log (forged, out-of-order, malformed frames); `dropConnections()` cuts every socket;
 *   `holdBroadcast(true)` keeps appended messages from being pushed live (nodes get them only through a
 *   hello or a resume) until `holdBroadcast(false)`, so a test can make a node miss messages.
 * - `close()` terminates the connections, stops listening and closes the log file.
 * - With `publishToken`, `POST /messages` publishes over HTTP what `append` does (publish.ts).
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KeyObject } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { keyIdOf, parsePrivateKey, signMessage, spkiBase64 } from '../governance-protocol/keys.ts';
import {
  clientFrameSchema,
  frameText,
  parsePayload,
  type GovernancePayloadInput,
  type GovernanceType,
  type SignedMessage,
} from '../governance-protocol/protocol.ts';
import { EthhookError } from '../runtime/errors.ts';
import { Serial } from '../runtime/serial.ts';
import type { Logger } from '../runtime/log.ts';
import { MessageLog } from './message-log.ts';
import { handlePublish, MIN_PUBLISH_TOKEN_LENGTH } from './publish.ts';

export interface GovernanceServerOptions {
  host?: string;
  port?: number;
  /** PEM (or base64 DER) PKCS#8 Ed25519 private key. */
  keyFile: string;
  keyId?: string;
  /** JSON-lines file of the log; absent: the log lives in memory only. */
  store?: string;
  /** Enables `POST /messages` for this bearer token (publish.ts); at least 16 characters. */
  publishToken?: string;
  logger?: Logger;
}

export interface GovernanceServer {
  readonly url: string;
  /** Fingerprint of the key that signs new messages. */
  readonly keyId: string;
  /** seq of the last message in the log (0 when empty). */
  readonly head: number;
  /** Nodes connected and past their hello. */
  readonly clients: number;
  messages(): readonly SignedMessage[];
  append<T extends GovernanceType>(type: T, payload: GovernancePayloadInput<T>): Promise<number>;
  rotateKey(newKeyFile: string, newKeyId?: string, options?: { retire?: boolean }): Promise<number>;
  injectRaw(frame: unknown): number;
  dropConnections(): void;
  holdBroadcast(hold: boolean): void;
  close(): Promise<void>;
}

interface Client {
  socket: WebSocket;
  /** Next seq to send; null before the hello. */
  next: number | null;
}

const serverError = (message: string, context: Record<string, unknown> = {}) =>
  new EthhookError('ETHHOOK_ERR_GOVERNANCE_SERVER', message, context);

export async function loadSigningKey(keyFile: string, keyId?: string): Promise<{ key: KeyObject; keyId: string }> {
  let text: string;
  try {
    text = await readFile(keyFile, 'utf8');
  } catch (err) {
    throw serverError(`cannot read key file ${keyFile}: ${(err as Error).message}`, { keyFile });
  }
  const key = parsePrivateKey(text);
  const fingerprint = keyIdOf(key);
  if (keyId !== undefined && keyId !== fingerprint) {
    throw serverError(`key id "${keyId}" is not the fingerprint of ${keyFile} (${fingerprint}); nodes name keys by fingerprint`, {
      keyFile,
      keyId,
      fingerprint,
    });
  }
  return { key, keyId: fingerprint };
}

export async function startGovernanceServer(options: GovernanceServerOptions): Promise<GovernanceServer> {
  if (options.publishToken !== undefined && options.publishToken.length < MIN_PUBLISH_TOKEN_LENGTH) {
    throw serverError(`the publish token must be at least ${MIN_PUBLISH_TOKEN_LENGTH} characters`);
  }
  let signer = await loadSigningKey(options.keyFile, options.keyId);
  const log = await MessageLog.open(options.store);
  const logger = options.logger;
  const clients = new Set<Client>();
  const writes = new Serial();
  let held = false;

  /** Set once appends can run (below), when a publish token is configured. */
  let publish: ((req: IncomingMessage, res: ServerResponse) => boolean) | null = null;
  const http: Server = createServer((req, res) => {
    if (publish?.(req, res)) return;
    res.writeHead(426, { 'content-type': 'text/plain' }).end('governance stream: connect with a WebSocket\n');
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      http.off('error', reject);
      resolve();
    });
  }).catch(async (err: Error) => {
    await log.close();
    throw serverError(`cannot listen on ${options.host ?? '127.0.0.1'}:${options.port ?? 0}: ${err.message}`);
  });
  // Attached after listen succeeded: ws re-emits the HTTP server's errors, which would escape a
  // failed listen.
  const wss = new WebSocketServer({ server: http, maxPayload: 4096, perMessageDeflate: false });
  wss.on('error', (err) => logger?.error({ err: err.message }, 'governance server: WebSocket server error'));

  const pump = (client: Client) => {
    while (client.next !== null && client.next <= log.head && client.socket.readyState === client.socket.OPEN) {
      client.socket.send(JSON.stringify(log.at(client.next)));
      client.next++;
    }
  };

  wss.on('connection', (socket) => {
    const client: Client = { socket, next: null };
    clients.add(client);
    socket.on('close', () => clients.delete(client));
    socket.on('error', () => socket.terminate());
    socket.on('message', (data, isBinary) => {
      const text = frameText(data, isBinary);
      let raw: unknown = null;
      try {
        raw = text === null ? null : JSON.parse(text);
      } catch {
        // raw stays null: reported below as an invalid frame
      }
      const frame = clientFrameSchema.safeParse(raw);
      if (!frame.success) {
        const reason = `invalid frame: ${frame.error.issues[0]?.message ?? 'invalid'}`.slice(0, 120);
        logger?.warn({ reason }, 'governance server: client frame rejected');
        socket.close(1008, reason);
        return;
      }
      if (frame.data.type === 'hello') {
        if (frame.data.lastApplied > log.head) {
          logger?.warn({ lastApplied: frame.data.lastApplied, head: log.head }, 'governance server: a node is ahead of this log');
        }
        client.next = frame.data.lastApplied + 1;
      } else {
        client.next = frame.data.from;
      }
      pump(client);
    });
  });

  const appendSigned = async (type: GovernanceType, payload: unknown): Promise<number> => {
    const parsed = parsePayload(type, payload);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new EthhookError(
        'ETHHOOK_ERR_GOVERNANCE_MESSAGE_INVALID',
        `invalid ${type} payload: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`,
        { type },
      );
    }
    // What is signed and sent is the normalized payload, as plain JSON.
    const normalized: unknown = JSON.parse(JSON.stringify(parsed.data));
    const seq = log.head + 1;
    const message: SignedMessage = {
      seq,
      type,
      payload: normalized,
      keyId: signer.keyId,
      signature: signMessage(signer.key, seq, type, normalized),
    };
    await log.append(message);
    if (!held) for (const client of clients) pump(client);
    logger?.info({ seq, type, keyId: signer.keyId }, 'governance message appended');
    return seq;
  };

  const publishToken = options.publishToken;
  if (publishToken !== undefined) {
    publish = (req, res) =>
      handlePublish(req, res, { token: publishToken, append: (type, payload) => writes.run(() => appendSigned(type, payload)), logger });
  }

  const address = http.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `ws://${host}:${address.port}/`;
  logger?.info({ url, keyId: signer.keyId, head: log.head, store: options.store ?? null }, 'governance server listening');

  return {
    url,
    get keyId() {
      return signer.keyId;
    },
    get head() {
      return log.head;
    },
    get clients() {
      return [...clients].filter((c) => c.next !== null).length;
    },
    messages: () => log.all(),
    append: (type, payload) => writes.run(() => appendSigned(type, payload)),
    rotateKey: (newKeyFile, newKeyId, rotateOptions = {}) =>
      writes.run(async () => {
        const next = await loadSigningKey(newKeyFile, newKeyId);
        const retire = (rotateOptions.retire ?? true) ? [signer.keyId] : [];
        const seq = await appendSigned('key.rotate', { add: { keyId: next.keyId, publicKey: spkiBase64(next.key) }, retire });
        signer = next;
        return seq;
      }),
    injectRaw(frame) {
      const text = typeof frame === 'string' ? frame : String(JSON.stringify(frame));
      let reached = 0;
      for (const client of clients) {
        if (client.next === null || client.socket.readyState !== client.socket.OPEN) continue;
        client.socket.send(text);
        reached++;
      }
      return reached;
    },
    dropConnections() {
      for (const client of clients) client.socket.terminate();
    },
    holdBroadcast(hold) {
      held = hold;
      if (!held) for (const client of clients) pump(client);
    },
    async close() {
      for (const client of clients) client.socket.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await writes.settled();
      await log.close();
    },
  };
}
