/**
 * permessage-deflate (RFC 7692) for frames built once and written to many: a message is
 * compressed once, and the same compressed frame goes to every member that negotiated the
 * extension. That is only correct because Plaza negotiates `server_no_context_takeover`: each
 * message is compressed on its own, with no window shared with earlier ones, so one compressed
 * frame is valid on every connection (uWebSockets calls this a shared compressor).
 */
import { constants, deflateRawSync } from 'node:zlib';
import { Opcode } from './frame.js';

/** A sync flush ends with an empty stored block, 00 00 ff ff, which senders remove (RFC 7692 §7.2.1). */
const TAIL = 0x0000ffff;
/** RSV1 marks the first frame of a compressed message (RFC 7692 §6). */
const RSV1 = 0x40;

/** Where the payload of a frame built by frame.ts starts (it is never masked), and its length. */
function payloadOf(frame: Buffer): { start: number; length: number } {
  const short = frame[1]! & 0x7f;
  const start = short < 126 ? 2 : short === 126 ? 4 : 10;
  return { start, length: frame.length - start };
}

/**
 * The compressed form of an unfragmented data frame (text or binary), or the frame itself when
 * its payload is shorter than `minBytes` or would not shrink: a member that negotiated the
 * extension may always be sent an uncompressed frame (RSV1 clear).
 */
export function compressFrame(frame: Buffer, minBytes: number): Buffer {
  const opcode = frame[0]! & 0x0f;
  if (opcode !== Opcode.Text && opcode !== Opcode.Binary) return frame;
  const { start, length } = payloadOf(frame);
  if (length < minBytes) return frame;
  const deflated = deflateRawSync(frame.subarray(start), { finishFlush: constants.Z_SYNC_FLUSH });
  const bodyLength = deflated.length - 4;
  if (bodyLength < 0 || deflated.readUInt32BE(bodyLength) !== TAIL) return frame;
  const header = bodyLength < 126 ? 2 : bodyLength < 0x10000 ? 4 : 10;
  if (header + bodyLength >= frame.length) return frame;
  const out = Buffer.allocUnsafe(header + bodyLength);
  out[0] = 0x80 | RSV1 | opcode;
  if (header === 2) out[1] = bodyLength;
  else if (header === 4) {
    out[1] = 126;
    out.writeUInt16BE(bodyLength, 2);
  } else {
    out[1] = 127;
    out.writeUInt32BE(Math.floor(bodyLength / 0x1_0000_0000), 2);
    out.writeUInt32BE(bodyLength >>> 0, 6);
  }
  deflated.copy(out, header, 0, bodyLength);
  return out;
}
