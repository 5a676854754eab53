/** The WebSocket as the client sees it: what it sends, what it expects of the implementation. */

/** What `send()` takes: text goes out as a text frame, bytes as a binary frame. */
export type Data = string | ArrayBuffer | ArrayBufferView;

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

