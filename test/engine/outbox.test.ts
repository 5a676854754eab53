/**
 * The outbox (src/server/engine/outbox.ts), for frames sent to one recipient (replies, presence,
 * beats): every frame a socket gets in one event-loop turn leaves in one write at the end of it;
 * the slow-consumer bound; nothing after a close. A room's messages, queued once per room and
 * written as one batch shared by every member, are test/engine/room-fanout.test.ts. Sockets here are Duplex
 * streams that record each write as it reaches them (one `_write`, or one `_writev` for a corked
 * burst, is what a net.Socket turns into one syscall), and can stop draining like a peer that
 * stopped reading; one test runs over a real TCP connection.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { describe, it } from 'node:test';
import { Metrics } from '../../src/server/engine/metrics.js';
import type { Room } from '../../src/server/engine/hub.js';
import { Outbox, type DirectQueue, type OutboxOptions, type Recipient } from '../../src/server/engine/outbox.js';

/** A socket that records what reaches it; `stall()` makes it keep everything buffered, as a peer that stopped reading. */
class RecordingSocket extends Duplex {
  /** One entry per write that reached the stream's sink: the chunks it carried. */
  readonly writes: Buffer[][] = [];
  private stalled = false;
  constructor(readonly log: string[] = []) {
    super({ read() {} });
  }
  stall(): void {
    this.stalled = true;
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.writes.push([chunk]);
    this.log.push('write');
    if (!this.stalled) done();
  }
  override _writev(chunks: Array<{ chunk: Buffer }>, done: (error?: Error | null) => void): void {
    this.writes.push(chunks.map((c) => c.chunk));
    this.log.push('write');
    if (!this.stalled) done();
  }
  /** Every byte that reached the sink, in order. */
  get bytes(): Buffer {
    return Buffer.concat(this.writes.flat());
  }
}

/** A Recipient as a connection is one: a member with a socket, the outbox's fields, a closing flag. */
class Entry implements Recipient {
  readonly id = 'entry';
  readonly name = 'entry';
  readonly protocol = 'plain' as const;
  readonly rooms = new Set<Room>();
  queued: DirectQueue | undefined;
  flushMark = 0;
  readonly replaying = false;
  closing = false;
  overflows = 0;
  constructor(readonly socket: RecordingSocket | Socket) {}
  isOpen(): boolean {
    return !this.closing;
  }
  deliver(): void {
    throw new Error('the outbox writes to the socket itself');
  }
  hold(): void {
    throw new Error('not replaying');
  }
  isWritable(): boolean {
    return !this.closing;
  }
  onOverflow(): void {
    this.overflows++;
    // What Connection.onOverflow does: close, so nothing more is written.
    this.closing = true;
  }
}

function outbox(options: Partial<OutboxOptions> = {}) {
  const metrics = new Metrics();
  return { metrics, outbox: new Outbox({ maxBuffered: 1 << 20, maxWriteBytes: 256 * 1024, metrics, ...options }) };
}

/** Resolves after the outbox's end-of-turn flush (it was scheduled first, setImmediate runs in order). */
const endOfTurn = () => new Promise((resolve) => setImmediate(resolve));

const frame = (text: string) => Buffer.from(text);

