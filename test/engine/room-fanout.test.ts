/**
 * The outbox's room fan-out (src/server/engine/outbox.ts) on real TCP sockets: a room's message is
 * queued once and every member gets the turn's frames in one write, in the order they were
 * queued, with replies interleaved where they were sent; a member that joins mid-turn takes only
 * what follows, one that leaves keeps what came before; the slow-consumer bound, the write-ahead
 * hook, --write-delay and the turn's byte bound hold.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { encodeTextFrame } from '../../src/server/engine/frame.js';
import { Hub, type Outgoing, type Room, type WireProtocol } from '../../src/server/engine/hub.js';
import { Metrics } from '../../src/server/engine/metrics.js';
import { Outbox, type DirectQueue, type OutboxOptions, type Recipient } from '../../src/server/engine/outbox.js';
import { frameTexts } from '../helpers/frames.js';

let listener: Server;
const open: Socket[] = [];

before(async () => {
  listener = createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
});

after(() => {
  for (const socket of open) socket.destroy();
  listener.close();
});

/** A connected pair: the server side is written to, the client side collects what arrives. */
async function pair(): Promise<{ server: Socket; received: () => Buffer }> {
  const client = connect((listener.address() as { port: number }).port, '127.0.0.1');
  const [server] = (await once(listener, 'connection')) as [Socket];
  open.push(client, server);
  const chunks: Buffer[] = [];
  client.on('data', (chunk: Buffer) => chunks.push(chunk));
  return { server, received: () => Buffer.concat(chunks) };
}

class Member implements Recipient {
  readonly rooms = new Set<Room>();
  readonly name = 'tester';
  queued: DirectQueue | undefined = undefined;
  flushMark = 0;
  overflows = 0;
  writes: Buffer[] = [];
  closed = false;
  constructor(
    readonly id: string,
    readonly socket: Socket,
    readonly received: () => Buffer,
    readonly protocol: WireProtocol = 'plain',
  ) {
    const write = socket.write.bind(socket) as (chunk: Buffer) => boolean;
    // Every buffer handed to the socket is recorded (and written), to see what was shared.
    socket.write = ((chunk: Buffer) => {
      this.writes.push(chunk);
      return write(chunk);
    }) as typeof socket.write;
  }
  readonly replaying = false;
  hold(): void {}
  isOpen(): boolean {
    return !this.closed;
  }
  isWritable(): boolean {
    return !this.closed;
  }
  onOverflow(): void {
    this.overflows++;
    this.closed = true;
  }
  deliver(frame: Buffer): void {
    outbox.send(this, frame);
  }
}

let outbox: Outbox;

function setup(options: Partial<OutboxOptions> = {}) {
  const metrics = new Metrics();
  outbox = new Outbox({ maxBuffered: 1024 * 1024, maxWriteBytes: 256 * 1024, metrics, ...options });
  return { hub: new Hub(outbox), metrics };
}

async function members(count: number, protocol: WireProtocol = 'plain'): Promise<Member[]> {
  const out: Member[] = [];
  for (let i = 0; i < count; i++) {
    const { server, received } = await pair();
    out.push(new Member(`m${i}`, server, received, protocol));
  }
  return out;
}

