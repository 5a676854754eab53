/**
 * The wire to Redis (src/server/rooms/backplane/redis/link.ts and its parts) against the real Redis at
 * REDIS_URL: the Lua scripts (offsets, epochs, a stream some other program wrote, retiring an
 * epoch, fetch leaving out entries that are not Plaza's), history pages, presence with its
 * expiry, room counts across nodes, control requests and replies, and the channel format.
 * Every room and node here has a name of its own, so a Redis shared with other tests is left as
 * it was found.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { parseChannelText, type ChannelMessage } from '../../../../src/server/rooms/backplane/redis/codec.js';
import type { ControlRequest, RedisLinkEvents } from '../../../../src/server/rooms/backplane/redis/connections.js';
import { roomKeys } from '../../../../src/server/rooms/backplane/redis/keys.js';
import { RedisLink } from '../../../../src/server/rooms/backplane/redis/link.js';
import type { RoomCommands } from '../../../../src/server/rooms/backplane/redis/room-commands.js';
import { redactRedisUrl } from '../../../../src/server/redis-target.js';
import { REDIS_URL, skipWithoutRedis } from '../../../helpers/cluster.js';
import { until } from '../../../helpers/wait.mjs';

const TTL = 60_000;
const PRESENCE_TTL = 15_000;
const unique = (what: string) => `${what}-${randomBytes(4).toString('hex')}`;

/** Everything a link told its owner. */
class Recorder implements RedisLinkEvents {
  readies = 0;
  downs: string[] = [];
  channel: ChannelMessage[] = [];
  control: ControlRequest[] = [];
  replies: Array<{ id: string; count: number }> = [];
  mail: string[] = [];
  onMail(text: string): void {
    this.mail.push(text);
  }
  onReady(): void {
    this.readies++;
  }
  onDown(reason: string): void {
    this.downs.push(reason);
  }
  onChannel(message: ChannelMessage): void {
    this.channel.push(message);
  }
  onControl(request: ControlRequest): void {
    this.control.push(request);
  }
  onReply(id: string, count: number): void {
    this.replies.push({ id, count });
  }
  onLapse(): void {
    // Only a Redis Cluster's sharded channels lapse; this is one Redis.
  }
}

type Parts = Parameters<RoomCommands['publish']>[2][number] & { newEpoch: string };

const parts = (n: number, extra: Partial<Parts> = {}): Parts => ({
  time: 1_700_000_000_000 + n,
  fromJson: '{"session":"s","name":"N"}',
  dataJson: JSON.stringify({ n }),
  plain: 'j' as const,
  except: '',
  token: '',
  publishId: '',
  fingerprint: '',
  newEpoch: 'EPOCH-A',
  ...extra,
});

/** One message through the publish script (which takes a room's messages in batches). */
async function publishOne(link: RedisLink, room: string, { newEpoch, ...message }: Parts) {
  const { epoch, sequenced } = await link.rooms.publish(room, newEpoch, [message]);
  const { offset, first } = sequenced[0]!;
  return first ? { offset, epoch, first } : { offset, epoch };
}

