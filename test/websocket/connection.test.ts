/**
 * One connection (src/server/websocket/connection.ts) against a real Plaza on port 0, through
 * raw sockets that write several frames in one TCP chunk: requests that arrive behind a waiting
 * join keep their order and their answers; a join stuck on the backplane (a paused Redis) stops
 * the socket being read; a peer that keeps erring is closed with 1008 after exactly its allowance;
 * closing a connection twice sends one close frame and reports the first code.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PrivateRedis, skipWithoutRedis } from '../helpers/cluster.js';
import { connect, startPlaza, wsUrl } from '../helpers/plaza.js';
import { encodeClientFrame, openRaw, type RawWebSocket } from '../helpers/raw-ws.js';
import { until } from '../helpers/wait.mjs';
import { metric } from '../helpers/metrics.mjs';

const V1 = { headers: { 'Sec-WebSocket-Protocol': 'plaza.v1' } };

/** One text frame per envelope, all in one TCP write: the server reads them as one chunk. */
function sendAtOnce(raw: RawWebSocket, envelopes: Array<Record<string, unknown> | string | Buffer>): void {
  const frames = envelopes.map((e) =>
    Buffer.isBuffer(e) ? encodeClientFrame({ opcode: 2, payload: e }) : encodeClientFrame({ opcode: 1, payload: typeof e === 'string' ? e : JSON.stringify(e) }),
  );
  raw.socket.write(Buffer.concat(frames));
}

/** The text frames received so far, parsed. */
const replies = (raw: RawWebSocket) => raw.frames.filter((f) => f.opcode === 1).map((f) => JSON.parse(f.payload.toString()) as Record<string, any>);

/** Answers the server's close frame, as a well-behaved peer does, and waits for the socket to end. */
async function answerClose(raw: RawWebSocket): Promise<number> {
  const close = raw.frames.find((f) => f.opcode === 8);
  if (close) raw.send({ opcode: 8, payload: close.payload.subarray(0, 2) });
  return raw.closed;
}

