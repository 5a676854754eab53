/**
 * A WebSocket for the client's unit tests: it has no network under it; the test opens it,
 * hands it frames and drops it, and reads what the client sent. It keeps the part of the
 * WebSocket contract the client relies on (src/client/socket.ts): `send` throws unless open,
 * and events go to the on* handlers the client set, so a handler the client cleared hears nothing.
 */
import type { Data, SocketLike } from '../../src/client/socket.js';

type Handler = ((event: unknown) => void) | null;

export class FakeSocket implements SocketLike {
  binaryType = 'blob';
  readyState = 0;
  onopen: Handler = null;
  onmessage: Handler = null;
  onclose: Handler = null;
  onerror: Handler = null;
  readonly sent: Data[] = [];
  readonly closeCalls: Array<{ code: number | undefined; reason: string | undefined }> = [];

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {}

  send(data: Data): void {
    if (this.readyState !== 1) throw new Error('InvalidStateError: the socket is not open');
    this.sent.push(data);
  }

  close(code?: number, reason?: string): void {
    this.closeCalls.push({ code, reason });
    this.readyState = 2;
  }

  /** The server accepted the connection. */
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  /** A frame from the server. */
  receive(data: string | ArrayBuffer): void {
    this.onmessage?.({ data });
  }

  /** The connection ended with `code` (1006: it dropped). */
  drop(code = 1006, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  /** What the client sent as text, parsed as JSON envelopes. */
  get envelopes(): Array<Record<string, any>> {
    return this.sent.filter((d): d is string => typeof d === 'string').map((text) => JSON.parse(text) as Record<string, any>);
  }
}

/** A WebSocket constructor whose sockets are kept in the order the client made them. */
export function fakeWebSocket(): { WebSocket: new (url: string, protocols?: string | string[]) => FakeSocket; sockets: FakeSocket[] } {
  const sockets: FakeSocket[] = [];
  class RecordedSocket extends FakeSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      sockets.push(this);
    }
  }
  return { WebSocket: RecordedSocket, sockets };
}
