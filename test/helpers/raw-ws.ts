/**
 * A WebSocket client built by hand on a TCP socket, for tests that must send what real client
 * libraries refuse to: unmasked frames, reserved opcodes, invalid UTF-8, endless fragments.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export interface ServerFrame {
  opcode: number;
  payload: Buffer;
  /** RSV1: set on a message compressed with permessage-deflate (RFC 7692). */
  rsv1: boolean;
}

export interface FrameOptions {
  opcode: number;
  payload?: Buffer | string;
  fin?: boolean;
  mask?: boolean;
  rsv?: number;
}

export function encodeClientFrame({ opcode, payload = Buffer.alloc(0), fin = true, mask = true, rsv = 0 }: FrameOptions): Buffer {
  const data = Buffer.from(payload);
  const length = data.length;
  const header = Buffer.alloc(2 + (length < 126 ? 0 : length < 65536 ? 2 : 8) + (mask ? 4 : 0));
  header[0] = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
  let offset = 2;
  if (length < 126) header[1] = length;
  else if (length < 65536) {
    header[1] = 126;
    header.writeUInt16BE(length, 2);
    offset = 4;
  } else {
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(length), 2);
    offset = 10;
  }
  if (!mask) return Buffer.concat([header, data]);
  header[1]! |= 0x80;
  const key = randomBytes(4);
  key.copy(header, offset);
  const masked = Buffer.from(data);
  for (let i = 0; i < masked.length; i++) masked[i]! ^= key[i % 4]!;
  return Buffer.concat([header, masked]);
}

export class RawWebSocket {
  readonly frames: ServerFrame[] = [];
  /** Resolves with the close code the server sent, or 0 if the socket ended without one. */
  readonly closed: Promise<number>;
  private buffer = Buffer.alloc(0);
  private closeCode = 0;
  /** The server's 101 response head (status line and headers), set by openRaw. */
  responseHead = '';

  constructor(readonly socket: Socket) {
    this.closed = new Promise((resolve) => socket.on('close', () => resolve(this.closeCode)));
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => this.read(chunk));
  }

  send(options: FrameOptions): void {
    this.socket.write(encodeClientFrame(options));
  }

  private read(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      if (this.buffer.length < 2) return;
      let length = this.buffer[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.buffer.length < 4) return;
        length = this.buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (this.buffer.length < 10) return;
        length = Number(this.buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.buffer.length < offset + length) return;
      const frame = { opcode: this.buffer[0]! & 0x0f, payload: this.buffer.subarray(offset, offset + length), rsv1: (this.buffer[0]! & 0x40) !== 0 };
      this.buffer = this.buffer.subarray(offset + length);
      this.frames.push(frame);
      if (frame.opcode === 8 && frame.payload.length >= 2) this.closeCode = frame.payload.readUInt16BE(0);
    }
  }
}

/** Opens a TCP connection, performs the opening handshake and resolves once the server said 101. */
export function openRaw(port: number, { path = '/', headers = {} }: { path?: string; headers?: Record<string, string> } = {}): Promise<RawWebSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const lines = [
      `GET ${path} HTTP/1.1`,
      'Host: 127.0.0.1',
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13',
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ];
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      const status = head.subarray(0, head.indexOf('\r\n')).toString();
      if (!status.includes(' 101 ')) {
        socket.destroy();
        reject(new Error(`handshake refused: ${status}`));
        return;
      }
      const raw = new RawWebSocket(socket);
      raw.responseHead = head.subarray(0, end).toString('latin1');
      const rest = head.subarray(end + 4);
      if (rest.length > 0) socket.emit('data', rest);
      resolve(raw);
    };
    socket.on('data', onData);
    socket.on('error', reject);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  });
}
