/**
 * The Backplane contract (src/server/rooms/backplane/types.ts), one suite for every
 * implementation: the same cases run against the local backplane, against Redis, and against a
 * Redis Cluster where redis-server runs. Each is built the way a node builds it (node/backplanes.ts)
 * over a real hub and history, with plain objects as members: publish and ack order, resume from
 * the log, epochs, presence, bounds.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { resolveOptions } from '../../../src/server/config.js';
import { Hub } from '../../../src/server/engine/hub.js';
import { Metrics } from '../../../src/server/engine/metrics.js';
import { createLogger } from '../../../src/server/logger.js';
import { localBackplane, redisBackplane, type BackplaneFactory } from '../../../src/server/node/backplanes.js';
import type { Backplane, Draft } from '../../../src/server/rooms/backplane/types.js';
import { HistoryStore } from '../../../src/server/rooms/history.js';
import { createLocalNode } from '../../../src/server/rooms/local-node.js';
import { REDIS_URL, skipWithoutRedis } from '../../helpers/cluster.js';
import { Collector } from '../../helpers/members.js';

import { RedisCluster } from '../../helpers/redis-cluster.js';
import { until } from '../../helpers/wait.mjs';

const HISTORY_SIZE = 4;

interface Built {
  backplane: Backplane;
  hub: Hub;
  history: HistoryStore;
}

/** Builds a started backplane as a node would, and closes every one built at the end. */
function builder(factory: BackplaneFactory, redis: () => string | undefined) {
  const built: Backplane[] = [];
  return {
    async build(): Promise<Built> {
      const options = resolveOptions({ historySize: HISTORY_SIZE, redis: redis() ?? '', presenceTtl: 5_000 });
      const hub = new Hub();
      const history = new HistoryStore({ size: options.historySize, ttl: options.historyTtl, maxBytes: 1 << 20, maxRooms: 100 });
      const local = createLocalNode(hub, new Metrics(), []);
      const backplane = factory({ local, history, options, logger: createLogger({ level: 'error', format: 'json' }) });
      built.push(backplane);
      await backplane.start();
      await until(() => backplane.status.up, 10_000, 'the backplane up');
      return { backplane, hub, history };
    },
    async closeAll(): Promise<void> {
      await Promise.all(built.map((backplane) => backplane.close()));
    },
  };
}

function draft(room: string, data: unknown): Draft {
  return { room, roomJson: JSON.stringify(room), fromJson: '{"session":"p","name":"P"}', dataJson: JSON.stringify(data), payload: { kind: 'json', data }, time: Date.now(), except: undefined };
}

/** A room name no earlier run of this suite used (Redis keeps rooms between runs). */
const freshRoom = (what: string) => `contract-${what}-${randomBytes(4).toString('hex')}`;