const text = (value: string): Outgoing => ({ frameFor: (protocol) => encodeTextFrame(`${protocol}:${value}`) });
const turn = () => new Promise((resolve) => setImmediate(resolve));
/** Until every member's client side has `count` frames (bounded by the test runner's timeout). */
async function arrived(list: Member[], count: number): Promise<void> {
  while (list.some((m) => frameTexts(m.received()).length < count)) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe('outbox: room fan-out', () => {
  it('writes a turn of N messages to each member in one write, the same batch shared by reference', async () => {
    const { hub, metrics } = setup();
    const list = await members(5);
    for (const m of list) hub.join(m, 'lobby');
    const room = hub.room('lobby')!;
    for (let i = 0; i < 20; i++) assert.equal(hub.publish(room, text(`${i}`)), 5);
    assert.equal(metrics.writes, 0, 'nothing is written before the end of the turn');
    await turn();
    assert.equal(metrics.writes, 5, 'one write per socket');
    for (const m of list) assert.equal(m.writes.length, 1);
    for (const m of list) assert.equal(m.writes[0], list[0]!.writes[0], 'the same Buffer object for every member');
    await arrived(list, 20);
    for (const m of list) assert.deepEqual(frameTexts(m.received()), Array.from({ length: 20 }, (_, i) => `plain:${i}`));
  });

  it('frames each message once per wire protocol present, and writes each member its own', async () => {
    const { hub } = setup();
    const [plain] = await members(1, 'plain');
    const [v1] = await members(1, 'v1');
    hub.join(plain!, 'r');
    hub.join(v1!, 'r');
    const calls: WireProtocol[] = [];
    hub.publish(hub.room('r')!, { frameFor: (p) => (calls.push(p), encodeTextFrame(`${p}:x`)) });
    assert.deepEqual(calls.sort(), ['plain', 'v1']);
    await arrived([plain!, v1!], 1);
    assert.deepEqual(frameTexts(plain!.received()), ['plain:x']);
    assert.deepEqual(frameTexts(v1!.received()), ['v1:x']);
  });

  it('keeps the order of everything queued to a member: two rooms and its own replies, interleaved', async () => {
    const { hub } = setup();
    const [both, onlyA] = await members(2);
    hub.join(both!, 'a');
    hub.join(both!, 'b');
    hub.join(onlyA!, 'a');
    const a = hub.room('a')!;
    const b = hub.room('b')!;
    hub.publish(a, text('a1'));
    both!.deliver(encodeTextFrame('reply1'));
    hub.publish(b, text('b1'));
    hub.publish(a, text('a2'));
    both!.deliver(encodeTextFrame('reply2'));
    hub.publish(b, text('b2'));
    await turn();
    assert.equal(both!.writes.length, 1, 'still one write');
    await arrived([both!, onlyA!], 2);
    assert.deepEqual(frameTexts(both!.received()), ['plain:a1', 'reply1', 'plain:b1', 'plain:a2', 'reply2', 'plain:b2']);
    assert.deepEqual(frameTexts(onlyA!.received()), ['plain:a1', 'plain:a2']);
  });

  it('gives a member that joins mid-turn only what follows, and one that leaves what came before', async () => {
    const { hub } = setup();
    const [stays, late, leaves] = await members(3);
    hub.join(stays!, 'r');
    hub.join(leaves!, 'r');
    const room = hub.room('r')!;
    hub.publish(room, text('1'));
    hub.join(late!, 'r');
    hub.publish(room, text('2'));
    hub.leave(leaves!, room);
    hub.publish(room, text('3'));
    await turn();
    await arrived([stays!], 3);
    await arrived([late!, leaves!], 2);
    assert.deepEqual(frameTexts(stays!.received()), ['plain:1', 'plain:2', 'plain:3']);
    assert.deepEqual(frameTexts(late!.received()), ['plain:2', 'plain:3']);
    assert.deepEqual(frameTexts(leaves!.received()), ['plain:1', 'plain:2']);
  });

  it('leaves the excluded member out of its own messages only', async () => {
    const { hub } = setup();
    const [sender, other] = await members(2);
    hub.join(sender!, 'r');
    hub.join(other!, 'r');
    const room = hub.room('r')!;
    assert.equal(hub.publish(room, text('mine'), sender), 1);
    hub.publish(room, text('theirs'), other);
    hub.publish(room, text('all'));
    await turn();
    await arrived([sender!, other!], 2);
    assert.deepEqual(frameTexts(sender!.received()), ['plain:theirs', 'plain:all']);
    assert.deepEqual(frameTexts(other!.received()), ['plain:mine', 'plain:all']);
  });

  it('drops a member whose socket already holds --max-buffered bytes, and writes nothing to it', async () => {
    const { hub, metrics } = setup({ maxBuffered: 4096 });
    const [slow, fine] = await members(2);
    hub.join(slow!, 'r');
    hub.join(fine!, 'r');
    // Node's buffer for the slow one looks full: as if the peer had stopped reading.
    Object.defineProperty(slow!.socket, 'writableLength', { get: () => 4000 });
    hub.publish(hub.room('r')!, text('x'.repeat(200)));
    await turn();
    assert.equal(slow!.overflows, 1);
    assert.equal(slow!.writes.length, 0);
    assert.equal(fine!.writes.length, 1);
    assert.equal(metrics.writes, 1);
  });

  it('runs the write-ahead hook before the first write of every flush', async () => {
    const events: string[] = [];
    const { hub } = setup({ beforeFlush: () => events.push('journal') });
    const [m] = await members(1);
    const write = m!.socket.write;
    m!.socket.write = ((chunk: Buffer) => (events.push('write'), write(chunk))) as typeof write;
    hub.join(m!, 'r');
    hub.publish(hub.room('r')!, text('1'));
    await turn();
    hub.publish(hub.room('r')!, text('2'));
    await turn();
    assert.deepEqual(events, ['journal', 'write', 'journal', 'write']);
  });

  it('with --write-delay, frames queued in different turns share one write', async () => {
    const { hub, metrics } = setup({ writeDelay: 200 });
    const [m] = await members(1);
    hub.join(m!, 'r');
    const room = hub.room('r')!;
    hub.publish(room, text('1'));
    await turn();
    hub.publish(room, text('2'));
    await turn();
    m!.deliver(encodeTextFrame('reply'));
    assert.equal(metrics.writes, 0, 'still waiting for the delay');
    await arrived([m!], 3);
    assert.equal(metrics.writes, 1);
    assert.deepEqual(frameTexts(m!.received()), ['plain:1', 'plain:2', 'reply']);
  });

  it('writes at once what waits when a turn would pass half of --max-buffered (the bound on what waits)', async () => {
    const { hub, metrics } = setup({ maxBuffered: 8192, writeDelay: 60_000 });
    const [m] = await members(1);
    hub.join(m!, 'r');
    const room = hub.room('r')!;
    for (let i = 0; i < 5; i++) hub.publish(room, text(`${i}`.padEnd(1000, '.')));
    assert.equal(metrics.writes, 1, 'the first four went out without waiting for the delay');
    outbox.flushAll();
    assert.equal(metrics.writes, 2);
    assert.equal(m!.overflows, 0);
    await arrived([m!], 5);
  });

  it('writes nothing more to a member that is no longer writable (its close frame was sent)', async () => {
    const { hub, metrics } = setup();
    const [m] = await members(1);
    hub.join(m!, 'r');
    hub.publish(hub.room('r')!, text('1'));
    m!.closed = true;
    m!.deliver(encodeTextFrame('late'));
    await turn();
    assert.equal(metrics.writes, 0);
  });
});
