/**
 * The reference server's ordered log of signed governance messages: seq 1, 2, 3, ... without holes.
 *
 * With a file, the log is persisted as JSON lines (one SignedMessage per line, in seq order), each
 * append written and flushed (`datasync`) before it is acknowledged, so a message a node may have seen
 * is never lost by a server crash. On open, every line is validated (schema and seq continuity); a
 * torn last line (a crash during a write) is cut off, any other bad line refuses the file.
 */
import { open, readFile, truncate, type FileHandle } from 'node:fs/promises';
import { EthhookError } from '../runtime/errors.ts';
import { messageEnvelopeSchema, type SignedMessage } from '../governance-protocol/protocol.ts';

export class MessageLog {
  private constructor(
    private readonly messages: SignedMessage[],
    private readonly file: FileHandle | null,
  ) {}

  static async open(path?: string): Promise<MessageLog> {
    if (!path) return new MessageLog([], null);
    const messages = await readLog(path);
    return new MessageLog(messages, await open(path, 'a'));
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
      throw new EthhookError('ETHHOOK_ERR_GOVERNANCE_SERVER', `governance log ${path}, line ${messages.length + 1}: ${parsed.reason}`, { path, line: messages.length + 1 });
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
  return { ok: true, message: m.data as SignedMessage };
}