/** Reads until `done` holds (or 10 s pass) and returns the last reading, for the asserts to judge. */
async function settled<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  // A read may also fail while a fresh Redis Cluster client settles its slot map ("Connection is
  // closed" on a connection it replaced): reads are safe to repeat, so only the last one counts.
  const deadline = Date.now() + 10_000;
  for (;;) {
    let value: T;
    try {
      value = await read();
    } catch (error) {
      if (Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 25));
      continue;
    }
    if (done(value) || Date.now() >= deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Joins `member` as the broker does: the backplane holds the room, then the hub has the member. */
async function join(subject: Built, member: Collector, room: string): Promise<void> {
  await subject.backplane.attach(room);
  subject.hub.join(member, room);
}

function contract(name: string, factory: BackplaneFactory, redis: () => string | undefined, skip: string | false): void {
  describe(`Backplane contract: ${name}`, { skip }, () => {
    const backplanes = builder(factory, redis);
    after(() => backplanes.closeAll());

    it('resolves each publish only after this node\'s members were handed it, in offset order', async () => {
      const subject = await backplanes.build();
      const room = freshRoom('order');
      const member = new Collector('m');
      await join(subject, member, room);
      const seenAtAck: number[] = [];
      const acks = await Promise.all(
        [1, 2, 3, 4, 5].map((n) =>
          subject.backplane.publish(draft(room, n)).then((published) => {
            // The ack cannot overtake its own message: the member holds it when the publish resolves.
            assert.ok(member.envelopes.some((envelope) => envelope.offset === published.offset), `offset ${published.offset} handed over before its ack`);
            seenAtAck.push(published.offset);
            return published;
          }),
        ),
      );
      assert.deepEqual(acks.map((ack) => ack.offset), [1, 2, 3, 4, 5]);
      assert.deepEqual(seenAtAck, [1, 2, 3, 4, 5]);
      assert.deepEqual(member.envelopes.map((envelope) => [envelope.offset, envelope.data]), [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]]);
      assert.ok(acks.every((ack) => ack.delivered === 1));
    });

    it('keeps one epoch per room across publishes, and gives another room its own', async () => {
      const subject = await backplanes.build();
      const [first, second] = [freshRoom('epoch-a'), freshRoom('epoch-b')];
      const a1 = await subject.backplane.publish(draft(first, 'x'));
      const a2 = await subject.backplane.publish(draft(first, 'y'));
      const b1 = await subject.backplane.publish(draft(second, 'z'));
      assert.equal(a1.epoch, a2.epoch);
      assert.notEqual(a1.epoch, b1.epoch);
      assert.match(a1.epoch, /\S/);
    });

    it('answers a resume from the log: a later attach sees every offset given out, and history pages after `since`', async () => {
      const subject = await backplanes.build();
      const room = freshRoom('resume');
      const member = new Collector('m');
      await join(subject, member, room);
      const acks = [];
      for (const n of [1, 2, 3]) acks.push(await subject.backplane.publish(draft(room, n)));
      const log = await subject.backplane.attach(room);
      assert.equal(log.lastOffset, 3);
      assert.equal(log.epoch, acks[0]!.epoch);
      const page = await subject.backplane.history(room, 1, 10);
      assert.ok(page, 'the room has history');
      assert.equal(page.epoch, acks[0]!.epoch);
      assert.equal(page.lastOffset, 3);
      assert.equal(page.complete, true);
      assert.deepEqual(page.messages.map((json) => [JSON.parse(json).offset, JSON.parse(json).data]), [[2, 2], [3, 3]]);
      assert.equal(await subject.backplane.history(freshRoom('never'), 0, 10), undefined);
    });

    it('bounds history at its size and a page at its limit, and says when a page is not complete', async () => {
      const subject = await backplanes.build();
      const room = freshRoom('bounds');
      await join(subject, new Collector('m'), room);
      for (let n = 1; n <= HISTORY_SIZE + 3; n++) await subject.backplane.publish(draft(room, n));
      const everything = await subject.backplane.history(room, 0, 100);
      assert.deepEqual(everything?.messages.map((json) => JSON.parse(json).offset), [4, 5, 6, 7]);
      assert.equal(everything?.complete, false, 'offsets 1 to 3 were trimmed');
      const cut = await subject.backplane.history(room, 4, 2);
      assert.deepEqual(cut?.messages.map((json) => JSON.parse(json).offset), [5, 6]);
    });

    it('hands an ephemeral publish to the members of the moment on every node, outside the room\'s order (issue #22, item 8)', async () => {
      const subject = await backplanes.build();
      // On one server the room here is every member; a cluster has a second node to reach.
      const other = redis() === undefined ? undefined : await backplanes.build();
      const room = freshRoom('ephemeral');
      const [here, there] = [new Collector('here'), new Collector('there')];
      await join(subject, here, room);
      if (other) await join(other, there, room);
      const first = await subject.backplane.publish(draft(room, 'before'));
      const delivered = await subject.backplane.publishEphemeral(draft(room, 'typing'));
      assert.equal(delivered, 1);
      const second = await subject.backplane.publish(draft(room, 'after'));
      assert.equal(second.offset, first.offset + 1, 'the ephemeral publish took no offset');
      assert.deepEqual(here.envelopes.map((e) => [e.type, e.data]), [['message', 'before'], ['ephemeral', 'typing'], ['message', 'after']]);
      const ephemeral = here.envelopes[1]!;
      assert.equal(ephemeral.offset, undefined);
      assert.equal(ephemeral.epoch, undefined);
      assert.equal(ephemeral.room, room);
      if (other) {
        await until(() => there.envelopes.length === 3, 10_000, 'the other node\'s member has all three');
        assert.deepEqual(there.envelopes.map((e) => [e.type, e.data]), [['message', 'before'], ['ephemeral', 'typing'], ['message', 'after']]);
        // Not taken for a gap: the other node's log went on from 'before' to 'after' without a re-read.
        assert.equal(other.backplane.stats?.resets, 0);
        assert.equal((await other.backplane.attach(room)).lastOffset, second.offset);
      }
      const page = await subject.backplane.history(room, 0, 10);
      assert.deepEqual(page?.messages.map((json) => JSON.parse(json).data), ['before', 'after'], 'history keeps no ephemeral publish');
    });

    it('lists the members announced, with an exact count and the list cut at the limit', async () => {
      const subject = await backplanes.build();
      const room = freshRoom('presence');
      const members = ['a', 'b', 'c'].map((id) => new Collector(id));
      for (const member of members) {
        await join(subject, member, room);
        subject.backplane.announce(subject.hub.room(room)!, 'joined', member);
      }
      // A cluster's directory learns of announcements on its own time: wait for them, then check.
      const listed = await settled(() => subject.backplane.members(room, 2), (list) => list.count === 3);
      assert.equal(listed.count, 3);
      assert.equal(listed.members.length, 2);
      assert.deepEqual([...listed.sessions].sort(), ['a', 'b', 'c']);
      const rooms = await settled(() => subject.backplane.rooms(), (list) => list.some((entry) => entry.room === room && entry.members === 3));
      const summary = rooms.find((entry) => entry.room === room);
      assert.equal(summary?.members, 3);
      assert.equal(summary?.lastOffset, 0);
    });
  });
}

contract('local', localBackplane, () => undefined, false);
contract('Redis', redisBackplane, () => REDIS_URL, skipWithoutRedis());

describe('on a Redis Cluster', { skip: skipWithoutRedis() }, () => {
  let cluster: RedisCluster | undefined;
  before(async () => {
    cluster = await RedisCluster.start({ masters: 3, replicas: 0 });
  });
  after(() => cluster?.destroy());
  contract('Redis Cluster', redisBackplane, () => cluster?.url, false);
});