describe('RedisLink', { skip: skipWithoutRedis() }, () => {
  const links: RedisLink[] = [];
  const rooms: string[] = [];
  const nodes: string[] = [];
  let admin: Redis;

  /** A connected link (ready, subscriptions restored) with its own node id. */
  async function open(options: { historySize?: number; historyTtl?: number; publishIdWindow?: number; publishIdTtl?: number } = {}): Promise<{ link: RedisLink; events: Recorder; nodeId: string }> {
    const events = new Recorder();
    const nodeId = unique('node');
    nodes.push(nodeId);
    const link = new RedisLink({ url: REDIS_URL, nodeId, historySize: options.historySize ?? 100, historyTtl: options.historyTtl ?? TTL, ...options }, events);
    links.push(link);
    await link.connect();
    await until(() => link.ready && events.readies === 1, 5000, 'the link ready');
    return { link, events, nodeId };
  }

  const room = (what = 'room') => {
    const name = unique(`link-test-${what}`);
    rooms.push(name);
    return name;
  };

  before(() => {
    admin = new Redis(REDIS_URL);
  });

  after(async () => {
    await Promise.all(links.map((link) => link.close()));
    const keys = rooms.flatMap((name) => Object.values(roomKeys(name)));
    if (keys.length > 0) await admin.del(...keys);
    for (const node of nodes) {
      await admin.del(`plaza:{nodes}:${node}:rooms`);
      await admin.zrem('plaza:{nodes}', node);
    }
    admin.disconnect();
  });

  describe('the publish script', () => {
    it('answers a repeated publish id with the first offset and epoch, publishing nothing, even from another link (issue #22)', async () => {
      const { link } = await open({ publishIdWindow: 10 });
      const { link: other } = await open({ publishIdWindow: 10 });
      const name = room();
      const now = Date.now();
      assert.deepEqual(await publishOne(link, name, parts(1, { time: now, publishId: 'c.1', fingerprint: 'fp' })), { offset: 1, epoch: 'EPOCH-A' });
      assert.deepEqual(await publishOne(other, name, parts(2, { time: now, publishId: 'c.1' })), { offset: 1, epoch: 'EPOCH-A', first: { epoch: 'EPOCH-A', fingerprint: 'fp' } });
      assert.deepEqual(await publishOne(other, name, parts(3, { time: now, publishId: 'c.2' })), { offset: 2, epoch: 'EPOCH-A' });
      // In one batch too: the second of two equal ids is a repeat of the first.
      const batch = await link.rooms.publish(name, 'EPOCH-A', [parts(4, { time: now, publishId: 'c.3' }), parts(5, { time: now, publishId: 'c.3' })]);
      assert.deepEqual(batch.sequenced, [{ offset: 3 }, { offset: 3, first: { epoch: 'EPOCH-A', fingerprint: '' } }]);
      assert.equal(await admin.xlen(roomKeys(name).stream), 3);
      assert.deepEqual(await link.rooms.firstAck(name, 'c.2', now), { offset: 2, epoch: 'EPOCH-A', fingerprint: '' });
      assert.equal(await link.rooms.firstAck(name, 'nope', now), undefined);
    });

    it('keeps at most publishIdWindow ids per room in Redis, and forgets them after publishIdTtl (issue #22)', async () => {
      const { link } = await open({ publishIdWindow: 20, publishIdTtl: 60_000 });
      const name = room();
      const now = Date.now();
      for (let n = 1; n <= 200; n++) await publishOne(link, name, parts(n, { time: now, publishId: `random-${n}` }));
      const keys = roomKeys(name);
      assert.equal(await admin.hlen(keys.ids), 20);
      assert.equal(await admin.llen(keys.idq), 20);
      assert.equal(await link.rooms.firstAck(name, 'random-180', now), undefined, 'pushed out by newer ids');
      assert.equal((await link.rooms.firstAck(name, 'random-181', now))?.offset, 181);
      // A minute later every id has aged out: the next publish sweeps them from the oldest end.
      const later = now + 61_000;
      assert.equal(await link.rooms.firstAck(name, 'random-200', later), undefined);
      for (let n = 201; n <= 203; n++) await publishOne(link, name, parts(n, { time: later, publishId: `late-${n}` }));
      // Each script call (a batch) sweeps up to 8 aged ids: three took the twenty old ones away.
      assert.equal(await admin.hlen(keys.ids), 3);
      assert.equal(await admin.llen(keys.idq), 3);
      assert.ok((await admin.pttl(keys.ids)) <= 60_000);
    });
    it('gives a room offsets 1, 2, 3 under the epoch its first publish brought, and stores each under <offset>-1', async () => {
      const { link } = await open();
      const name = room();
      assert.deepEqual(await publishOne(link, name, parts(1)), { offset: 1, epoch: 'EPOCH-A' });
      assert.deepEqual(await publishOne(link, name, parts(2, { newEpoch: 'EPOCH-B' })), { offset: 2, epoch: 'EPOCH-A' }, 'an epoch that exists stays');
      assert.deepEqual(await publishOne(link, name, parts(3, { plain: 't', except: 'sess-x', token: 'node.1', dataJson: '"hi"' })), { offset: 3, epoch: 'EPOCH-A' });
      const keys = roomKeys(name);
      const stream = await admin.xrange(keys.stream, '-', '+');
      assert.deepEqual(stream.map(([id]) => id), ['1-1', '2-1', '3-1']);
      assert.deepEqual(stream[2]![1], ['t', '1700000000003', 'f', '{"session":"s","name":"N"}', 'd', '"hi"', 'k', 't', 'x', 'sess-x', 'n', 'node.1']);
      assert.deepEqual(stream[0]![1].slice(8), ['x', '-', 'n', '-'], 'no except and no token are stored as -');
      assert.equal(await admin.get(keys.offset), '3');
      for (const key of [keys.epoch, keys.offset, keys.stream]) {
        const ttl = await admin.pttl(key);
        assert.ok(ttl > 0 && ttl <= TTL, `${key} expires with the history (${ttl} ms)`);
      }
    });

    it('keeps the stream at about historySize entries', async () => {
      const { link } = await open({ historySize: 10 });
      const name = room();
      for (let n = 1; n <= 300; n++) await publishOne(link, name, parts(n));
      const length = await admin.xlen(roomKeys(name).stream);
      assert.ok(length >= 10 && length < 300, `MAXLEN ~ 10 trimmed the stream to ${length}`);
    });

    it('starts a new epoch over a stream some other program wrote, instead of failing', async () => {
      const { link } = await open();
      const name = room();
      const keys = roomKeys(name);
      await admin.set(keys.epoch, 'OLD');
      await admin.set(keys.offset, '7');
      await admin.xadd(keys.stream, '*', 'foreign', 'entry');
      assert.deepEqual(await publishOne(link, name, parts(1, { newEpoch: 'FRESH' })), { offset: 1, epoch: 'FRESH' });
      assert.deepEqual((await admin.xrange(keys.stream, '-', '+')).map(([id]) => id), ['1-1']);
      assert.equal(await admin.get(keys.epoch), 'FRESH');
    });

    it('publishes each message on the room channel, in offset order, in the format parseChannelText reads', async () => {
      const { link: writer } = await open();
      const { link: reader, events } = await open();
      const name = room();
      await reader.connections.subscribe(name);
      assert.equal(reader.connections.channelCount, 1);
      for (let n = 1; n <= 5; n++) await publishOne(writer, name, parts(n, n === 5 ? { except: 'me', token: 'node-a.5', plain: 'b', dataJson: '"AAE="' } : {}));
      await until(() => events.channel.length === 5, 5000, 'five channel messages');
      assert.deepEqual(events.channel.map((m) => m.kind === 'message' && m.offset), [1, 2, 3, 4, 5]);
      assert.deepEqual(events.channel[4], {
        kind: 'message', room: name, offset: 5, epoch: 'EPOCH-A', time: 1_700_000_000_005, plain: 'b', except: 'me', token: 'node-a.5',
        fromJson: '{"session":"s","name":"N"}', dataJson: '"AAE="',
      });
      assert.equal((events.channel[0] as { except: string; token: string }).except, '');
    });

    it('stops delivering a room after unsubscribe (Redis keeps one connection in order, so no waiting is needed)', async () => {
      const { link: writer } = await open();
      const { link: reader, events } = await open();
      const [left, kept] = [room('left'), room('kept')];
      await reader.connections.subscribe(left);
      await reader.connections.subscribe(kept);
      await reader.connections.unsubscribe(left);
      await publishOne(writer, left, parts(1));
      await publishOne(writer, kept, parts(1));
      await until(() => events.channel.length >= 1, 5000, 'the kept room');
      assert.deepEqual(events.channel.map((m) => m.room), [kept]);
    });
  });

  describe('fetch', () => {
    it('creates a missing room with the epoch it brings and nothing in it', async () => {
      const { link } = await open();
      const name = room();
      assert.deepEqual(await link.rooms.fetch(name, 'BRAND-NEW'), { epoch: 'BRAND-NEW', lastOffset: 0, entries: [] });
      const ttl = await admin.pttl(roomKeys(name).epoch);
      assert.ok(ttl > 0 && ttl <= TTL);
      assert.equal((await link.rooms.fetch(name, 'ANOTHER')).epoch, 'BRAND-NEW');
    });

    it('reads the newest historySize entries oldest first, leaving out entries Plaza did not write or has not given out', async () => {
      const { link } = await open({ historySize: 3 });
      const name = room();
      for (let n = 1; n <= 4; n++) await publishOne(link, name, parts(n));
      const stream = roomKeys(name).stream;
      // Not `<offset>-1`, and past the offsets given out: neither is history.
      await admin.xadd(stream, '4-2', 'd', '"stray"');
      await admin.xadd(stream, '9-1', 't', '0', 'f', '{}', 'd', '"from the future"', 'k', 'j', 'x', '-', 'n', '-');
      const state = await link.rooms.fetch(name, 'UNUSED');
      assert.equal(state.epoch, 'EPOCH-A');
      assert.equal(state.lastOffset, 4);
      // COUNT 3 of the newest reads 9-1, 4-2 and 4-1: only 4 is history.
      assert.deepEqual(state.entries.map((e) => e.offset), [4]);
      assert.deepEqual(state.entries[0], { offset: 4, time: 1_700_000_000_004, fromJson: '{"session":"s","name":"N"}', dataJson: '{"n":4}', plain: 'j', except: '', token: '' });
      const wider = await (await open({ historySize: 10 })).link.rooms.fetch(name, 'UNUSED');
      assert.deepEqual(wider.entries.map((e) => e.offset), [1, 2, 3, 4]);
    });
  });

  describe('retireEpoch', () => {
    it('replaces the epoch only if it is still the one given, emptying offsets and history', async () => {
      const { link } = await open();
      const name = room();
      for (let n = 1; n <= 3; n++) await publishOne(link, name, parts(n));
      await link.rooms.retireEpoch(name, 'NOT-CURRENT', 'NEXT');
      assert.deepEqual((await link.rooms.fetch(name, 'X')).lastOffset, 3, 'a stale compare changes nothing');
      await link.rooms.retireEpoch(name, 'EPOCH-A', 'NEXT');
      assert.deepEqual(await link.rooms.fetch(name, 'X'), { epoch: 'NEXT', lastOffset: 0, entries: [] });
      assert.deepEqual(await publishOne(link, name, parts(4)), { offset: 1, epoch: 'NEXT' });
    });
  });

  describe('page', () => {
    it('pages entries after an offset with the room position and its oldest kept offset', async () => {
      const { link } = await open();
      const name = room();
      assert.equal(await link.rooms.page(name, 0, 10), undefined, 'a room Redis never saw');
      for (let n = 1; n <= 5; n++) await publishOne(link, name, parts(n));
      const page = await link.rooms.page(name, 2, 2);
      assert.deepEqual([page?.epoch, page?.lastOffset, page?.first], ['EPOCH-A', 5, 1]);
      assert.deepEqual(page?.entries.map((e) => [e.offset, e.dataJson]), [[3, '{"n":3}'], [4, '{"n":4}']]);
      assert.deepEqual((await link.rooms.page(name, 5, 10))?.entries, []);
      await admin.xtrim(roomKeys(name).stream, 'MAXLEN', 2);
      assert.equal((await link.rooms.page(name, 0, 10))?.first, 4, 'the oldest entry kept');
      await admin.del(roomKeys(name).stream);
      assert.equal((await link.rooms.page(name, 0, 10))?.first, 6, 'nothing kept: first is past the last offset');
    });
  });

  describe('presence', () => {
    it('records a member with an expiry, tells every node once, and removes it once', async () => {
      const { link, nodeId } = await open();
      const { link: other, events } = await open();
      const name = room();
      await other.connections.subscribe(name);
      const stored = JSON.stringify({ name: 'Ada', at: 1 });
      await link.presence.join(name, 'sess-a', stored, 1, PRESENCE_TTL, (count) => `{"joined":${count}}`);
      const keys = roomKeys(name);
      assert.deepEqual(await admin.hgetall(keys.presence), { 'sess-a': stored });
      assert.deepEqual(await link.presence.members(name), { 'sess-a': stored });
      const nodeKey = `plaza:{nodes}:${nodeId}:rooms`;
      assert.equal(await admin.hget(nodeKey, name), '1');
      for (const key of [keys.presence, nodeKey]) {
        const ttl = await admin.pttl(key);
        assert.ok(ttl > PRESENCE_TTL && ttl <= PRESENCE_TTL * 2, `${key} expires unless refreshed (${ttl} ms)`);
      }
      assert.equal(await link.presence.leave(name, 'sess-a', 0, (count) => `{"left":${count}}`), true);
      assert.equal(await link.presence.leave(name, 'sess-a', 0, (count) => `{"left":${count}}`), false, 'the second leave removes nothing');
      assert.equal(await admin.hget(nodeKey, name), null, 'no members here: the room leaves the node summary');
      // A marker after the second leave proves it published nothing (one connection keeps order).
      await publishOne(link, name, parts(1));
      await until(() => events.channel.some((m) => m.kind === 'message'), 5000, 'the marker');
      assert.deepEqual(
        events.channel.map((m) => (m.kind === 'presence' ? [m.subject, m.json] : 'marker')),
        [['sess-a', '{"joined":1}'], ['sess-a', '{"left":0}'], 'marker'],
      );
      assert.deepEqual(await link.presence.membersOf([name, room('empty')]), [{}, {}]);
      assert.deepEqual(await link.presence.membersOf([]), []);
    });

    it("refreshes a node's members and summary, and counts rooms over the nodes seen within the presence TTL", async () => {
      const { link: a } = await open();
      const { link: b } = await open();
      const { link: stale } = await open();
      const name = room();
      const now = Date.now();
      const members = (count: number) => Array.from({ length: count }, (_, i) => ({ session: unique(`s${i}`), stored: '{"name":"x"}' }));
      await a.presence.refresh([{ room: name, members: members(2) }], PRESENCE_TTL, now);
      await b.presence.refresh([{ room: name, members: members(3) }], PRESENCE_TTL, now);
      // Last seen longer ago than the presence TTL: its members no longer count.
      await stale.presence.refresh([{ room: name, members: members(50) }], PRESENCE_TTL, now - PRESENCE_TTL - 1000);
      assert.equal((await a.presence.roomCounts(PRESENCE_TTL, now)).get(name), 5);
      assert.equal(Object.keys(await a.presence.members(name)).length, 55, 'the hash itself keeps them until it expires');
      const ttl = await admin.pttl(roomKeys(name).presence);
      assert.ok(ttl > PRESENCE_TTL && ttl <= PRESENCE_TTL * 2);
      // A refresh replaces the node's summary: a room it left is no longer counted for it.
      await b.presence.refresh([], PRESENCE_TTL, now);
      assert.equal((await a.presence.roomCounts(PRESENCE_TTL, now)).get(name), 2);
      assert.deepEqual(await a.rooms.positions([name, room('never')]), [{ epoch: null, lastOffset: 0 }, { epoch: null, lastOffset: 0 }]);
    });
  });

  describe('control', () => {
    it('sends a request to every node and a reply to the one that asked', async () => {
      const { link: asker, events: askerEvents, nodeId } = await open();
      const { link: answerer, events } = await open();
      const request: ControlRequest = { id: unique('req'), from: nodeId, op: 'disconnect', session: unique('nobody'), reason: 'test' };
      assert.ok((await asker.presence.control(request, PRESENCE_TTL)) >= 2, 'both links are subscribed');
      await until(() => events.control.some((c) => c.id === request.id), 5000, 'the request');
      assert.deepEqual(events.control.find((c) => c.id === request.id), request);
      // What is not a Plaza reply on the reply channel is ignored.
      await admin.publish(`plaza:reply:${nodeId}`, 'not json');
      await answerer.presence.reply(nodeId, request.id, 3);
      await until(() => askerEvents.replies.length === 1, 5000, 'the reply');
      assert.deepEqual(askerEvents.replies, [{ id: request.id, count: 3 }]);
    });
  });

  describe('when Redis cannot be reached', () => {
    it('fails commands at once with a message that names the URL without its password', async () => {
      const events = new Recorder();
      const link = new RedisLink({ url: 'redis://:s3cret-password@127.0.0.1:1', nodeId: unique('down'), historySize: 10, historyTtl: TTL }, events);
      links.push(link);
      await link.connect();
      await assert.rejects(link.rooms.fetch('r', 'E'), (error: Error) => {
        assert.match(error.message, /^Redis is not reachable at redis:\/\/:\*\*\*@127\.0\.0\.1:1/);
        assert.doesNotMatch(error.message, /s3cret/);
        return true;
      });
      assert.equal(link.ready, false);
      assert.equal(events.readies, 0);
    });

    it('subscribes the rooms asked for while offline once it is ready', async () => {
      const events = new Recorder();
      const nodeId = unique('late');
      nodes.push(nodeId);
      const link = new RedisLink({ url: REDIS_URL, nodeId, historySize: 10, historyTtl: TTL }, events);
      links.push(link);
      const name = room();
      await link.connections.subscribe(name);
      await link.connect();
      await until(() => events.readies === 1, 5000, 'ready');
      const { link: writer } = await open();
      await publishOne(writer, name, parts(1));
      await until(() => events.channel.length === 1, 5000, 'the message');
    });
  });
});

