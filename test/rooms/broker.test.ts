/**
 * The broker (src/server/rooms/broker.ts) with the real hub, history and LocalBackplane, and
 * plain objects as members: joins and re-joins, the per-connection room limit, the room-creation
 * allowance, server_full, a member that closes while its join waits, leaves, presence and
 * publishing through the backplane.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeSender } from '../../src/server/engine/envelope.js';
import { Hub } from '../../src/server/engine/hub.js';
import { Metrics } from '../../src/server/engine/metrics.js';
import { LocalBackplane } from '../../src/server/rooms/backplane/local.js';
import { Broker, type JoinResult } from '../../src/server/rooms/broker.js';
import { HistoryStore } from '../../src/server/rooms/history.js';
import { createLocalNode } from '../../src/server/rooms/local-node.js';
import { Collector } from '../helpers/members.js';

function setup(limits: { maxRoomsPerConnection?: number; maxPresence?: number; maxRooms?: number } = {}) {
  const metrics = new Metrics();
  const hub = new Hub();
  const history = new HistoryStore({ size: 10, ttl: 60_000, maxBytes: 1 << 20, maxRooms: limits.maxRooms ?? 100 });
  const backplane = new LocalBackplane(createLocalNode(hub, metrics, []), history);
  const broker = new Broker(hub, history, backplane, { maxRoomsPerConnection: limits.maxRoomsPerConnection ?? 10, maxPresence: limits.maxPresence ?? 10 }, metrics);
  return { metrics, hub, history, broker };
}

/** The successful result of a join; fails the test otherwise. */
function ok(result: JoinResult | undefined): Extract<JoinResult, { ok: true }> {
  assert.ok(result, 'the join was answered');
  assert.ok(result.ok, `the join was refused: ${!result.ok && result.code}`);
  return result;
}

function refused(result: JoinResult | undefined): string {
  assert.ok(result && !result.ok, 'the join was refused');
  assert.ok(result.message.length > 0);
  return result.code;
}

const from = (member: Collector) => ({ fromJson: encodeSender(member.id, member.name) });

