/**
 * One compressed frame for many (src/server/engine/deflate.ts): what compressFrame returns is a
 * valid permessage-deflate message (RSV1, the sync-flush tail removed, RFC 7692 §7.2.1) that
 * inflates back to the payload, for every length encoding; short or incompressible payloads and
 * control frames come back untouched.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { constants, inflateRawSync } from 'node:zlib';
import { compressFrame } from '../../src/server/engine/deflate.js';
import { encodeFrame, encodeTextFrame, Opcode } from '../../src/server/engine/frame.js';
import { splitFrames, type ServerFrame } from '../helpers/frames.js';

function parse(frame: Buffer): ServerFrame {
  const frames = splitFrames(frame);
  assert.equal(frames.length, 1, 'exactly one frame');
  assert.equal(frames[0]!.size, frame.length, 'exactly one whole frame');
  return frames[0]!;
}

/** What a receiver does (RFC 7692 §7.2.2): append 00 00 ff ff and inflate. */
const inflate = (payload: Buffer) => inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: constants.Z_SYNC_FLUSH });

const chat = (bytes: number) => JSON.stringify({ user: 'ada', text: 'see you at the meeting after lunch, bring the plan '.repeat(Math.ceil(bytes / 50)) }).slice(0, bytes);

describe('compressFrame', () => {
  for (const size of [600, 5_000, 70_000]) {
    it(`compresses a ${size} B text frame once into a frame with RSV1 that inflates to the same text`, () => {
      const text = chat(size);
      const frame = compressFrame(encodeTextFrame(text), 512);
      const { first, payload } = parse(frame);
      assert.equal(first, 0x80 | 0x40 | Opcode.Text, 'FIN, RSV1, text');
      assert.ok(frame.length < Buffer.byteLength(text) / 2, 'it shrank');
      assert.equal(inflate(payload).toString(), text);
    });
  }

  it('keeps the opcode of a binary frame', () => {
    const bytes = Buffer.alloc(4096, 7);
    const { first, payload } = parse(compressFrame(encodeFrame(bytes, Opcode.Binary), 512));
    assert.equal(first, 0x80 | 0x40 | Opcode.Binary);
    assert.deepEqual(inflate(payload), bytes);
  });

  it('returns the frame itself when the payload is below the minimum or would not shrink', () => {
    const short = encodeTextFrame(chat(300));
    assert.equal(compressFrame(short, 512), short);
    const noise = encodeFrame(randomBytes(2048), Opcode.Binary);
    assert.equal(compressFrame(noise, 512), noise);
  });

  it('never compresses a control frame', () => {
    const ping = Buffer.from([0x89, 0x00]);
    assert.equal(compressFrame(ping, 0), ping);
  });
});
