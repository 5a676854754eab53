/**
 * Tables and queues that grow per message, per connection or per room, each held to its bound
 * (issue: "every relayed message stays in the heap"; the same pattern looked for elsewhere).
 * History (rooms/history.test.ts), the journal (rooms/journal.test.ts), the failure limiter
 * (auth-failures.test.ts), the token expiry queue (connections/expiry-queue.test.ts), replays
 * (engine/replay.test.ts), in-flight publishes (cluster-promise.test.ts) and rooms
 * (room-limits.test.ts) have their own; here are the rest.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { LocalBackplane } from '../src/server/rooms/backplane/local.js';
import { RedisBackplane } from '../src/server/rooms/backplane/redis/backplane.js';
import { Broker } from '../src/server/rooms/broker.js';
import { HistoryStore } from '../src/server/rooms/history.js';
import { Hub, type Member, type Room } from '../src/server/engine/hub.js';
import { createLocalNode } from '../src/server/rooms/local-node.js';
import { createLogger } from '../src/server/logger.js';
import { Metrics } from '../src/server/engine/metrics.js';
import { ConnectionLimits } from '../src/server/sessions/connection-limits.js';
import { PrivateRedis, REDIS_URL, skipWithoutRedis, startNode, stopNode } from './helpers/cluster.js';

import { encodeClientFrame, openRaw } from './helpers/raw-ws.js';
import { V1Client } from './helpers/v1.js';
import { until } from './helpers/wait.mjs';
import { untilReady } from './helpers/processes.mjs';

/** A member that keeps the frames it is handed (no socket). */
class Collector implements Member {
  readonly rooms = new Set<Room>();
  readonly frames: Buffer[] = [];
  readonly protocol = 'v1' as const;
  readonly name = 'collector';
  constructor(readonly id: string) {}
  isOpen(): boolean {
    return true;
  }
  deliver(frame: Buffer): void {
    this.frames.push(frame);
  }
  offsets(): number[] {
    return this.frames.map((frame) => JSON.parse(frame.subarray(frame[1]! === 126 ? 4 : 2).toString()) as { offset?: number }).flatMap((e) => (e.offset ? [e.offset] : []));
  }
}

