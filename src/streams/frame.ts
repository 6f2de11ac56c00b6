/**
 * One published event, encoded at most once per transport whatever the number of clients: the JSON
 * text is built on first use, then the WebSocket payload and the SSE block are built from it and
 * shared by every client of that transport (clients hold references, never copies).
 *
 * SSE block: `id: <id>\nevent: <kind>\ndata: <json>\n\n` (JSON has no raw newline, so one data line).
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

  get websocket(): Buffer {
    return (this.ws ??= Buffer.from(this.json, 'utf8'));
  }

  get sse(): Buffer {
    return (this.sseBlock ??= Buffer.from(`id: ${this.id}\nevent: ${this.event.kind}\ndata: ${this.json}\n\n`, 'utf8'));
  }
}
