/** Reading back what Plaza writes: unmasked, unfragmented server frames (RFC 6455 §5.2). */

export interface ServerFrame {
  /** The first byte: FIN, RSV1–3 and the opcode. */
  first: number;
  payload: Buffer;
  /** Bytes the frame takes by its own header (more than are there when it is cut short). */
  size: number;
}

/** Every frame in `bytes`, in order. */
export function splitFrames(bytes: Buffer): ServerFrame[] {
  const out: ServerFrame[] = [];
  let at = 0;
  while (at < bytes.length) {
    let length = bytes[at + 1]! & 0x7f;
    let head = 2;
    if (length === 126) {
      length = bytes.readUInt16BE(at + 2);
      head = 4;
    } else if (length === 127) {
      length = Number(bytes.readBigUInt64BE(at + 2));
      head = 10;
    }
    out.push({ first: bytes[at]!, payload: bytes.subarray(at + head, at + head + length), size: head + length });
    at += head + length;
  }
  return out;
}

/** The payloads of the frames in `bytes`, as text. */
export function frameTexts(bytes: Buffer): string[] {
  return splitFrames(bytes).map((frame) => frame.payload.toString('utf8'));
}

/** The payload of one frame. */
export function payloadOf(frame: Buffer): Buffer {
  return splitFrames(frame)[0]!.payload;
}
