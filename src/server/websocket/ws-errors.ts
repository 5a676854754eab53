/**
 * Which close code ws sent when it closed a socket itself, after a frame it could not accept.
 * ws then ends the TCP connection without waiting for the peer's reply, so its 'close' event
 * says 1006; the log and the metrics must say what Plaza actually sent (RFC 6455 §7.4.1). The
 * `WS_ERR_*` codes are ws's documented error codes; every one not listed here is a protocol
 * violation, which ws answers with 1002.
 */
import { CloseCode } from '../../shared/protocol.js';

export function closeCodeOfWsError(error: { code?: string }): number | undefined {
  switch (error.code) {
    case 'WS_ERR_INVALID_UTF8':
      return CloseCode.InvalidPayload;
    case 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH':
    case 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH':
      return CloseCode.MessageTooBig;
    case 'WS_ERR_TOO_MANY_BUFFERED_PARTS':
      return CloseCode.PolicyViolation;
  }
  // Socket errors (ECONNRESET, EPIPE) close nothing themselves: the peer is simply gone.
  return error.code?.startsWith('WS_ERR_') ? CloseCode.ProtocolError : undefined;
}