describe('Broker', () => {
  describe('join', () => {
    it("adds the member to the room and answers with the room's log", async () => {
      const { broker, hub, history } = setup();
      const ada = new Collector('ada');
      const result = ok(await broker.join(ada, 'team', false));
      assert.equal(result.room, hub.room('team'));
      assert.ok(result.room.members.has(ada));
      assert.deepEqual([...ada.rooms], [result.room]);
      assert.equal(result.log, history.log('team'));
      assert.equal(result.log.lastOffset, 0);
      assert.equal(result.log.holds, 1, 'the member holds the room');
      assert.equal(result.members, undefined, 'no member list without watch');
      assert.equal(result.room.watchers.size, 0);
    });

    it('answers a re-join again, without counting it as another room, and may add watching', async () => {
      const { broker } = setup({ maxRoomsPerConnection: 1 });
      const ada = new Collector('ada');
      const first = ok(await broker.join(ada, 'team', false));
      const again = ok(await broker.join(ada, 'team', true));
      assert.equal(again.room, first.room);
      assert.equal(again.log, first.log);
      assert.equal(first.log.holds, 1, 'still one hold');
      assert.ok(again.room.watchers.has(ada));
      assert.deepEqual(again.members?.members, [{ session: 'ada', name: 'ada' }]);
      assert.equal(refused(await broker.join(ada, 'other', false)), 'too_many_rooms');
    });

    it('refuses a join past maxRoomsPerConnection with too_many_rooms, leaving no state', async () => {
      const { broker, hub, history } = setup({ maxRoomsPerConnection: 2 });
      const ada = new Collector('ada');
      ok(await broker.join(ada, 'a', false));
      ok(await broker.join(ada, 'b', false));
      assert.equal(refused(await broker.join(ada, 'c', false)), 'too_many_rooms');
      assert.equal(hub.room('c'), undefined);
      assert.equal(history.log('c'), undefined, 'refused before the room was even opened');
      assert.equal(ada.rooms.size, 2);
      // Others may still join it.
      ok(await broker.join(new Collector('grace'), 'c', false));
    });

    it('holds concurrent joins of one connection to the limit after they waited', async () => {
      const { broker, history } = setup({ maxRoomsPerConnection: 1 });
      const ada = new Collector('ada');
      const [a, b] = await Promise.all([broker.join(ada, 'a', false), broker.join(ada, 'b', false)]);
      assert.deepEqual([a?.ok, b?.ok], [true, false]);
      assert.equal(refused(b), 'too_many_rooms');
      assert.equal(history.log('b')?.holds ?? 0, 0, 'the refused join gave its hold back');
      assert.equal(ada.rooms.size, 1);
    });

    it('joins a room once when the same join is sent twice at once', async () => {
      const { broker, history } = setup();
      const ada = new Collector('ada');
      const [first, second] = await Promise.all([broker.join(ada, 'r', false), broker.join(ada, 'r', false)]);
      assert.equal(ok(first).room, ok(second).room);
      assert.equal(history.log('r')!.holds, 1);
      assert.equal(ada.rooms.size, 1);
    });

    it('asks the member for a room creation only when the room is new, and refuses with rate_limited when it has none', async () => {
      const { broker, hub, history } = setup();
      const ada = new Collector('ada');
      ada.creations = 1;
      ok(await broker.join(ada, 'new-1', false));
      assert.equal(ada.creationChecks, 1);
      assert.equal(refused(await broker.join(ada, 'new-2', false)), 'rate_limited');
      assert.equal(hub.room('new-2'), undefined);
      assert.equal(history.log('new-2'), undefined);
      // A room that exists costs nothing.
      ok(await broker.join(new Collector('grace'), 'exists', false));
      ok(await broker.join(ada, 'exists', false));
      assert.equal(ada.creationChecks, 2, 'only new-1 and the refused new-2 were checked');
    });

    it('refuses with server_full when every room slot is held by members, and lets an empty room give way', async () => {
      const { broker, history } = setup({ maxRooms: 2 });
      const ada = new Collector('ada');
      ok(await broker.join(ada, 'a', false));
      ok(await broker.join(ada, 'b', false));
      const grace = new Collector('grace');
      assert.equal(refused(await broker.join(grace, 'c', false)), 'server_full');
      assert.equal(grace.rooms.size, 0);
      broker.leave(ada, [...ada.rooms].find((room) => room.name === 'a')!);
      ok(await broker.join(grace, 'c', false));
      assert.equal(history.log('a'), undefined, 'the room nobody was in gave way');
    });

    it('never adds a member that closed while its join waited, and lets the room go', async () => {
      const { broker, hub, history } = setup();
      const ada = new Collector('ada');
      const pending = broker.join(ada, 'r', true);
      ada.open = false;
      assert.equal(await pending, undefined);
      assert.equal(hub.room('r'), undefined);
      assert.equal(ada.rooms.size, 0);
      assert.equal(history.log('r')!.holds, 0);
    });

    it('answers nothing to a re-join of a member that closed meanwhile', async () => {
      const { broker } = setup();
      const ada = new Collector('ada');
      ok(await broker.join(ada, 'r', false));
      const pending = broker.join(ada, 'r', true);
      ada.open = false;
      assert.equal(await pending, undefined);
    });
  });

  describe('leave', () => {
    it('removes the member, gives its hold back and forgets an empty room; a second leave does nothing', async () => {
      const { broker, hub } = setup();
      const ada = new Collector('ada');
      const grace = new Collector('grace');
      const { room, log } = ok(await broker.join(ada, 'r', false));
      ok(await broker.join(grace, 'r', false));
      assert.equal(log.holds, 2);
      broker.leave(ada, room);
      assert.equal(room.members.has(ada), false);
      assert.equal(ada.rooms.size, 0);
      assert.equal(log.holds, 1);
      broker.leave(ada, room);
      assert.equal(log.holds, 1, 'leaving twice gives back one hold only');
      broker.leaveAll(grace);
      assert.equal(hub.room('r'), undefined);
      assert.equal(log.holds, 0);
    });
  });

  describe('presence', () => {
    it('lists the members to a watcher that joins, itself included, and tells it who joins and leaves after', async () => {
      const { broker } = setup();
      const ada = new Collector('ada', 'v1', 'Ada');
      const grace = new Collector('grace', 'v1', 'Grace');
      ok(await broker.join(grace, 'r', false));
      const watching = ok(await broker.join(ada, 'r', true));
      assert.deepEqual(watching.members?.members, [{ session: 'grace', name: 'Grace' }, { session: 'ada', name: 'Ada' }]);
      assert.equal(watching.members?.count, 2);
      assert.deepEqual(ada.envelopes, [], 'a watcher is not told about its own join');
      const linus = new Collector('linus', 'v1', 'Linus');
      const { room } = ok(await broker.join(linus, 'r', false));
      broker.leave(linus, room);
      assert.deepEqual(ada.envelopes, [
        { type: 'presence', room: 'r', joined: [{ session: 'linus', name: 'Linus' }], memberCount: 3 },
        { type: 'presence', room: 'r', left: [{ session: 'linus', name: 'Linus' }], memberCount: 2 },
      ]);
      assert.deepEqual(grace.envelopes, [], 'members that do not watch get no presence');
    });

    it('cuts the list at maxPresence and keeps the count exact', async () => {
      const { broker } = setup({ maxPresence: 2 });
      for (const id of ['a', 'b', 'c']) ok(await broker.join(new Collector(id), 'r', false));
      const result = ok(await broker.join(new Collector('d'), 'r', true));
      assert.equal(result.members?.members.length, 2);
      assert.equal(result.members?.count, 4);
    });
  });

  describe('publish', () => {
    it("gives messages the room's next offsets and hands them to the members here before resolving", async () => {
      const { broker, metrics } = setup();
      const ada = new Collector('ada', 'v1', 'Ada');
      const plain = new Collector('plain', 'plain');
      const { log } = ok(await broker.join(ada, 'r', false));
      ok(await broker.join(plain, 'r', false));
      for (let n = 1; n <= 3; n++) {
        const published = await broker.publish('r', { kind: 'json', data: { n } }, from(ada));
        assert.deepEqual(published, { offset: n, epoch: log.epoch, delivered: 2 });
        assert.equal(ada.frames.length, n, 'delivered before the promise resolved');
      }
      assert.deepEqual(
        ada.envelopes.map((e) => [e.type, e.room, e.offset, e.epoch, e.from, e.data]),
        [1, 2, 3].map((n) => ['message', 'r', n, log.epoch, { session: 'ada', name: 'Ada' }, { n }]),
      );
      assert.deepEqual(plain.texts, ['{"n":1}', '{"n":2}', '{"n":3}'], 'plain members get the data');
      assert.equal(metrics.published, 3);
      assert.equal(log.lastOffset, 3);
      assert.deepEqual(broker.recent(log, 2).map((entry) => JSON.parse(entry.json).offset), [2, 3]);
    });

    it('leaves out the member it is told to (excludeSelf), and still counts the offset', async () => {
      const { broker } = setup();
      const ada = new Collector('ada');
      const grace = new Collector('grace');
      ok(await broker.join(ada, 'r', false));
      ok(await broker.join(grace, 'r', false));
      const published = await broker.publish('r', { kind: 'json', data: 'quiet' }, from(ada), ada);
      assert.equal(published.delivered, 1);
      assert.equal(published.offset, 1);
      assert.deepEqual(ada.frames, []);
      assert.equal(grace.envelopes[0]!.data, 'quiet');
    });

    it('keeps what is published to a room nobody is in, for those who join later', async () => {
      const { broker } = setup();
      const published = await broker.publish('empty', { kind: 'text', text: 'hello', bytes: Buffer.from('hello') }, { fromJson: encodeSender('api', 'api') });
      assert.equal(published.delivered, 0);
      const { log } = ok(await broker.join(new Collector('late'), 'empty', false));
      assert.equal(log.lastOffset, 1);
      const recovery = broker.recover(log, { epoch: log.epoch, offset: 0 });
      assert.ok(recovery.recovered);
      assert.deepEqual(recovery.entries.map((entry) => JSON.parse(entry.json).data), ['hello']);
      assert.deepEqual(broker.recover(log, { epoch: 'other', offset: 0 }), { recovered: false, reason: 'epoch_changed' });
    });

    it('rejects with server_full when no room slot is left', async () => {
      const { broker } = setup({ maxRooms: 1 });
      ok(await broker.join(new Collector('ada'), 'held', false));
      await assert.rejects(broker.publish('elsewhere', { kind: 'json', data: 1 }, { fromJson: '{}' }), { name: 'BackplaneError', code: 'server_full' });
    });
  });
});
