/**
 * The reference server's ordered log of signed governance messages: seq 1, 2, 3, ... without holes.
 *
 * With a file, the log is persisted as JSON lines (one SignedMessage per line, in seq order), each
 * append written and flushed (`datasync`) before it is acknowledged, so a message a node may have seen
 * is never lost by a server crash. On open, every line is validated (schema and seq continuity); a
 * torn last line (a crash during a write) is cut off, any other bad line refuses the file.
 *
 * The file is the owner's alone (mode 0600, set again on every open, whatever mode it had): an `endpoint.upsert` may carry a webhook secret in plaintext, and it
 * stays so. Every node, whenever it joins, replays the log from seq 1 and checks each message's
 * signature over its exact payload, secret included, so the server must keep the signed bytes as
 * they were signed; sealing them would need a key kept beside the log (as the signing key is) and
 * protect nothing more than the file's mode does.
 */
import { open, readFile, truncate, type FileHandle } from 'node:fs/promises';
import { EthhookError } from '../runtime/errors.ts';
import { messageEnvelopeSchema, type SignedMessage } from '../governance-protocol/protocol.ts';

/** Read and write for the owner only: the log holds webhook secrets (see above). */
export const LOG_FILE_MODE = 0o600;

export class MessageLog {
  private constructor(
    private readonly messages: SignedMessage[],
    private readonly file: FileHandle | null,
  ) {}

  static async open(path?: string): Promise<MessageLog> {
    if (!path) return new MessageLog([], null);
    const messages = await readLog(path);
    const file = await open(path, 'a', LOG_FILE_MODE);
    await file.chmod(LOG_FILE_MODE);
    return new MessageLog(messages, file);
  }

  get head(): number {
    return this.messages.length;
  }

  /** The message with this seq, or undefined past the head. */
  at(seq: number): SignedMessage | undefined {
    return this.messages[seq - 1];
  }

  all(): readonly SignedMessage[] {
    return this.messages;
  }

  async append(message: SignedMessage): Promise<void> {
    if (message.seq !== this.head + 1) throw new Error(`message log: append of seq ${message.seq} after ${this.head}`);
    if (this.file) {
      await this.file.appendFile(`${JSON.stringify(message)}\n`);
      await this.file.datasync();
    }
    this.messages.push(message);
  }

  async close(): Promise<void> {
    await this.file?.close();
  }
}

async function readLog(path: string): Promise<SignedMessage[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const messages: SignedMessage[] = [];
  let offset = 0;
  while (offset < text.length) {
    const end = text.indexOf('\n', offset);
    const line = text.slice(offset, end === -1 ? text.length : end);
    const parsed = parseLine(line, messages.length + 1);
    if (!parsed.ok) {
      if (end === -1) {
        // A torn last line: the write it belonged to was never acknowledged.
        await truncate(path, Buffer.byteLength(text.slice(0, offset)));
        break;
      }
      throw new EthhookError('ETHHOOK_ERR_GOVERNANCE_SERVER', `governance log ${path}, line ${messages.length + 1}: ${parsed.reason}`, {
        path,
        line: messages.length + 1,
      });
    }
    messages.push(parsed.message);
    offset = end === -1 ? text.length : end + 1;
  }
  return messages;
}

function parseLine(line: string, expectedSeq: number): { ok: true; message: SignedMessage } | { ok: false; reason: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const m = messageEnvelopeSchema.safeParse(raw);
  if (!m.success) return { ok: false, reason: m.error.issues[0]?.message ?? 'invalid' };
  if (m.data.seq !== expectedSeq) return { ok: false, reason: `seq ${m.data.seq} where ${expectedSeq} was expected` };
  return { ok: true, message: m.data };
}