describe('bounds', () => {
  it('the broker keeps encoded room names for at most the rooms tracked, twice over, plus 1024', async () => {
    const metrics = new Metrics();
    const hub = new Hub();
    const history = new HistoryStore({ size: 1, ttl: 60_000, maxBytes: 1 << 20, maxRooms: 100 });
    const broker = new Broker(hub, history, new LocalBackplane(createLocalNode(hub, metrics, []), history), { maxRoomsPerConnection: 10, maxPresence: 10 }, metrics);
    let peak = 0;
    for (let i = 0; i < 20_000; i++) {
      await broker.publish(`room-${i}`, { kind: 'json', data: i }, { fromJson: '{"session":"s","name":"n"}' });
      peak = Math.max(peak, broker.encodedRoomCount);
    }
    assert.ok(history.roomCount <= 100);
    assert.ok(peak <= 100 * 2 + 1024 + 1, `peaked at ${peak}`);
  });

  it('the per-address connection count forgets an address when its last connection closes', () => {
    const limits = new ConnectionLimits({ maxConnections: 10, maxConnectionsPerIp: 2 });
    for (let i = 0; i < 1000; i++) limits.add(`10.0.${i >> 8}.${i & 255}`);
    assert.equal(limits.trackedAddresses, 1000);
    for (let i = 0; i < 1000; i++) limits.remove(`10.0.${i >> 8}.${i & 255}`);
    assert.equal(limits.trackedAddresses, 0);
  });

  describe('with Redis', { skip: skipWithoutRedis() }, () => {
    it('stops reading a plaza.v1 connection whose requests pile up behind a join stuck on Redis, then answers them all', async () => {
      const redis = await PrivateRedis.start();
      const node = await startNode(redis.url);
      try {
        await untilReady(node.http, 200);
        const patient = await V1Client.open(node.ws);
        redis.pause();
        patient.send({ type: 'join', id: 'j', room: 'stuck' });
        // More than the soft bound (100 requests), sent one by one: the server stops reading
        // the socket instead of queueing them all, and never closes the connection for it.
        for (let i = 0; i < 300; i++) patient.send({ type: 'publish', id: i, room: 'stuck', data: i });
        await new Promise((resolve) => setTimeout(resolve, 500));
        assert.equal(patient.client.closeCode, undefined, 'still open');
        redis.resume();
        await patient.waitFor((e) => e.id === 299, 10_000);
        const acks = patient.envelopes.filter((e) => e.type === 'ack').map((e) => e.id);
        assert.deepEqual(acks, Array.from({ length: 300 }, (_, i) => i), 'every publish answered, in order');
        await patient.close();
      } finally {
        redis.resume();
        await stopNode(node);
        await redis.destroy();
      }
    });

    it('closes with 1008 a peer that has more than 1000 requests waiting at once (already read, so not stopped by backpressure)', async () => {
      const redis = await PrivateRedis.start();
      const node = await startNode(redis.url);
      try {
        await untilReady(node.http, 200);
        const flooder = await openRaw(Number(new URL(node.http).port), { headers: { 'Sec-WebSocket-Protocol': 'plaza.v1' } });
        redis.pause();
        // One write: the server reads it as one chunk and parses every frame in it.
        const frames = [encodeClientFrame({ opcode: 1, payload: Buffer.from('{"type":"join","room":"stuck"}') })];
        for (let i = 0; i < 1100; i++) frames.push(encodeClientFrame({ opcode: 1, payload: Buffer.from('{"type":"hello"}') }));
        flooder.socket.write(Buffer.concat(frames));
        assert.equal(await flooder.closed, 1008);
      } finally {
        redis.resume();
        await stopNode(node);
        await redis.destroy();
      }
    });

    it('holds at most maxSyncBuffer channel messages while a room is re-read, then reads it again, losing nothing', async () => {
      const logger = createLogger({ level: 'silent', format: 'json' });
      const make = (maxSyncBuffer: number) => {
        const hub = new Hub();
        const history = new HistoryStore({ size: 5000, ttl: 60_000, maxBytes: 1 << 26, maxRooms: 100 });
        const backplane = new RedisBackplane(
          { url: REDIS_URL, historySize: 5000, historyTtl: 60_000, presenceTtl: 15_000, maxInflight: 10_000, maxInflightBytes: 1 << 26, maxSyncBuffer },
          createLocalNode(hub, new Metrics(), []),
          history,
          logger,
        );
        return { hub, history, backplane };
      };
      const reader = make(5);
      const writer = make(10_000);
      await Promise.all([reader.backplane.start(), writer.backplane.start()]);
      const admin = new Redis(REDIS_URL);
      try {
        await until(() => reader.backplane.status.up && writer.backplane.status.up, 5000, 'both links up');
        // The room already holds 20 MB of history, so reading it takes a while; meanwhile the
        // writer keeps publishing, and those messages reach the reader's channel mid-read. A few
        // rooms are tried in case one read is quick enough to miss the overlap.
        const publish = (room: string, data: string) =>
          writer.backplane.publish({ room, roomJson: JSON.stringify(room), fromJson: '{"session":"w","name":"w"}', dataJson: JSON.stringify(data), payload: { kind: 'json', data }, time: Date.now(), except: undefined });
        for (let attempt = 0; attempt < 5 && reader.backplane.syncOverflows === 0; attempt++) {
          const room = `overflow-${Date.now()}-${attempt}`;
          const filler = 'f'.repeat(10_000);
          await Promise.all(Array.from({ length: 2000 }, () => publish(room, filler)));
          const member = new Collector(`m${attempt}`);
          const joined = reader.backplane.attach(room).then((log) => {
            reader.hub.join(member, room);
            return log;
          });
          let live = 0;
          while (live < 200 && !(await Promise.race([joined.then(() => true), Promise.resolve(false)]))) {
            await publish(room, `live ${live++}`);
          }
          const log = await joined;
          const last = 2000 + live;
          await until(() => log.lastOffset === last, 10_000, 'the reader to reach the last offset');
          // Whatever it got live is gap-free and ends at the last message.
          const offsets = member.offsets();
          for (let i = 1; i < offsets.length; i++) assert.equal(offsets[i], offsets[i - 1]! + 1, 'gap-free');
          // Reading the room again never made it look as if Redis had lost something.
          assert.equal(member.frames.some((frame) => frame.includes('"recovered":false')), false, 'no reset');
          if (offsets.length > 0) assert.equal(offsets.at(-1), last);
          reader.backplane.detach(room);
          await admin.del(`plaza:{${room}}:epoch`, `plaza:{${room}}:offset`, `plaza:{${room}}:stream`);
        }
        assert.ok(reader.backplane.syncOverflows > 0, 'a read overflowed its buffer (and was read again)');
      } finally {
        admin.disconnect();
        await Promise.all([reader.backplane.close(), writer.backplane.close()]);
      }
    });
  });
});