describe('parseChannelText', () => {
  it('reads a message: position, kinds, sender and data (which may hold anything after the second line feed)', () => {
    assert.deepEqual(parseChannelText('r', 'm 12 EP 1700 t sess node.3\n{"session":"s","name":"N"}\n"two\\nlines"'), {
      kind: 'message', room: 'r', offset: 12, epoch: 'EP', time: 1700, plain: 't', except: 'sess', token: 'node.3',
      fromJson: '{"session":"s","name":"N"}', dataJson: '"two\\nlines"',
    });
    const bare = parseChannelText('r', 'm 1 EP 5 j - -\n{}\n{"a":1}');
    assert.deepEqual([bare?.kind === 'message' && bare.except, bare?.kind === 'message' && bare.token], ['', '']);
  });

  it('reads a presence delta', () => {
    assert.deepEqual(parseChannelText('r', 'p sess-1\n{"type":"presence"}'), { kind: 'presence', room: 'r', subject: 'sess-1', json: '{"type":"presence"}' });
  });

  it('ignores anything else', () => {
    for (const text of ['', 'm 1 EP 5 j - -', 'm 1 EP 5 j -\n{}\n1', 'm 1 EP 5 q - -\n{}\n1', 'm 1 EP 5 j - -\nno second line', 'x 1\n{}', 'p\n{}', 'p a b\n{}']) {
      assert.equal(parseChannelText('r', text), undefined, JSON.stringify(text));
    }
  });
});

describe('redactRedisUrl', () => {
  it('hides the password and keeps the rest; says something safe for what is no URL', () => {
    assert.equal(redactRedisUrl('redis://user:pa55@redis.internal:6380/2'), 'redis://user:***@redis.internal:6380/2');
    assert.equal(redactRedisUrl('redis://127.0.0.1:6379'), 'redis://127.0.0.1:6379');
    assert.equal(redactRedisUrl('redis+sentinel://:pw@s1,s2/mymaster?sentinelPassword=s3'), 'redis+sentinel://:***@s1,s2/mymaster?sentinelPassword=***');
  });
});
