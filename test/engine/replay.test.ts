/**
 * Large `joined` replies in pieces (src/server/engine/replay.ts), on a real TCP socket pair: the reply
 * is split where PROTOCOL.md says, written only while the socket has room, resumed on drain,
 * and everything else for the connection waits behind it, in order, within --max-buffered.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { Replay, type ReplayTarget } from '../../src/server/engine/replay.js';
import { encodeTextFrame } from '../../src/server/engine/frame.js';
import { frameTexts } from '../helpers/frames.js';
import { until } from '../helpers/wait.mjs';

const MAX_BUFFERED = 64 * 1024;

async function socketPair(): Promise<{ server: Socket; client: Socket; close(): void }> {
  const listener = createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const client = connect((listener.address() as { port: number }).port, '127.0.0.1');
  const [server] = (await once(listener, 'connection')) as [Socket];
  return {
    server,
    client,
    close: () => {
      client.destroy();
      server.destroy();
      listener.close();
    },
  };
}

function target(socket: Socket, overflows: { count: number }): ReplayTarget {
  return {
    socket,
    isWritable: () => !socket.destroyed,
    onOverflow: () => overflows.count++,
    writeAhead: () => undefined,
    countWrite: () => undefined,
  };
}

const message = (offset: number, size: number) => JSON.stringify({ type: 'message', room: 'r', offset, data: 'x'.repeat(size) });

describe('Replay', () => {
  it('leaves a reply that fits in half of --max-buffered whole', () => {
    const reply = { type: 'joined' as const, room: 'r', epoch: 'E', offset: 3 };
    assert.equal(Replay.of(reply, [message(1, 100), message(2, 100), message(3, 100)], MAX_BUFFERED), undefined);
  });

  it('splits a large reply: joined carries the oldest and says the last it carries; the rest follow as messages', async () => {
    const pair = await socketPair();
    try {
      const messages = Array.from({ length: 20 }, (_, i) => message(i + 1, 8000));
      const replay = Replay.of({ type: 'joined', room: 'r', epoch: 'E', offset: 20 }, messages, MAX_BUFFERED)!;
      assert.ok(replay);
      const overflows = { count: 0 };
      let done = false;
      replay.start(target(pair.server, overflows), () => {
        done = true;
      });
      replay.hold(encodeTextFrame('{"type":"message","room":"r","offset":21,"data":"live"}'));
      const received: Buffer[] = [];
      pair.client.on('data', (chunk: Buffer) => received.push(chunk));
      const deadline = Date.now() + 5000;
      while (!done || frameTexts(Buffer.concat(received)).length < 2) {
        if (Date.now() > deadline) throw new Error('the replay did not finish');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
      const got = frameTexts(Buffer.concat(received)).map((text) => JSON.parse(text) as { type: string; offset: number; messages?: Array<{ offset: number }> });
      const joined = got[0]!;
      assert.equal(joined.type, 'joined');
      const carried = joined.messages!.map((m) => m.offset);
      assert.ok(carried.length > 0 && carried.length < 20);
      assert.equal(joined.offset, carried.at(-1), 'offset is the last message the joined frame carries');
      const after = got.slice(1).map((m) => m.offset);
      assert.deepEqual([...carried, ...after], Array.from({ length: 21 }, (_, i) => i + 1), 'the rest in order, then the live frame');
      assert.equal(overflows.count, 0);
    } finally {
      pair.close();
    }
  });

  it('writes only while the socket has room, and goes on when it drains', async () => {
    const pair = await socketPair();
    try {
      pair.client.pause();
      // More than the kernel's socket buffers on both ends hold, so the socket itself fills up.
      const messages = Array.from({ length: 1000 }, (_, i) => message(i + 1, 16_000));
      const replay = Replay.of({ type: 'joined', room: 'r', epoch: 'E', offset: 1000 }, messages, MAX_BUFFERED)!;
      let done = false;
      replay.start(target(pair.server, { count: 0 }), () => {
        done = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(done, false, 'a reader that does not read gets no more than its share');
      assert.ok(pair.server.writableLength < MAX_BUFFERED / 2 + 17_000, `${pair.server.writableLength} bytes waiting`);
      let bytes = 0;
      pair.client.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      pair.client.resume();
      await until(() => done, 5000, 'the replay to resume on drain and finish');
      await until(() => bytes > 1000 * 16_000, 5000, 'every byte of the replay at the reader');
    } finally {
      pair.close();
    }
  });

  it('holds live frames within --max-buffered and reports an overflow past it', async () => {
    const pair = await socketPair();
    try {
      pair.client.pause();
      const messages = Array.from({ length: 100 }, (_, i) => message(i + 1, 8000));
      const replay = Replay.of({ type: 'joined', room: 'r', epoch: 'E', offset: 100 }, messages, MAX_BUFFERED)!;
      const overflows = { count: 0 };
      replay.start(target(pair.server, overflows), () => undefined);
      const live = encodeTextFrame(JSON.stringify({ data: 'y'.repeat(10_000) }));
      for (let i = 0; i < 6; i++) replay.hold(live);
      assert.equal(overflows.count, 0, '60 KB of live frames fit');
      replay.hold(live);
      assert.equal(overflows.count, 1, 'the next one is too much: the connection is too slow for live traffic');
      replay.cancel();
      replay.cancel();
    } finally {
      pair.close();
    }
  });
});