describe('Outbox', () => {
  describe('coalescing', () => {
    it('writes the N frames queued in one turn in exactly one write per socket, in order', async () => {
      const { outbox: box, metrics } = outbox();
      const sockets = [new RecordingSocket(), new RecordingSocket(), new RecordingSocket()];
      const entries = sockets.map((socket) => new Entry(socket));
      const frames = Array.from({ length: 50 }, (_, i) => frame(`frame-${i};`));
      for (const f of frames) for (const entry of entries) box.send(entry, f);
      assert.deepEqual(sockets.map((s) => s.writes.length), [0, 0, 0], 'nothing is written before the turn ends');
      await endOfTurn();
      assert.deepEqual(sockets.map((s) => s.writes.length), [1, 1, 1]);
      for (const socket of sockets) {
        assert.equal(socket.writes[0]!.length, 1, 'one buffer, not a writev of 50');
        assert.deepEqual(socket.bytes, Buffer.concat(frames));
      }
      assert.equal(metrics.writes, 3);
      assert.equal(metrics.bytesOut, 3 * Buffer.concat(frames).length);
      // The next turn is a new write.
      box.send(entries[0]!, frame('later'));
      await endOfTurn();
      assert.deepEqual(sockets.map((s) => s.writes.length), [2, 1, 1]);
      assert.equal(sockets[0]!.writes[1]![0]!.toString(), 'later');
    });

    it('coalesces frames queued by separate callbacks of one turn, as messages from many peers read in one poll', async () => {
      const { outbox: box } = outbox();
      const socket = new RecordingSocket();
      const entry = new Entry(socket);
      // Two callbacks of the same event-loop phase, with microtasks between them: a flush on
      // process.nextTick or a microtask would write twice.
      await new Promise<void>((resolve) => {
        setImmediate(() => box.send(entry, frame('from the first peer;')));
        setImmediate(() => {
          box.send(entry, frame('from the second peer'));
          resolve();
        });
      });
      await endOfTurn();
      assert.equal(socket.writes.length, 1);
      assert.equal(socket.bytes.toString(), 'from the first peer;from the second peer');
    });

    it('writes a lone frame as it is, without copying it', async () => {
      const { outbox: box } = outbox();
      const socket = new RecordingSocket();
      const only = frame('alone');
      box.send(new Entry(socket), only);
      await endOfTurn();
      assert.equal(socket.writes[0]![0], only);
    });

    it('sends a burst over maxWriteBytes as pieces of at most that size, in one corked write', async () => {
      const { outbox: box, metrics } = outbox({ maxWriteBytes: 100 });
      const socket = new RecordingSocket();
      const frames = [...Array.from({ length: 9 }, (_, i) => Buffer.alloc(30, 97 + i)), Buffer.alloc(250, 122)];
      const entry = new Entry(socket);
      for (const f of frames) box.send(entry, f);
      await endOfTurn();
      assert.equal(socket.writes.length, 1, 'one writev: the pieces were corked together');
      const pieces = socket.writes[0]!;
      assert.deepEqual(pieces.map((p) => p.length), [90, 90, 90, 250], 'three frames of 30 fit in 100; the big frame goes alone');
      assert.deepEqual(socket.bytes, Buffer.concat(frames));
      assert.equal(metrics.writes, 1);
    });

    it('runs beforeFlush (the journal writing ahead) before each turn\'s first write', async () => {
      const log: string[] = [];
      const { outbox: box } = outbox({ beforeFlush: () => log.push('journal') });
      const entry = new Entry(new RecordingSocket(log));
      box.send(entry, frame('x'));
      box.send(entry, frame('y'));
      assert.deepEqual(log, []);
      await endOfTurn();
      // The hook may run more than once (it is cheap when nothing is pending); never after the write.
      assert.equal(log.at(-1), 'write');
      assert.equal(log.filter((e) => e === 'write').length, 1);
      assert.ok(log.length >= 2 && log.slice(0, -1).every((e) => e === 'journal'), log.join(', '));
      log.length = 0;
      box.writeAhead();
      assert.deepEqual(log, ['journal'], 'writeAhead() runs the hook for frames written outside the outbox');
    });

    it('carries the bytes of one turn intact over a real TCP connection', async () => {
      const listener = createServer();
      listener.listen(0, '127.0.0.1');
      await once(listener, 'listening');
      const client = connect((listener.address() as { port: number }).port, '127.0.0.1');
      const [server] = (await once(listener, 'connection')) as [Socket];
      try {
        const { outbox: box, metrics } = outbox();
        const frames = Array.from({ length: 1000 }, (_, i) => frame(`${i},`));
        const entry = new Entry(server);
        for (const f of frames) box.send(entry, f);
        const expected = Buffer.concat(frames);
        const received: Buffer[] = [];
        let length = 0;
        const all = new Promise<void>((resolve) =>
          client.on('data', (chunk: Buffer) => {
            received.push(chunk);
            if ((length += chunk.length) >= expected.length) resolve();
          }),
        );
        await all;
        assert.deepEqual(Buffer.concat(received), expected);
        assert.equal(metrics.writes, 1);
        assert.equal(metrics.bytesOut, expected.length);
      } finally {
        client.destroy();
        server.destroy();
        listener.close();
      }
    });
  });

  describe('the slow-consumer bound', () => {
    it('allows exactly maxBuffered bytes waiting (what Node holds and this flush), and drops the socket at one more', async () => {
      const { outbox: box } = outbox({ maxBuffered: 100 });
      const socket = new RecordingSocket();
      socket.stall();
      const entry = new Entry(socket);
      box.send(entry, Buffer.alloc(60));
      await endOfTurn();
      assert.equal(socket.writableLength, 60, 'the peer reads nothing: Node holds the 60 bytes');
      box.send(entry, Buffer.alloc(30));
      box.send(entry, Buffer.alloc(10));
      await endOfTurn();
      assert.equal(entry.overflows, 0, '60 + 30 + 10 = 100 is within the bound');
      assert.equal(socket.writableLength, 100);
      box.send(entry, Buffer.alloc(1));
      await endOfTurn();
      assert.equal(entry.overflows, 1, '101 is not');
      assert.equal(socket.writableLength, 100, 'the byte that would pass the bound was never written');
      box.send(entry, Buffer.alloc(1));
      await endOfTurn();
      assert.equal(entry.overflows, 1, 'told once: a closing recipient gets nothing more');
    });

    it('leaves other sockets alone when one is dropped', async () => {
      const { outbox: box, metrics } = outbox({ maxBuffered: 100 });
      const slowSocket = new RecordingSocket();
      slowSocket.stall();
      const slow = new Entry(slowSocket);
      const fine = new Entry(new RecordingSocket());
      box.send(slow, Buffer.alloc(45));
      await endOfTurn();
      box.send(slow, Buffer.alloc(40));
      box.send(fine, Buffer.alloc(40));
      box.send(fine, Buffer.alloc(5));
      await endOfTurn();
      // 45 held + 40 for the slow one, 45 for the fine one: all within 100.
      assert.equal(slow.overflows, 0);
      box.send(slow, Buffer.alloc(20));
      box.send(fine, Buffer.alloc(20));
      await endOfTurn();
      assert.equal(slow.overflows, 1, '85 held + 20 passes 100');
      assert.equal(fine.overflows, 0);
      assert.equal((fine.socket as RecordingSocket).bytes.length, 65);
      assert.equal(metrics.writes, 4);
    });
  });

  describe('after a close', () => {
    it('drops frames queued for a socket that is closing, and writes nothing', async () => {
      const { outbox: box, metrics } = outbox();
      const socket = new RecordingSocket();
      const entry = new Entry(socket);
      box.send(entry, frame('before the close'));
      entry.closing = true;
      box.send(entry, frame('after the close'));
      await endOfTurn();
      assert.equal(socket.writes.length, 0);
      assert.equal(metrics.writes, 0);
      assert.equal(entry.queued, undefined, 'nothing is kept for it either');
    });

    it('flushAll() writes what is queued at once (before a close frame), and the turn adds nothing', async () => {
      const { outbox: box, metrics } = outbox();
      const socket = new RecordingSocket();
      const entry = new Entry(socket);
      box.send(entry, frame('a'));
      box.send(entry, frame('b'));
      box.flushAll();
      assert.equal(socket.writes.length, 1);
      assert.equal(socket.bytes.toString(), 'ab');
      entry.closing = true;
      box.send(entry, frame('c'));
      await endOfTurn();
      assert.equal(socket.writes.length, 1);
      assert.equal(metrics.writes, 1);
    });
  });
});
