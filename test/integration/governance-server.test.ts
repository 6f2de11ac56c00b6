// The reference governance server: its log file (persisted, reopened, a torn last line cut, a corrupt
// line refused), what it agrees to sign, the node-facing protocol seen from a raw WebSocket client,
// and its command line run as a real child process (key generation, usage errors, serve until SIGTERM).
import { spawn, spawnSync } from 'node:child_process';
import { appendFile, chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { parsePublicKey, verifyMessage } from '../../src/governance-protocol/keys.ts';
import type { SignedMessage } from '../../src/governance-protocol/protocol.ts';
import { runGovernanceServe, startGovernanceServer, type GovernanceServer } from '../../src/governance-server/index.ts';
import { isEthhookError } from '../../src/runtime/errors.ts';
import { endpointPayload, makeKey, tempDir, type TestKey } from '../support/governance.ts';
import { waitFor } from '../support/kernel.ts';
import { wsText } from '../support/ws-text.ts';

const MAIN = new URL('../../src/governance-server/main.ts', import.meta.url).pathname;
const ROOT = new URL('../..', import.meta.url).pathname;

let tmp: Awaited<ReturnType<typeof tempDir>>;
let k1: TestKey;
let k2: TestKey;
let cleanups: Array<() => Promise<unknown>> = [];
let files = 0;
const fresh = (name: string) => join(tmp.dir, `${++files}-${name}`);

beforeAll(async () => {
  tmp = await tempDir();
  k1 = await makeKey(tmp.dir, 'k1');
  k2 = await makeKey(tmp.dir, 'k2');
});
afterEach(async () => {
  for (const close of cleanups.reverse()) await close().catch(() => {});
  cleanups = [];
});
afterAll(async () => {
  await tmp.remove();
});

async function server(options: { store?: string; keyFile?: string } = {}): Promise<GovernanceServer> {
  const s = await startGovernanceServer({ keyFile: options.keyFile ?? k1.file, store: options.store });
  cleanups.push(() => s.close());
  return s;
}

const codeOf = (err: unknown) => (isEthhookError(err) ? err.code : String(err));

/** A raw protocol client: collects frames, reports the close. */
async function client(url: string) {
  const socket = new WebSocket(url);
  const frames: SignedMessage[] = [];
  let closed: { code: number; reason: string } | null = null;
  socket.on('message', (data) => frames.push(JSON.parse(wsText(data)) as SignedMessage));
  socket.on('close', (code, reason) => (closed = { code, reason: String(reason) }));
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  cleanups.push(async () => socket.terminate());
  return { socket, frames, closed: () => closed, send: (v: unknown) => socket.send(typeof v === 'string' ? v : JSON.stringify(v)) };
}

describe('the message log', () => {
  it('is persisted as JSON lines, reopened as it was, and continues after a torn last line', async () => {
    const log = fresh('log.jsonl');
    const first = await startGovernanceServer({ keyFile: k1.file, store: log });
    for (const n of [1, 2, 3]) await first.append('endpoint.upsert', endpointPayload(n));
    const written = first.messages().map((m) => ({ ...m }));
    await first.close();
    const lines = (await readFile(log, 'utf8'))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as unknown);
    expect(lines).toEqual(written);

    await appendFile(log, '{"seq":4,"type":"endpoint.up'); // a write cut by a crash
    const second = await server({ store: log });
    expect(second.messages()).toEqual(written);
    expect(await second.append('endpoint.pause', { id: 'ep_1' })).toBe(4);
    expect((await readFile(log, 'utf8')).trimEnd().split('\n')).toHaveLength(4);
  });

  it('is readable by its owner only (0600), also when an older server left it 0644', async () => {
    const log = fresh('log.jsonl');
    const first = await startGovernanceServer({ keyFile: k1.file, store: log });
    await first.append('endpoint.upsert', endpointPayload(1));
    await first.close();
    expect((await stat(log)).mode & 0o777).toBe(0o600);
    await chmod(log, 0o644);
    const second = await server({ store: log });
    expect(second.messages()).toHaveLength(1);
    expect((await stat(log)).mode & 0o777).toBe(0o600);
  });

  it('refuses a file with a bad line or a hole in the sequence, naming the line', async () => {
    const log = fresh('log.jsonl');
    const first = await startGovernanceServer({ keyFile: k1.file, store: log });
    for (const n of [1, 2, 3]) await first.append('endpoint.upsert', endpointPayload(n));
    await first.close();
    const [a, , c] = (await readFile(log, 'utf8')).trimEnd().split('\n');
    for (const content of [`${a}\nnot json\n${c}\n`, `${a}\n${c}\n`]) {
      await writeFile(log, content);
      const err = await startGovernanceServer({ keyFile: k1.file, store: log }).catch((e: unknown) => e);
      expect(codeOf(err)).toBe('ETHHOOK_ERR_GOVERNANCE_SERVER');
      expect((err as Error).message).toContain('line 2');
    }
  });
});