describe('Connection', () => {
  describe('requests behind a waiting join', () => {
    it('answers what arrived behind a join in arrival order, errors included, after the join', async () => {
      const plaza = await startPlaza({ rateLimit: 0 });
      try {
        const raw = await openRaw(plaza.port, V1);
        sendAtOnce(raw, [
          { type: 'join', id: 'j', room: 'r' },
          { type: 'publish', id: 'p1', room: 'r', data: 1 },
          'not json',
          Buffer.from([1, 2, 3]),
          { type: 'leave', id: 'l', room: 'nowhere' },
          { type: 'publish', id: 'p2', room: 'r', data: 2 },
        ]);
        await until(() => replies(raw).length === 8, 3000, 'eight replies');
        const got = replies(raw).map((e) => (e.type === 'message' ? `message:${e.data}` : `${e.type}:${e.id ?? e.code}`));
        // Answered in arrival order, all after the join (so both publishes found the room joined).
        // An ack is sent once its message reached this server's members, so answers to later
        // requests may overtake it; acks keep their own order (PROTOCOL.md, publish → ack).
        assert.deepEqual(got.filter((a) => !a.startsWith('ack')), ['joined:j', 'message:1', 'error:bad_json', 'error:bad_request', 'error:l', 'message:2']);
        assert.deepEqual(got.filter((a) => a.startsWith('ack')), ['ack:p1', 'ack:p2']);
        assert.ok(got.indexOf('ack:p1') > got.indexOf('message:1') && got.indexOf('ack:p2') > got.indexOf('message:2'), 'an ack never overtakes its message');
        raw.socket.destroy();
      } finally {
        await plaza.close();
      }
    });

    it('keeps the place of what is left when a second join waits too', async () => {
      const plaza = await startPlaza({ rateLimit: 0 });
      try {
        const raw = await openRaw(plaza.port, V1);
        sendAtOnce(raw, [
          { type: 'join', id: 'ja', room: 'a' },
          { type: 'publish', id: 'pa', room: 'a', data: 'a' },
          { type: 'join', id: 'jb', room: 'b' },
          { type: 'publish', id: 'pb', room: 'b', data: 'b' },
          { type: 'publish', id: 'pa2', room: 'a', data: 'a2' },
        ]);
        await until(() => replies(raw).filter((e) => e.type !== 'message').length === 5, 3000, 'five answers');
        const answers = replies(raw).filter((e) => e.type !== 'message').map((e) => `${e.type}:${e.id}`);
        // Each publish found its room joined: the one behind the second join waited for it too.
        assert.deepEqual(answers.filter((a) => a.startsWith('joined')), ['joined:ja', 'joined:jb']);
        assert.deepEqual(answers.filter((a) => a.startsWith('ack')).sort(), ['ack:pa', 'ack:pa2', 'ack:pb']);
        assert.ok(answers.indexOf('ack:pb') > answers.indexOf('joined:jb'));
        assert.ok(answers.indexOf('ack:pa2') > answers.indexOf('ack:pa'), "acks of one room's publishes keep their order");
        raw.socket.destroy();
      } finally {
        await plaza.close();
      }
    });

    it("gives a frame over the rate its rate_limited answer, with its id, in its place", async () => {
      // Burst 2: the join and the first publish; the second publish is over the rate.
      const plaza = await startPlaza({ rateLimit: 1, rateBurst: 2 });
      try {
        const raw = await openRaw(plaza.port, V1);
        sendAtOnce(raw, [
          { type: 'join', id: 'j', room: 'r' },
          { type: 'publish', id: 'p1', room: 'r', data: 1 },
          { type: 'publish', id: 'p2', room: 'r', data: 2 },
        ]);
        await until(() => replies(raw).some((e) => e.type === 'error'), 3000, 'the refusal');
        await until(() => replies(raw).some((e) => e.type === 'ack'), 3000, 'the ack');
        const answers = replies(raw).filter((e) => e.type !== 'message').map((e) => `${e.type}:${e.id}:${e.code ?? ''}`);
        // Its answer waited behind the join like the frame did, and says which request it was.
        assert.equal(answers[0], 'joined:j:');
        assert.deepEqual(answers.slice(1).sort(), ['ack:p1:', 'error:p2:rate_limited']);
        raw.socket.destroy();
      } finally {
        await plaza.close();
      }
    });

    it('closes with 1008 a peer whose frames waiting behind a join pass 4 × --max-buffered bytes in one read', async () => {
      const plaza = await startPlaza({ rateLimit: 0, maxPayload: 1024, maxBuffered: 2048 });
      try {
        const raw = await openRaw(plaza.port, V1);
        // 10 publishes of ~930 bytes behind the join: more than 8192 bytes, fewer than 1000 frames.
        const publishes = Array.from({ length: 10 }, (_, i) => ({ type: 'publish', id: i, room: 'r', data: 'x'.repeat(900) }));
        sendAtOnce(raw, [{ type: 'join', room: 'r' }, ...publishes]);
        assert.equal(await raw.closed, 1008);
        const close = raw.frames.find((f) => f.opcode === 8)!;
        assert.equal(close.payload.subarray(2).toString(), 'too many requests waiting');
      } finally {
        await plaza.close();
      }
    });
  });

  describe('backpressure', { skip: skipWithoutRedis() }, () => {
    it('stops reading a socket whose waiting requests pass --max-buffered bytes, then answers them all in order', async () => {
      const redis = await PrivateRedis.start();
      const plaza = await startPlaza({ rateLimit: 0, maxPayload: 1024, maxBuffered: 2048, redis: redis.url });
      try {
        for (let deadline = Date.now() + 10_000; (await fetch(`${plaza.url}/readyz`)).status !== 200; ) {
          assert.ok(Date.now() < deadline, 'the node joined Redis');
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const raw = await openRaw(plaza.port, V1);
        const before = await metric(plaza, 'plaza_messages_in_total');
        redis.pause();
        sendAtOnce(raw, [{ type: 'join', id: 'j', room: 'stuck' }]);
        // One frame at a time, each read before the next is sent: ~930 bytes each, so the third
        // brings what waits past 2048 bytes and the server stops reading.
        // excludeSelf: the messages coming back would be this peer's own slow-consumer problem.
        const publish = (i: number) => ({ type: 'publish', id: i, room: 'stuck', data: 'x'.repeat(900), excludeSelf: true });
        let read = 0;
        for (let i = 0; i < 3; i++) {
          sendAtOnce(raw, [publish(i)]);
          const expected = before + 2 + i;
          for (let deadline = Date.now() + 3000; (read = await metric(plaza, 'plaza_messages_in_total')) < expected; ) {
            assert.ok(Date.now() < deadline, `frame ${i} was read (${read} of ${expected})`);
          }
        }
        sendAtOnce(raw, [publish(3), publish(4)]);
        // Proof of silence: a server that kept reading would count these at once.
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.equal(await metric(plaza, 'plaza_messages_in_total'), before + 4, 'the last two frames wait in the socket, unread');
        assert.equal(raw.frames.filter((f) => f.opcode === 8).length, 0, 'and the connection stays open');
        redis.resume();
        await until(() => replies(raw).filter((e) => e.type === 'ack').length === 5, 10_000, 'every publish acked');
        const answers = replies(raw).filter((e) => e.type !== 'message').map((e) => `${e.type}:${e.id}`);
        assert.deepEqual(answers, ['joined:j', 'ack:0', 'ack:1', 'ack:2', 'ack:3', 'ack:4']);
        raw.socket.destroy();
      } finally {
        redis.resume();
        await plaza.close();
        await redis.destroy();
      }
    });
  });

  describe('the error allowance', () => {
    it('answers 20 bad requests in a burst, closes with 1008 at the 21st, and reads nothing after its close frame', async () => {
      const plaza = await startPlaza({ rateLimit: 0 });
      try {
        const raw = await openRaw(plaza.port, V1);
        sendAtOnce(raw, Array.from({ length: 30 }, (_, i) => `{"type":"nope","id":${i}}`));
        await until(() => raw.frames.some((f) => f.opcode === 8), 3000, 'the close frame');
        const texts = raw.frames.filter((f) => f.opcode === 1);
        assert.equal(texts.length, 21, 'the 21st request is answered, then the connection closes');
        assert.deepEqual(replies(raw).map((e) => e.id), Array.from({ length: 21 }, (_, i) => i));
        assert.equal(raw.frames.at(-1)!.opcode, 8);
        assert.equal(raw.frames.at(-1)!.payload.readUInt16BE(0), 1008);
        assert.equal(raw.frames.at(-1)!.payload.subarray(2).toString(), 'too many bad requests');
        assert.equal(await answerClose(raw), 1008);
        // The nine frames after the 21st were in the same read, and counted for nothing.
        assert.equal(await metric(plaza, 'plaza_messages_in_total'), 21);
        assert.equal(await metric(plaza, 'plaza_protocol_errors_total{code="unknown_type"}'), 21);
      } finally {
        await plaza.close();
      }
    });

    it("never spends it on refusals that are the server's state (server_full)", async () => {
      const plaza = await startPlaza({ rateLimit: 0, maxRooms: 1 });
      try {
        const holder = await openRaw(plaza.port, V1);
        sendAtOnce(holder, [{ type: 'join', id: 'h', room: 'held' }]);
        await until(() => replies(holder).length === 1, 3000, 'held');
        const raw = await openRaw(plaza.port, V1);
        sendAtOnce(raw, Array.from({ length: 30 }, (_, i) => ({ type: 'join', id: i, room: `room-${i}` })));
        await until(() => replies(raw).length === 30, 3000, 'thirty refusals');
        assert.ok(replies(raw).every((e) => e.type === 'error' && e.code === 'server_full'));
        assert.equal(raw.frames.some((f) => f.opcode === 8), false, 'still open');
        raw.socket.destroy();
        holder.socket.destroy();
      } finally {
        await plaza.close();
      }
    });

    it('closes a plain client with 1008 when it keeps sending over the rate, and drops what it sent over it', async () => {
      const plaza = await startPlaza({ rateLimit: 1, rateBurst: 1 });
      try {
        const listener = await connect(wsUrl(plaza));
        const raw = await openRaw(plaza.port);
        // One within the rate, then 21 over it: 20 are dropped quietly, the 21st closes.
        sendAtOnce(raw, Array.from({ length: 22 }, (_, i) => `plain ${i}`));
        assert.equal(await raw.closed, 1008);
        await listener.expectNoMoreThan(1, 100);
        assert.deepEqual(listener.received.map((r) => r.text), ['plain 0']);
        await listener.close();
      } finally {
        await plaza.close();
      }
    });
  });

  describe('close', () => {
    it('sends one close frame when closed twice, and reports the first code', async () => {
      const key = 'connection-test-key-0123456789';
      const plaza = await startPlaza({ rateLimit: 0, apiKey: key });
      try {
        const raw = await openRaw(plaza.port, V1);
        sendAtOnce(raw, [{ type: 'hello', id: 'h' }]);
        await until(() => replies(raw).length === 1, 3000, 'welcome');
        const session = replies(raw)[0]!.session as string;
        sendAtOnce(raw, Array.from({ length: 21 }, () => 'not json'));
        await until(() => raw.frames.some((f) => f.opcode === 8), 3000, 'the first close');
        // The operator closes it again while it is closing.
        const response = await fetch(`${plaza.url}/api/disconnect`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ session }),
        });
        assert.equal(response.status, 200);
        assert.equal(await answerClose(raw), 1008);
        assert.equal(raw.frames.filter((f) => f.opcode === 8).length, 1);
        await until(() => plaza.connectionCount === 0, 3000, 'the connection gone');
        const text = await (await fetch(`${plaza.url}/metrics`, { headers: { authorization: `Bearer ${key}` } })).text();
        assert.match(text, /^plaza_disconnects_total\{code="1008"\} 1$/m);
        assert.doesNotMatch(text, /plaza_disconnects_total\{code="4001"\}/);
      } finally {
        await plaza.close();
      }
    });
  });
});
