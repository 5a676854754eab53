/**
 * What server and client agree on: WebSocket close codes and (with plaza.v1) message shapes.
 * Imported by the browser client too, so it must not touch Node APIs.
 */

/** Close codes Plaza sends. 1xxx are RFC 6455 §7.4.1; 4xxx are Plaza's own. */
export const CloseCode = {
  /** Normal closure: the client or server is done. */
  Normal: 1000,
  /** The server is shutting down (SIGTERM/SIGINT); reconnect to another or the same server later. */
  GoingAway: 1001,
  /** The peer broke the WebSocket protocol (e.g. an unmasked client frame). */
  ProtocolError: 1002,
  /** A text frame was not valid UTF-8. */
  InvalidPayload: 1007,
  /** The peer kept breaking the rules (floods, sustained garbage); do not retry at once. */
  PolicyViolation: 1008,
  /** A message was larger than the server's max payload. */
  MessageTooBig: 1009,
  /** The server hit an unexpected error while handling this connection. */
  InternalError: 1011,
  /** The client could not keep up: too many bytes were waiting to be sent to it. */
  TryAgainLater: 1013,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];
