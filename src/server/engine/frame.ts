/**
 * Server-to-client WebSocket frames (RFC 6455 §5.2), built once and written to many sockets.
 * Server frames are never masked, so the same bytes are valid on every connection; that is
 * what lets a broadcast cost one encoding instead of one per recipient.
 */

export const Opcode = { Text: 0x1, Binary: 0x2 } as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

function headerLength(payloadLength: number): number {
  return payloadLength < 126 ? 2 : payloadLength < 0x10000 ? 4 : 10;
}

function writeHeader(frame: Buffer, opcode: Opcode, payloadLength: number): number {
  frame[0] = 0x80 | opcode; // FIN + opcode: Plaza never fragments what it sends.
  if (payloadLength < 126) {
    frame[1] = payloadLength;
    return 2;
  }
  if (payloadLength < 0x10000) {
    frame[1] = 126;
    frame.writeUInt16BE(payloadLength, 2);
    return 4;
  }
  frame[1] = 127;
  frame.writeUInt32BE(Math.floor(payloadLength / 0x1_0000_0000), 2);
  frame.writeUInt32BE(payloadLength >>> 0, 6);
  return 10;
}

/** One complete unmasked frame carrying `payload` as-is. */
export function encodeFrame(payload: Uint8Array, opcode: Opcode): Buffer {
  const frame = Buffer.allocUnsafe(headerLength(payload.length) + payload.length);
  frame.set(payload, writeHeader(frame, opcode, payload.length));
  return frame;
}

/** One complete text frame; encodes the string straight into the frame, without an extra copy. */
export function encodeTextFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const frame = Buffer.allocUnsafe(headerLength(length) + length);
  frame.write(text, writeHeader(frame, Opcode.Text, length));
  return frame;
}