describe('signing', () => {
  it('signs the normalized payload with the current key, and refuses what a node would reject', async () => {
    const s = await server();
    await s.append('subscription.upsert', {
      id: 'sub_1',
      endpointId: 'ep_1',
      chainId: 1,
      addresses: ['0xABCDEF0000000000000000000000000000000001'],
      topics: [[]],
    });
    const m = s.messages()[0]!;
    expect(m.payload).toEqual({
      id: 'sub_1',
      endpointId: 'ep_1',
      chainId: 1,
      addresses: ['0xabcdef0000000000000000000000000000000001'],
      topics: [null],
    });
    expect(m.keyId).toBe(k1.keyId);
    expect(verifyMessage(parsePublicKey(k1.publicPem), m.seq, m.type, m.payload, m.signature)).toBe(true);
    // Bad payloads are refused before anything is signed or logged.
    for (const [type, payload] of [
      ['endpoint.upsert', { id: 'ep_1', url: 'ftp://x' }],
      ['endpoint.pause', { id: 'nope' }],
      ['endpoint.delete', { id: 'ep_1', cascade: true }],
    ] as const) {
      const err = await s.append(type, payload as never).catch((e: unknown) => e);
      expect(codeOf(err)).toBe('ETHHOOK_ERR_GOVERNANCE_MESSAGE_INVALID');
    }
    expect(s.head).toBe(1);
  });

  it('a key id must be the fingerprint; unreadable keys and busy ports are coded errors', async () => {
    const wrongId = await startGovernanceServer({ keyFile: k1.file, keyId: k2.keyId }).catch((e: unknown) => e);
    expect(codeOf(wrongId)).toBe('ETHHOOK_ERR_GOVERNANCE_SERVER');
    expect((wrongId as Error).message).toContain(k1.keyId);
    const notAKey = fresh('junk.pem');
    await writeFile(notAKey, 'junk');
    expect(codeOf(await startGovernanceServer({ keyFile: notAKey }).catch((e: unknown) => e))).toBe('ETHHOOK_ERR_GOVERNANCE_KEY_INVALID');
    expect(codeOf(await startGovernanceServer({ keyFile: fresh('missing.pem') }).catch((e: unknown) => e))).toBe(
      'ETHHOOK_ERR_GOVERNANCE_SERVER',
    );
    const s = await server();
    const busy = await startGovernanceServer({ keyFile: k1.file, port: Number(new URL(s.url).port) }).catch((e: unknown) => e);
    expect(codeOf(busy)).toBe('ETHHOOK_ERR_GOVERNANCE_SERVER');
  });

  it('rotateKey announces the new key with the old one, then signs with the new one', async () => {
    const s = await server();
    await s.rotateKey(k2.file);
    await s.append('endpoint.pause', { id: 'ep_1' });
    const [rotation, next] = s.messages();
    expect(rotation).toMatchObject({
      type: 'key.rotate',
      keyId: k1.keyId,
      payload: { add: { keyId: k2.keyId, publicKey: k2.publicDer }, retire: [k1.keyId] },
    });
    expect(next!.keyId).toBe(k2.keyId);
    expect(s.keyId).toBe(k2.keyId);
  });
});

describe('the node-facing protocol', () => {
  it('hello streams from lastApplied + 1 then live; resume restarts the stream; bad frames close with 1008', async () => {
    const s = await server();
    for (const n of [1, 2, 3]) await s.append('endpoint.upsert', endpointPayload(n));
    const c = await client(s.url);
    c.send({ type: 'hello', protocol: 1, lastApplied: 1 });
    await waitFor(() => c.frames.length === 2, 5_000, 'backlog');
    expect(c.frames.map((f) => f.seq)).toEqual([2, 3]);
    await s.append('endpoint.pause', { id: 'ep_1' });
    await waitFor(() => c.frames.length === 3, 5_000, 'live');
    c.send({ type: 'resume', from: 1 });
    await waitFor(() => c.frames.length === 7, 5_000, 'resumed');
    expect(c.frames.map((f) => f.seq)).toEqual([2, 3, 4, 1, 2, 3, 4]);
    expect(c.frames).toEqual([...s.messages().slice(1), ...s.messages()]);

    for (const bad of [
      '{"type":"hello","protocol":2,"lastApplied":0}',
      '{"type":"hello","lastApplied":-1,"protocol":1}',
      'garbage',
      Buffer.from([1, 2, 3]),
    ]) {
      const other = await client(s.url);
      other.socket.send(bad);
      await waitFor(() => other.closed() !== null, 5_000, 'close');
      expect(other.closed()!.code).toBe(1008);
      expect(other.closed()!.reason).toMatch(/^invalid frame/);
    }
    expect(s.clients).toBe(1);
  });
});

