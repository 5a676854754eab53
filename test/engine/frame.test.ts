import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EventEmitter } from 'node:events';
import * as wsModule from 'ws';
import { encodeFrame, encodeTextFrame, Opcode } from '../../src/server/engine/frame.js';

// ws exports its frame parser at runtime but @types/ws does not declare it.
interface FrameReceiver extends EventEmitter {
  write(chunk: Buffer): void;
}
const { Receiver } = wsModule as unknown as {
  Receiver: new (options: { isServer: boolean; maxPayload: number }) => FrameReceiver;
};

/** Parses frames with ws's own Receiver (as a client would), so a framing bug fails here. */
function parse(frame: Buffer): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve, reject) => {
    const receiver = new Receiver({ isServer: false, maxPayload: 0 });
    receiver.on('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary }));
    receiver.on('error', reject);
    receiver.write(frame);
  });
}

describe('frame', () => {
  for (const length of [0, 1, 125, 126, 127, 65535, 65536, 70_000]) {
    it(`encodes a ${length}-byte payload that ws parses back unchanged`, async () => {
      const payload = Buffer.alloc(length, length % 251);
      const frame = encodeFrame(payload, Opcode.Binary);
      const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10;
      assert.equal(frame.length, headerLength + length);
      assert.equal(frame[0], 0x82, 'FIN and binary opcode');
      assert.equal(frame[1]! & 0x80, 0, 'server frames are not masked');
      const parsed = await parse(frame);
      assert.equal(parsed.isBinary, true);
      assert.deepEqual(parsed.data, payload);
    });
  }

  it('encodes text frames straight from a string, counting UTF-8 bytes', async () => {
    const text = 'héllo 🌍'.repeat(30); // multi-byte characters push it past 125 bytes
    const frame = encodeTextFrame(text);
    assert.equal(frame[0], 0x81);
    assert.equal(frame[1], 126);
    const parsed = await parse(frame);
    assert.equal(parsed.isBinary, false);
    assert.equal(parsed.data.toString(), text);
  });
});
