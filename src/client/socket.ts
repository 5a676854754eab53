/** The WebSocket as the client sees it: what it sends, what it expects of the implementation. */

/** What `send()` takes: text goes out as a text frame, bytes as a binary frame. */
export type Data = string | ArrayBuffer | ArrayBufferView;

/** Bytes of `data` on the wire: UTF-8 for text, counted without encoding it. */
export function sizeOf(data: Data): number {
  if (typeof data != 'string') return data.byteLength;
  let bytes = data.length;
  // U+0080–U+07FF take 2 bytes, the rest of the BMP 3, a surrogate pair 4 (2 units, 2 extra).
  for (let i = 0; i < data.length; i++) {
    const unit = data.charCodeAt(i);
    if (unit > 0x7f) bytes += unit < 0x800 || (unit >= 0xd800 && unit < 0xe000) ? 1 : 2;
  }
  return bytes;
}

export interface CloseInfo {
  /** The WebSocket close code; 1006 when the connection dropped, was refused or timed out. */
  code: number;
  reason: string;
  /** False exactly once: on the last 'close', after `close()` or a code that means "don't retry". */
  willReconnect: boolean;
}

/**
 * The part of a WebSocket the transport uses; both the DOM WebSocket and `ws` fit. The handler
 * parameters are typed `never` because the two declare different event classes; the handlers
 * read only `data`, `code` and `reason`, which both provide.
 */
export interface SocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
  send(data: Data): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => SocketLike;