describe('publishing over HTTP', () => {
  const TOKEN = 'publish-token-0123456789';
  const post = (url: string, body: unknown, token: string | null = TOKEN, method = 'POST') =>
    fetch(url.replace(/^ws/, 'http') + 'messages', {
      method,
      headers: { 'content-type': 'application/json', ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
      ...(method === 'POST' ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });

  it('appends, signs and streams what an operator POSTs with the token; refuses the rest with the field', async () => {
    const s = await startGovernanceServer({ keyFile: k1.file, publishToken: TOKEN });
    cleanups.push(() => s.close());
    const c = await client(s.url);
    c.send({ type: 'hello', protocol: 1, lastApplied: 0 });

    const ok = await post(s.url, { type: 'endpoint.upsert', payload: endpointPayload(7) });
    expect(ok.status).toBe(201);
    expect(await ok.json()).toEqual({ seq: 1 });
    await waitFor(() => c.frames.length === 1, 5_000, 'the published message');
    expect(c.frames[0]).toMatchObject({ seq: 1, type: 'endpoint.upsert', payload: { id: 'ep_7' }, keyId: k1.keyId });
    const m = c.frames[0]!;
    expect(verifyMessage(parsePublicKey(k1.publicPem), m.seq, m.type, m.payload, m.signature)).toBe(true);

    const refusals: Array<[Response, number, Record<string, unknown>]> = [
      [await post(s.url, {}, null), 401, { code: 'ETHHOOK_ERR_ADMIN_UNAUTHORIZED' }],
      [await post(s.url, {}, 'wrong-token-0123456789'), 401, { code: 'ETHHOOK_ERR_ADMIN_UNAUTHORIZED' }],
      [await post(s.url, null, TOKEN, 'GET'), 405, { code: 'ETHHOOK_ERR_INVALID_INPUT' }],
      [await post(s.url, 'not json'), 400, { code: 'ETHHOOK_ERR_INVALID_INPUT' }],
      [await post(s.url, { type: 'endpoint.explode', payload: {} }), 400, { field: 'type' }],
      [await post(s.url, { type: 'key.rotate', payload: {} }), 400, { field: 'type' }],
      [
        await post(s.url, { type: 'endpoint.upsert', payload: { id: 'ep_8', url: 'ftp://x' } }),
        400,
        { code: 'ETHHOOK_ERR_GOVERNANCE_MESSAGE_INVALID', field: 'payload.url' },
      ],
      [await post(s.url, 'x'.repeat(300 * 1024)), 413, { code: 'ETHHOOK_ERR_INVALID_INPUT' }],
    ];
    for (const [res, status, error] of refusals) {
      expect(res.status).toBe(status);
      expect(await res.json()).toMatchObject({ error });
    }
    expect(s.head).toBe(1);
    // Other paths are the stream's: a plain request is told to use a WebSocket.
    expect((await fetch(s.url.replace(/^ws/, 'http') + 'other')).status).toBe(426);
  });

  it('is off without a token, and refuses a token shorter than 16 characters', async () => {
    const s = await startGovernanceServer({ keyFile: k1.file });
    cleanups.push(() => s.close());
    expect((await post(s.url, { type: 'endpoint.upsert', payload: endpointPayload(1) })).status).toBe(426);
    expect(s.head).toBe(0);
    await expect(startGovernanceServer({ keyFile: k1.file, publishToken: 'short' })).rejects.toMatchObject({
      code: 'ETHHOOK_ERR_GOVERNANCE_SERVER',
    });
  });
});

describe('the command line', () => {
  const run = (args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });

  it('--generate-key writes a key pair (private 0600), prints its id, and never overwrites', async () => {
    const file = fresh('gen.pem');
    const made = run(['--generate-key', file]);
    expect(made.status).toBe(0);
    const id = /key id:\s+([0-9a-f]{32})/.exec(made.stdout)?.[1];
    expect(id).toBeDefined();
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const s = await server({ keyFile: file });
    expect(s.keyId).toBe(id);
    expect(parsePublicKey(await readFile(`${file}.pub`, 'utf8'))).toBeDefined();
    const again = run(['--generate-key', file]);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('EEXIST');
  });

  it('usage errors return 2 with the usage and --help 0 (in process); a key id that is not the fingerprint exits 1', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      for (const args of [
        [],
        ['--key'],
        ['--key', k1.file, '--port', 'x'],
        ['--key', k1.file, '--bogus'],
        ['--key', k1.file, 'extra'],
        ['--generate-key', 'f', '--key', 'g'],
      ]) {
        stderr.mockClear();
        expect(await runGovernanceServe(args), args.join(' ')).toBe(2);
        expect(String(stderr.mock.calls[0]?.[0])).toContain('Usage: ethhook governance-serve');
      }
      expect(await runGovernanceServe(['--help'])).toBe(0);
      expect(String(stdout.mock.calls[0]?.[0])).toContain('--generate-key FILE');
    } finally {
      stderr.mockRestore();
      stdout.mockRestore();
    }
    const wrong = run(['--key', k1.file, '--key-id', k2.keyId]);
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toContain('ETHHOOK_ERR_GOVERNANCE_SERVER');
  });

  it('serves its log file to a node until SIGTERM, then exits 0', async () => {
    const log = fresh('served.jsonl');
    const seed = await startGovernanceServer({ keyFile: k1.file, store: log });
    for (const n of [1, 2]) await seed.append('endpoint.upsert', endpointPayload(n));
    const expected = seed.messages().map((m) => ({ ...m }));
    await seed.close();

    const tokenFile = fresh('publish-token');
    await writeFile(tokenFile, 'cli-publish-token-0123456789\n');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', MAIN, '--key', k1.file, '--key-id', k1.keyId, '--log', log, '--port', '0', '--publish-token-file', tokenFile],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    });
    const lines: Array<Record<string, unknown>> = [];
    let buffered = '';
    child.stdout.on('data', (chunk) => {
      buffered += String(chunk);
      for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
        lines.push(JSON.parse(buffered.slice(0, i)) as Record<string, unknown>);
        buffered = buffered.slice(i + 1);
      }
    });
    await waitFor(() => lines.some((l) => l.msg === 'governance server listening'), 20_000, 'listening line');
    const listening = lines.find((l) => l.msg === 'governance server listening')!;
    expect(listening).toMatchObject({ keyId: k1.keyId, head: 2 });
    const c = await client(String(listening.url));
    c.send({ type: 'hello', protocol: 1, lastApplied: 0 });
    await waitFor(() => c.frames.length === 2, 5_000, 'frames from the child');
    expect(c.frames).toEqual(expected);
    // Published over HTTP with the token from the file (trimmed), appended to the same log.
    const published = await fetch(String(listening.url).replace(/^ws/, 'http') + 'messages', {
      method: 'POST',
      headers: { authorization: 'Bearer cli-publish-token-0123456789', 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'endpoint.pause', payload: { id: 'ep_1' } }),
    });
    expect(await published.json()).toEqual({ seq: 3 });
    await waitFor(() => c.frames.length === 3, 5_000, 'the published frame');
    expect((await readFile(log, 'utf8')).trimEnd().split('\n')).toHaveLength(3);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(lines.some((l) => l.msg === 'governance server stopping')).toBe(true);
    await waitFor(() => c.closed() !== null, 5_000, 'client closed');
  });

  it('creates a publish token file that does not exist (a random token, mode 0600) and accepts that token', async () => {
    const tokenFile = fresh('new-publish-token');
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--key', k1.file, '--port', '0', '--publish-token-file', tokenFile], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    });
    let out = '';
    child.stdout.on('data', (chunk) => (out += String(chunk)));
    await waitFor(() => out.includes('"governance server listening"'), 20_000, 'listening line');
    const listening = out
      .split('\n')
      .map((l) => (l ? (JSON.parse(l) as Record<string, unknown>) : {}))
      .find((l) => l.msg === 'governance server listening')!;
    expect((await stat(tokenFile)).mode & 0o777).toBe(0o600);
    const token = (await readFile(tokenFile, 'utf8')).trim();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(out).not.toContain(token);
    const publish = (bearer: string) =>
      fetch(String(listening.url).replace(/^ws/, 'http') + 'messages', {
        method: 'POST',
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'endpoint.pause', payload: { id: 'ep_1' } }),
      });
    expect((await publish(token)).status).toBe(201);
    expect((await publish('x'.repeat(43))).status).toBe(401);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
