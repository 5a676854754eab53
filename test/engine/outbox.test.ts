/**
 * The outbox (src/server/engine/outbox.ts): every frame a socket gets in one event-loop turn
 * leaves in one write at the end of it; members that got the same frames get the same batch,
 * concatenated once; the slow-consumer bound; nothing after a close. Sockets here are Duplex
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
import { Outbox, type OutboxEntry, type OutboxOptions } from '../../src/server/engine/outbox.js';

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

/** An OutboxEntry as a connection is one: its socket, its turn's frames, a closing flag. */
class Entry implements OutboxEntry {
  pending: Buffer[] = [];
  pendingBytes = 0;
  bufferedAtTurnStart = 0;
  closing = false;
  overflows = 0;
  constructor(readonly socket: RecordingSocket | Socket) {}
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
      for (const f of frames) for (const entry of entries) box.enqueue(entry, f);
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
      box.enqueue(entries[0]!, frame('later'));
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
        setImmediate(() => box.enqueue(entry, frame('from the first peer;')));
        setImmediate(() => {
          box.enqueue(entry, frame('from the second peer'));
          resolve();
        });
      });
      await endOfTurn();
      assert.equal(socket.writes.length, 1);
      assert.equal(socket.bytes.toString(), 'from the first peer;from the second peer');
    });

    it('hands the same batch, by reference, to members that got the same frames; others get their own', async () => {
      const { outbox: box } = outbox();
      const [a, b, c, d] = Array.from({ length: 4 }, () => new Entry(new RecordingSocket()));
      const shared = [frame('one'), frame('two'), frame('three')];
      for (const f of shared) {
        box.enqueue(a!, f);
        box.enqueue(b!, f);
      }
      // Equal bytes in other Buffers: frames are compared by reference, never by content.
      for (const text of ['one', 'two', 'three']) box.enqueue(c!, frame(text));
      box.enqueue(d!, shared[0]!);
      box.enqueue(d!, shared[1]!);
      await endOfTurn();
      const written = [a, b, c, d].map((entry) => (entry!.socket as RecordingSocket).writes[0]![0]!);
      assert.equal(written[0], written[1], 'a and b were written the very same Buffer');
      assert.deepEqual(written[0], Buffer.from('onetwothree'));
      assert.notEqual(written[2], written[0], 'c got equal bytes in a batch of its own');
      assert.deepEqual(written[2], Buffer.from('onetwothree'));
      assert.deepEqual(written[3], Buffer.from('onetwo'), 'a prefix of the same frames is another batch');
    });

    it('writes a lone frame as it is, without copying it', async () => {
      const { outbox: box } = outbox();
      const socket = new RecordingSocket();
      const only = frame('alone');
      box.enqueue(new Entry(socket), only);
      await endOfTurn();
      assert.equal(socket.writes[0]![0], only);
    });

    it('sends a burst over maxWriteBytes as pieces of at most that size, in one corked write', async () => {
      const { outbox: box, metrics } = outbox({ maxWriteBytes: 100 });
      const socket = new RecordingSocket();
      const frames = [...Array.from({ length: 9 }, (_, i) => Buffer.alloc(30, 97 + i)), Buffer.alloc(250, 122)];
      const entry = new Entry(socket);
      for (const f of frames) box.enqueue(entry, f);
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
      box.enqueue(entry, frame('x'));
      box.enqueue(entry, frame('y'));
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
        for (const f of frames) box.enqueue(entry, f);
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
    it('allows exactly maxBuffered bytes waiting (Node\'s buffer and this turn\'s frames), and drops the socket at one more', async () => {
      const { outbox: box } = outbox({ maxBuffered: 100 });
      const socket = new RecordingSocket();
      socket.stall();
      const entry = new Entry(socket);
      box.enqueue(entry, Buffer.alloc(60));
      await endOfTurn();
      assert.equal(socket.writableLength, 60, 'the peer reads nothing: Node holds the 60 bytes');
      box.enqueue(entry, Buffer.alloc(30));
      box.enqueue(entry, Buffer.alloc(10));
      assert.equal(entry.overflows, 0, '60 + 30 + 10 = 100 is within the bound');
      box.enqueue(entry, Buffer.alloc(1));
      assert.equal(entry.overflows, 1, '101 is not');
      assert.deepEqual(entry.pending, [], "the turn's frames are dropped with it");
      box.enqueue(entry, Buffer.alloc(1));
      await endOfTurn();
      assert.equal(entry.overflows, 1, 'told once');
      assert.equal(socket.writes.length, 1, 'nothing after the first write reached the socket');
    });

    it("counts this turn's frames too, on a socket that holds nothing yet", () => {
      const { outbox: box } = outbox({ maxBuffered: 100 });
      const entry = new Entry(new RecordingSocket());
      box.enqueue(entry, Buffer.alloc(50));
      box.enqueue(entry, Buffer.alloc(50));
      assert.equal(entry.overflows, 0);
      box.enqueue(entry, Buffer.alloc(1));
      assert.equal(entry.overflows, 1);
    });

    it('leaves other sockets alone when one is dropped', async () => {
      const { outbox: box, metrics } = outbox({ maxBuffered: 100 });
      const slow = new Entry(new RecordingSocket());
      const fine = new Entry(new RecordingSocket());
      const big = Buffer.alloc(60);
      box.enqueue(slow, big);
      box.enqueue(fine, big);
      box.enqueue(slow, big);
      box.enqueue(fine, Buffer.alloc(40));
      await endOfTurn();
      assert.equal(slow.overflows, 1);
      assert.equal(fine.overflows, 0);
      assert.equal((slow.socket as RecordingSocket).writes.length, 0);
      assert.equal((fine.socket as RecordingSocket).bytes.length, 100);
      assert.equal(metrics.writes, 1);
    });
  });

  describe('after a close', () => {
    it('drops frames queued for a socket that is closing, and writes nothing', async () => {
      const { outbox: box, metrics } = outbox();
      const socket = new RecordingSocket();
      const entry = new Entry(socket);
      box.enqueue(entry, frame('before the close'));
      entry.closing = true;
      box.enqueue(entry, frame('after the close'));
      await endOfTurn();
      assert.equal(socket.writes.length, 0);
      assert.equal(metrics.writes, 0);
      assert.deepEqual(entry.pending, []);
    });

    it('flush() writes what is queued at once (before a close frame), and the turn adds nothing', async () => {
      const { outbox: box, metrics } = outbox();
      const socket = new RecordingSocket();
      const entry = new Entry(socket);
      box.enqueue(entry, frame('a'));
      box.enqueue(entry, frame('b'));
      box.flush(entry);
      assert.equal(socket.writes.length, 1);
      assert.equal(socket.bytes.toString(), 'ab');
      entry.closing = true;
      box.enqueue(entry, frame('c'));
      await endOfTurn();
      assert.equal(socket.writes.length, 1);
      assert.equal(metrics.writes, 1);
    });
  });
});
