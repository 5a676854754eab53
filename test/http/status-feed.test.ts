/** The status feed without sockets: a real broker, hub and history, fake members, a fast interval. */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { LocalBackplane } from '../../src/server/rooms/backplane/local.js';
import { Broker } from '../../src/server/rooms/broker.js';
import { createLocalNode } from '../../src/server/rooms/local-node.js';
import { withReservedRooms } from '../../src/server/rooms/reserved-rooms.js';
import { HistoryStore } from '../../src/server/rooms/history.js';
import { Hub, type Member, type Room, type WireProtocol } from '../../src/server/engine/hub.js';
import { Metrics } from '../../src/server/engine/metrics.js';
import { createStatusFeed, STATUS_ROOM, type StatusFeed, type StatusSnapshot } from '../../src/server/http/status-feed.js';
import { payloadOf } from '../helpers/frames.js';

class FakeMember implements Member {
  readonly rooms = new Set<Room>();
  readonly frames: Buffer[] = [];
  constructor(
    readonly id: string,
    readonly protocol: WireProtocol = 'v1',
    readonly name = 'tester',
  ) {}
  isOpen(): boolean {
    return true;
  }
  deliver(frame: Buffer): void {
    this.frames.push(frame);
  }
  /** The payload of each unmasked server frame, parsed. */
  get envelopes(): Array<Record<string, any>> {
    return this.frames.map((frame) => JSON.parse(payloadOf(frame).toString('utf8')));
  }
}

function setup() {
  const metrics = new Metrics();
  const hub = new Hub();
  const history = new HistoryStore({ size: 10, ttl: 60_000, maxBytes: 1 << 20, maxRooms: 100 });
  const connections = new Set<FakeMember>();
  const node = createLocalNode(hub, metrics, []);
  const backplane = withReservedRooms(new LocalBackplane(node, history), node, history);
  const broker = new Broker(hub, history, backplane, { maxRoomsPerConnection: 10, maxPresence: 10 }, metrics);
  const feed = createStatusFeed({ broker, metrics, connections, interval: 20 });
  return { metrics, broker, connections, feed };
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function snapshots(member: FakeMember, count: number): Promise<StatusSnapshot[]> {
  const deadline = Date.now() + 3000;
  while (member.envelopes.length < count) {
    if (Date.now() > deadline) throw new Error(`expected ${count} snapshots, got ${member.envelopes.length}`);
    await wait(5);
  }
  return member.envelopes.map((e) => e.data as StatusSnapshot);
}

describe('createStatusFeed', () => {
  let feed: StatusFeed | undefined;
  afterEach(() => feed?.stop());

  it('publishes nothing while nobody is in the status room', async () => {
    const s = setup();
    feed = s.feed;
    feed.start();
    await wait(80);
    assert.equal(s.metrics.published, 0);
    assert.equal(s.broker.history.log(STATUS_ROOM), undefined);
  });

  it('publishes a snapshot every interval to its watchers, from plaza/status', async () => {
    const s = setup();
    feed = s.feed;
    const watcher = new FakeMember('w');
    s.connections.add(watcher);
    await s.broker.join(watcher, STATUS_ROOM, false);
    feed.start();
    await snapshots(watcher, 3);
    const [first] = watcher.envelopes;
    assert.equal(first!.type, 'message');
    assert.equal(first!.room, STATUS_ROOM);
    assert.deepEqual(first!.from, { session: 'plaza', name: 'status' });
    assert.deepEqual(Object.keys(first!.data).sort(), ['busiest', 'connections', 'eventLoop', 'history', 'memory', 'rates', 'rooms', 'time', 'totals', 'uptime', 'v']);
    s.broker.leave(watcher, [...watcher.rooms][0]!);
    const seen = watcher.frames.length;
    await wait(80);
    assert.equal(watcher.frames.length, seen, 'no more snapshots once the room is empty');
  });

  it('counts connections by protocol and lists the five busiest rooms, most members first', async () => {
    const s = setup();
    feed = s.feed;
    const watcher = new FakeMember('w');
    s.connections.add(watcher);
    await s.broker.join(watcher, STATUS_ROOM, false);
    const sizes: Record<string, number> = { a: 1, b: 6, c: 3, d: 2, e: 5, f: 4, g: 1 };
    let n = 0;
    for (const [room, size] of Object.entries(sizes)) {
      for (let i = 0; i < size; i++) {
        const member = new FakeMember(`m${n++}`, n % 3 === 0 ? 'plain' : 'v1');
        s.connections.add(member);
        await s.broker.join(member, room, false);
      }
    }
    feed.start();
    const [snapshot] = await snapshots(watcher, 1);
    assert.deepEqual(snapshot!.busiest, [
      { room: 'b', members: 6 }, { room: 'e', members: 5 }, { room: 'f', members: 4 }, { room: 'c', members: 3 }, { room: 'd', members: 2 },
    ]);
    const plain = [...s.connections].filter((c) => c.protocol === 'plain').length;
    assert.deepEqual(snapshot!.connections, { total: 23, plain, v1: 23 - plain, sse: 0 });
    assert.equal(snapshot!.rooms, 7, 'seven rooms: the status room, where the page itself is, is left out');
  });

  it('reports rates without counting its own snapshots', async () => {
    const s = setup();
    feed = s.feed;
    const watcher = new FakeMember('w');
    await s.broker.join(watcher, STATUS_ROOM, false);
    const listener = new FakeMember('l');
    await s.broker.join(listener, 'busy', false);
    feed.start();
    await snapshots(watcher, 2);
    for (const snapshot of (await snapshots(watcher, 2)).slice(1)) {
      assert.equal(snapshot.rates.published, 0);
      assert.equal(snapshot.rates.deliveries, 0);
    }
    const before = watcher.frames.length;
    for (let i = 0; i < 50; i++) s.broker.publish('busy', { kind: 'json', data: i }, { fromJson: '{"session":"t","name":"t"}' });
    const after = await snapshots(watcher, before + 1);
    const snapshot = after[before]!;
    assert.ok(snapshot.rates.published > 0 && snapshot.rates.published === snapshot.rates.deliveries, JSON.stringify(snapshot.rates));
    assert.equal(snapshot.totals.published, 50 + before, 'totals count everything, snapshots included');
  });

  it('reads zero event-loop delay before start and after stop; stop is idempotent', () => {
    const s = setup();
    feed = s.feed;
    assert.deepEqual(feed.takeEventLoopDelay(), { p50: 0, p99: 0, max: 0 });
    feed.start();
    feed.start();
    feed.stop();
    feed.stop();
    assert.deepEqual(feed.takeEventLoopDelay(), { p50: 0, p99: 0, max: 0 });
  });

  it('refuses a bad interval', () => {
    const s = setup();
    assert.throws(
      () => createStatusFeed({ broker: s.broker, metrics: s.metrics, connections: [], interval: 0 }),
      /interval: expected ms ≥ 10/,
    );
  });
});
