/**
 * One published event, encoded at most once per transport whatever the number of clients: the JSON
 * text is built on first use, then the WebSocket payload and the SSE block are built from it and
 * shared by every client of that transport (clients hold references, never copies).
 *
 * SSE block: `id: <id>\nevent: <kind>\ndata: <json>\n\n` (JSON has no raw newline, so one data line).
 * WebSocket: the whole text frame (RFC 6455 §5.2). Server frames are not masked, so the bytes are the
 * same for every client, and a client's batch goes to its socket in one write instead of one `ws.send`
 * (one syscall) per event.
 */
import type { StreamEvent } from './events.ts';

export class EventFrame {
  private text: string | undefined;
  private ws: Buffer | undefined;
  private sseBlock: Buffer | undefined;

  constructor(
    readonly id: number,
    readonly event: StreamEvent,
  ) {}

  /** Retractions and governance notices overtake ordinary events in a client's buffer. */
  get urgent(): boolean {
    return this.event.kind !== 'log.created';
  }

  get json(): string {
    return (this.text ??= JSON.stringify({ id: this.id, ...this.event }));
  }

  /** The complete WebSocket text frame. */
  get websocket(): Buffer {
    return (this.ws ??= textFrame(Buffer.from(this.json, 'utf8')));
  }

  get sse(): Buffer {
    return (this.sseBlock ??= Buffer.from(`id: ${this.id}\nevent: ${this.event.kind}\ndata: ${this.json}\n\n`, 'utf8'));
  }
}

/** FIN + text opcode, then the payload length in 7, 7+16 or 7+64 bits; no mask (server to client). */
export function textFrame(payload: Buffer): Buffer {
  const length = payload.length;
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x81;
  if (length < 126) {
    frame[1] = length;
  } else if (length < 65_536) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  payload.copy(frame, headerLength);
  return frame;
}
