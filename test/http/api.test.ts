/** The HTTP API under /api/ against a real Plaza on port 0, with real ws clients on the other end. */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { Plaza } from '../../src/server/plaza.js';
import { signToken } from '../../src/server/access/tokens.js';
import { connect, startPlaza, withPlaza, wsUrl } from '../helpers/plaza.js';
import { sendRaw } from '../helpers/raw-http.js';
import { V1Client } from '../helpers/v1.js';
import { until } from '../helpers/wait.mjs';

const KEY = 'k3y-for-tests-0123456789abcdef';

interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

/** One API call; `key: null` sends no Authorization header. */
async function call(
  plaza: Plaza,
  method: string,
  path: string,
  options: { body?: unknown; key?: string | null; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  const key = options.key === undefined ? KEY : options.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(`${plaza.url}${path}`, { method, headers, body });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Left as text: HEAD answers and plain-text errors.
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

function assertError(answer: Answer, status: number, code: string): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.equal(answer.headers.get('content-type'), 'application/json; charset=utf-8');
  assert.equal(answer.body.error.code, code);
  assert.equal(typeof answer.body.error.message, 'string');
  assert.ok(answer.body.error.message.length > 0);
}

describe('HTTP API', () => {
  describe('without --api-key', () => {
    it('answers 404 under /api/ whatever the route, method or header', async () => {
      await withPlaza({}, async (plaza) => {
        for (const [method, path] of [['GET', '/api/rooms'], ['POST', '/api/publish'], ['GET', '/api/nope'], ['GET', '/api/']]) {
          const answer = await call(plaza, method!, path!, method === 'POST' ? { body: { room: 'a', data: 1 } } : {});
          assertError(answer, 404, 'not_found');
        }
        assertError(await call(plaza, 'GET', '/api/rooms', { key: '' }), 404, 'not_found');
      });
    });
  });

  describe('with a key', () => {
    let plaza: Plaza;
    const options = { apiKey: KEY, historySize: 5, maxPresence: 2, apiMaxBody: 1024, maxPayload: 512 };

    before(async () => {
      plaza = await startPlaza(options);
    });
    after(() => plaza.close());

    describe('authentication', () => {
      it('answers 401 with a Bearer challenge when the key is missing', async () => {
        const answer = await call(plaza, 'GET', '/api/rooms', { key: null });
        assertError(answer, 401, 'unauthorized');
        assert.equal(answer.headers.get('www-authenticate'), 'Bearer realm="plaza"');
      });

      it('answers 401 with invalid_token for a wrong key, however long', async () => {
        for (const key of ['x', KEY.slice(0, -1), `${KEY}x`, KEY.toUpperCase()]) {
          const answer = await call(plaza, 'GET', '/api/rooms', { key });
          assertError(answer, 401, 'unauthorized');
          assert.equal(answer.headers.get('www-authenticate'), 'Bearer realm="plaza", error="invalid_token"');
        }
      });

      it('does not take the key from the query string', async () => {
        assertError(await call(plaza, 'GET', `/api/rooms?key=${KEY}`, { key: null }), 401, 'unauthorized');
      });

      it('checks the key before the route exists or the method fits', async () => {
        assertError(await call(plaza, 'GET', '/api/nope', { key: null }), 401, 'unauthorized');
      });

      it('accepts the scheme in any case', async () => {
        const answer = await call(plaza, 'GET', '/api/rooms', { key: null, headers: { authorization: `bearer ${KEY}` } });
        assert.equal(answer.status, 200);
      });
    });

    describe('routing', () => {
      it('answers 404 for an unknown route', async () => {
        for (const path of ['/api/nope', '/api/rooms/', '/api/rooms/a', '/api/rooms/a/members', '/api']) {
          assertError(await call(plaza, 'GET', path), 404, 'not_found');
        }
      });

      it('answers 405 with Allow for a wrong method', async () => {
        const get = await call(plaza, 'GET', '/api/publish');
        assertError(get, 405, 'method_not_allowed');
        assert.equal(get.headers.get('allow'), 'POST');
        const post = await call(plaza, 'POST', '/api/rooms', { body: {} });
        assertError(post, 405, 'method_not_allowed');
        assert.equal(post.headers.get('allow'), 'GET, HEAD');
      });

      it('answers HEAD like GET without a body', async () => {
        const answer = await call(plaza, 'HEAD', '/api/rooms');
        assert.equal(answer.status, 200);
        assert.equal(answer.body, '');
        assert.ok(Number(answer.headers.get('content-length')) > 0);
      });
    });

    describe('POST /api/publish', () => {
      it('delivers to v1 and plain clients exactly like a client publish, from "api"', async () => {
        const v1 = await V1Client.open(wsUrl(plaza), 'Ada');
        const plain = await connect(wsUrl(plaza));
        try {
          const joined = await v1.request({ type: 'join', room: 'lobby' });
          const answer = await call(plaza, 'POST', '/api/publish', { body: { room: 'lobby', data: { text: 'from the backend' } } });
          assert.equal(answer.status, 200);
          assert.deepEqual(answer.body, { room: 'lobby', offset: joined.offset + 1, epoch: joined.epoch, delivered: 2 });
          const [message] = await v1.waitForMessages(1, 'lobby');
          assert.deepEqual(
            { ...message, time: 0 },
            {
              type: 'message', room: 'lobby', id: `${joined.epoch}:${joined.offset + 1}`, offset: joined.offset + 1, epoch: joined.epoch,
              time: 0, from: { session: 'api', name: 'api' }, data: { text: 'from the backend' },
            },
          );
          const [frame] = await plain.waitFor(1);
          assert.equal(frame!.text, '{"text":"from the backend"}');
          await call(plaza, 'POST', '/api/publish', { body: { room: 'lobby', data: 'just text' } });
          const frames = await plain.waitFor(2);
          assert.equal(frames[1]!.text, 'just text');
        } finally {
          await Promise.all([v1.close(), plain.close()]);
        }
      });

      it('with an Idempotency-Key: a repeat gets the first answer and publishes nothing; another body gets 422 (issue #22)', async () => {
        const v1 = await V1Client.open(wsUrl(plaza), 'Ada');
        try {
          await v1.request({ type: 'join', room: 'once' });
          const headers = { 'idempotency-key': 'order-7f3a' };
          const first = await call(plaza, 'POST', '/api/publish', { body: { room: 'once', data: { n: 1 } }, headers });
          const again = await call(plaza, 'POST', '/api/publish', { body: '{ "room": "once",  "data": {"n": 1} }', headers });
          assert.equal(first.status, 200);
          assert.equal(first.headers.get('idempotent-replayed'), null);
          assert.deepEqual(again.body, { ...first.body, delivered: 0, duplicate: true });
          assert.equal(again.headers.get('idempotent-replayed'), 'true');
          assertError(await call(plaza, 'POST', '/api/publish', { body: { room: 'once', data: { n: 2 } }, headers }), 422, 'idempotency_key_reused');
          const other = await call(plaza, 'POST', '/api/publish', { body: { room: 'once', data: { n: 2 } }, headers: { 'idempotency-key': 'order-7f3b' } });
          assert.equal(other.body.offset, first.body.offset + 1);
          await v1.waitForMessages(2, 'once');
          await new Promise((resolve) => setTimeout(resolve, 100));
          assert.deepEqual(v1.client.received.filter((r) => r.text.includes('"type":"message"')).map((r) => JSON.parse(r.text).data), [{ n: 1 }, { n: 2 }]);
          // Broadcast: the key names the whole request; a repeat publishes in none of its rooms.
          const rooms = { rooms: ['once', 'once-b'], data: 'both' };
          const broadcast = await call(plaza, 'POST', '/api/broadcast', { body: rooms, headers: { 'idempotency-key': 'b-1' } });
          const replay = await call(plaza, 'POST', '/api/broadcast', { body: rooms, headers: { 'idempotency-key': 'b-1' } });
          assert.deepEqual(replay.body.results, broadcast.body.results.map((r: object) => ({ ...r, delivered: 0, duplicate: true })));
          assertError(await call(plaza, 'POST', '/api/broadcast', { body: { rooms: ['once-b'], data: 'both' }, headers: { 'idempotency-key': 'b-1' } }), 422, 'idempotency_key_reused');
          for (const key of ['', 'x'.repeat(65), 'with space']) {
            assertError(await call(plaza, 'POST', '/api/publish', { body: { room: 'once', data: 3 }, headers: { 'idempotency-key': key } }), 400, 'bad_request');
          }
        } finally {
          await v1.close();
        }
      });

      it('publishes to a room without members, and offsets continue', async () => {
        const first = await call(plaza, 'POST', '/api/publish', { body: { room: 'empty-room', data: 1 } });
        const second = await call(plaza, 'POST', '/api/publish', { body: { room: 'empty-room', data: 2 } });
        assert.deepEqual(first.body, { room: 'empty-room', offset: 1, epoch: first.body.epoch, delivered: 0 });
        assert.deepEqual(second.body, { room: 'empty-room', offset: 2, epoch: first.body.epoch, delivered: 0 });
        // A late joiner finds them in history.
        const v1 = await V1Client.open(wsUrl(plaza));
        try {
          const joined = await v1.request({ type: 'join', room: 'empty-room', history: 5 });
          assert.deepEqual(joined.messages.map((m: any) => m.data), [1, 2]);
        } finally {
          await v1.close();
        }
      });

      it('refuses bad bodies with 400 and a code', async () => {
        assertError(await call(plaza, 'POST', '/api/publish', { body: '{"room":' }), 400, 'bad_json');
        assertError(await call(plaza, 'POST', '/api/publish', { body: '[1,2]' }), 400, 'bad_request');
        assertError(await call(plaza, 'POST', '/api/publish', { body: { room: 'a' } }), 400, 'bad_request');
        assertError(await call(plaza, 'POST', '/api/publish', { body: { data: 1 } }), 400, 'bad_room');
        assertError(await call(plaza, 'POST', '/api/publish', { body: { room: 'no spaces', data: 1 } }), 400, 'bad_room');
        assertError(await call(plaza, 'POST', '/api/publish', { body: { room: 'x'.repeat(129), data: 1 } }), 400, 'bad_room');
        assertError(await call(plaza, 'POST', '/api/publish', { body: { room: 42, data: 1 } }), 400, 'bad_room');
      });

      it('answers 415 unless the body is declared as JSON', async () => {
        const body = JSON.stringify({ room: 'a', data: 1 });
        for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/jsonx']) {
          assertError(await call(plaza, 'POST', '/api/publish', { body, headers: { 'content-type': type } }), 415, 'unsupported_media_type');
        }
        const withCharset = await call(plaza, 'POST', '/api/publish', { body, headers: { 'content-type': 'Application/JSON; charset=utf-8' } });
        assert.equal(withCharset.status, 200);
      });

      it('answers 413 when data is larger than --max-payload', async () => {
        assertError(await call(plaza, 'POST', '/api/publish', { body: { room: 'a', data: 'x'.repeat(600) } }), 413, 'too_large');
      });

      it('answers 403 for the reserved status room', async () => {
        assertError(await call(plaza, 'POST', '/api/publish', { body: { room: 'plaza:status', data: 1 } }), 403, 'forbidden');
      });
    });

    describe('request bodies', () => {
      it('refuses a declared Content-Length over --api-max-body before reading it', async () => {
        const head = [
          'POST /api/publish HTTP/1.1', 'Host: 127.0.0.1', `Authorization: Bearer ${KEY}`, 'Content-Type: application/json',
          'Content-Length: 10000000', 'Connection: close', '', '{"room":"a",',
        ].join('\r\n');
        const response = await sendRaw(plaza.port, head);
        assert.equal(response.status, 413);
        assert.equal(JSON.parse(response.body.toString()).error.code, 'too_large');
        assert.equal(response.headers.connection, 'close');
      });

      it('stops reading a chunked body once it passes the limit', async () => {
        const { status, body, connection } = await new Promise<{ status: number; body: string; connection: string | undefined }>((resolve, reject) => {
          const req = httpRequest(`${plaza.url}/api/publish`, {
            method: 'POST',
            headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
          });
          req.on('response', (res) => {
            let text = '';
            res.on('data', (chunk) => (text += chunk));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, connection: res.headers.connection }));
          });
          req.on('error', reject);
          req.write(`{"room":"a","data":"${'x'.repeat(800)}`);
          req.write('x'.repeat(800));
          // The answer arrives without the body ever being finished.
        });
        assert.equal(status, 413);
        assert.equal(JSON.parse(body).error.code, 'too_large');
        assert.equal(connection, 'close');
      });

      it('takes a body of exactly --api-max-body bytes', async () => {
        const prefix = '{"room":"exact","data":"';
        const body = `${prefix}${'x'.repeat(options.apiMaxBody - prefix.length - 2)}"}`;
        assert.equal(Buffer.byteLength(body), options.apiMaxBody);
        // The data itself is then larger than maxPayload: the body limit passed, the payload one answers.
        assertError(await call(plaza, 'POST', '/api/publish', { body }), 413, 'too_large');
        const small = `{"room":"exact","data":1}${' '.repeat(options.apiMaxBody - 25)}`;
        assert.equal(Buffer.byteLength(small), options.apiMaxBody);
        assert.equal((await call(plaza, 'POST', '/api/publish', { body: small })).status, 200);
      });
    });

    describe('POST /api/broadcast', () => {
      it('publishes to every room named, each with its own offset', async () => {
        const a = await V1Client.open(wsUrl(plaza));
        const b = await V1Client.open(wsUrl(plaza));
        try {
          await a.request({ type: 'join', room: 'bc-a' });
          await b.request({ type: 'join', room: 'bc-b' });
          await call(plaza, 'POST', '/api/publish', { body: { room: 'bc-b', data: 'earlier' } });
          const answer = await call(plaza, 'POST', '/api/broadcast', { body: { rooms: ['bc-a', 'bc-b', 'bc-c'], data: { n: 1 } } });
          assert.equal(answer.status, 200);
          assert.deepEqual(
            answer.body.results.map((r: any) => [r.room, r.offset, r.delivered]),
            [['bc-a', 1, 1], ['bc-b', 2, 1], ['bc-c', 1, 0]],
          );
          assert.deepEqual((await a.waitForMessages(1, 'bc-a')).map((m) => m.data), [{ n: 1 }]);
          assert.deepEqual((await b.waitForMessages(2, 'bc-b')).map((m) => m.data), ['earlier', { n: 1 }]);
        } finally {
          await Promise.all([a.close(), b.close()]);
        }
      });

      it('refuses an empty, oversized, repeated or invalid room list', async () => {
        const rooms101 = Array.from({ length: 101 }, (_, i) => `r${i}`);
        assertError(await call(plaza, 'POST', '/api/broadcast', { body: { rooms: [], data: 1 } }), 400, 'bad_request');
        assertError(await call(plaza, 'POST', '/api/broadcast', { body: { rooms: 'a', data: 1 } }), 400, 'bad_request');
        assertError(await call(plaza, 'POST', '/api/broadcast', { body: { rooms: rooms101, data: 1 } }), 400, 'bad_request');
        assertError(await call(plaza, 'POST', '/api/broadcast', { body: { rooms: ['a', 'a'], data: 1 } }), 400, 'bad_request');
        assertError(await call(plaza, 'POST', '/api/broadcast', { body: { rooms: ['a', 'b c'], data: 1 } }), 400, 'bad_room');
        assertError(await call(plaza, 'POST', '/api/broadcast', { body: { rooms: ['a'] } }), 400, 'bad_request');
        assertError(await call(plaza, 'POST', '/api/broadcast', { body: { rooms: ['a', 'plaza:status'], data: 1 } }), 403, 'forbidden');
        // Nothing was published by the refused requests.
        assert.equal((await call(plaza, 'GET', '/api/rooms/r0/history')).status, 404);
      });

      it('takes exactly 100 rooms', async () => {
        const rooms = Array.from({ length: 100 }, (_, i) => `h${i}`);
        const answer = await call(plaza, 'POST', '/api/broadcast', { body: { rooms, data: 1 } });
        assert.equal(answer.status, 200);
        assert.equal(answer.body.results.length, 100);
      });
    });

    describe('GET /api/rooms', () => {
      it('lists rooms with members, most members first', async () => {
        const clients = await Promise.all([1, 2, 3].map(() => V1Client.open(wsUrl(plaza))));
        try {
          await Promise.all(clients.map((c) => c.request({ type: 'join', room: 'list-big' })));
          await clients[0]!.request({ type: 'join', room: 'list-small' });
          const answer = await call(plaza, 'GET', '/api/rooms');
          assert.equal(answer.status, 200);
          const mine = answer.body.rooms.filter((r: any) => r.room.startsWith('list-'));
          assert.deepEqual(mine.map((r: any) => [r.room, r.members, r.lastOffset]), [['list-big', 3, 0], ['list-small', 1, 0]]);
          assert.equal(typeof mine[0].epoch, 'string');
        } finally {
          await Promise.all(clients.map((c) => c.close()));
        }
        await until(() => plaza.connectionCount === 0);
        const after = await call(plaza, 'GET', '/api/rooms');
        assert.deepEqual(after.body.rooms.filter((r: any) => r.room.startsWith('list-')), [], 'empty rooms are not listed');
      });
    });

    describe('GET /api/rooms/:room/presence', () => {
      it('lists members cut at --max-presence, with the exact count', async () => {
        const names = ['Ann', 'Ben', 'Cid'];
        const clients = await Promise.all(names.map((name) => V1Client.open(wsUrl(plaza), name)));
        try {
          for (const client of clients) await client.request({ type: 'join', room: 'team/7' });
          // Room names may hold "/": encoded or not, the path ends in /presence.
          for (const path of ['/api/rooms/team%2F7/presence', '/api/rooms/team/7/presence']) {
            const answer = await call(plaza, 'GET', path);
            assert.equal(answer.status, 200);
            assert.equal(answer.body.room, 'team/7');
            assert.equal(answer.body.memberCount, 3);
            assert.equal(answer.body.members.length, 2);
            for (const member of answer.body.members) {
              assert.deepEqual(Object.keys(member), ['session', 'name']);
              assert.ok(names.includes(member.name));
            }
          }
        } finally {
          await Promise.all(clients.map((c) => c.close()));
        }
      });

      it('answers an empty list for a room nobody is in', async () => {
        const answer = await call(plaza, 'GET', '/api/rooms/nobody-here/presence');
        assert.deepEqual(answer.body, { room: 'nobody-here', members: [], memberCount: 0 });
      });

      it('refuses an invalid room name with 400', async () => {
        assertError(await call(plaza, 'GET', '/api/rooms/a%20b/presence'), 400, 'bad_room');
        assertError(await call(plaza, 'GET', '/api/rooms/a%00/presence'), 400, 'bad_room');
      });
    });

    describe('GET /api/rooms/:room/history', () => {
      before(async () => {
        for (let n = 1; n <= 8; n++) await call(plaza, 'POST', '/api/publish', { body: { room: 'hist', data: n } });
      });

      it('returns what is kept, oldest first, with epoch and lastOffset', async () => {
        const answer = await call(plaza, 'GET', '/api/rooms/hist/history');
        assert.equal(answer.status, 200);
        assert.equal(answer.body.room, 'hist');
        assert.equal(answer.body.lastOffset, 8);
        assert.equal(answer.body.complete, false, 'offsets 1–3 were trimmed (historySize 5)');
        assert.deepEqual(answer.body.messages.map((m: any) => [m.offset, m.data]), [[4, 4], [5, 5], [6, 6], [7, 7], [8, 8]]);
        assert.equal(answer.body.messages[0].epoch, answer.body.epoch);
        assert.deepEqual(answer.body.messages[0].from, { session: 'api', name: 'api' });
      });

      it('returns the messages after ?since=, at most ?limit=', async () => {
        const page = await call(plaza, 'GET', '/api/rooms/hist/history?since=5&limit=2');
        assert.deepEqual(page.body.messages.map((m: any) => m.offset), [6, 7]);
        assert.equal(page.body.complete, true);
        const rest = await call(plaza, 'GET', '/api/rooms/hist/history?since=7');
        assert.deepEqual(rest.body.messages.map((m: any) => m.offset), [8]);
        const none = await call(plaza, 'GET', '/api/rooms/hist/history?since=8');
        assert.deepEqual([none.body.messages, none.body.complete], [[], true]);
        const ahead = await call(plaza, 'GET', '/api/rooms/hist/history?since=9');
        assert.deepEqual([ahead.body.messages, ahead.body.complete], [[], false]);
        const capped = await call(plaza, 'GET', '/api/rooms/hist/history?since=3&limit=1000');
        assert.equal(capped.body.messages.length, 5, 'limit is capped at historySize');
        const zero = await call(plaza, 'GET', '/api/rooms/hist/history?limit=0');
        assert.deepEqual(zero.body.messages, []);
      });

      it('answers 404 for a room without history and 400 for bad parameters', async () => {
        assertError(await call(plaza, 'GET', '/api/rooms/never-used/history'), 404, 'not_found');
        for (const query of ['since=-1', 'since=abc', 'limit=1.5', 'since=99999999999999999999', 'limit=']) {
          assertError(await call(plaza, 'GET', `/api/rooms/hist/history?${query}`), 400, 'bad_request');
        }
      });
    });

    describe('POST /api/disconnect', () => {
      it('closes the session named with 4001 and the reason, and no one else', async () => {
        const target = await V1Client.open(wsUrl(plaza));
        const bystander = await V1Client.open(wsUrl(plaza));
        try {
          const { session } = await target.request({ type: 'hello', name: 'Target' });
          const answer = await call(plaza, 'POST', '/api/disconnect', { body: { session, reason: 'bye\nnow' } });
          assert.deepEqual(answer.body, { disconnected: 1 });
          assert.equal(await target.client.closed, 4001);
          assert.equal(target.client.closeReason, 'byenow');
          assert.equal((await bystander.request({ type: 'hello' })).type, 'welcome');
        } finally {
          await Promise.all([target.close(), bystander.close()]);
        }
      });

      it('uses a default reason and answers 0 when nobody matches', async () => {
        const target = await V1Client.open(wsUrl(plaza));
        try {
          const { session } = await target.request({ type: 'hello' });
          assert.deepEqual((await call(plaza, 'POST', '/api/disconnect', { body: { session: 'nobody' } })).body, { disconnected: 0 });
          assert.deepEqual((await call(plaza, 'POST', '/api/disconnect', { body: { user: 'nobody' } })).body, { disconnected: 0 });
          assert.deepEqual((await call(plaza, 'POST', '/api/disconnect', { body: { session } })).body, { disconnected: 1 });
          await target.client.closed;
          assert.equal(target.client.closeReason, 'disconnected by the operator');
        } finally {
          await target.close();
        }
      });

      it('refuses a body without a selector or with a bad field', async () => {
        assertError(await call(plaza, 'POST', '/api/disconnect', { body: {} }), 400, 'bad_request');
        assertError(await call(plaza, 'POST', '/api/disconnect', { body: { reason: 'everyone' } }), 400, 'bad_request');
        assertError(await call(plaza, 'POST', '/api/disconnect', { body: { session: 1 } }), 400, 'bad_request');
        assertError(await call(plaza, 'POST', '/api/disconnect', { body: { user: ['a'] } }), 400, 'bad_request');
        assertError(await call(plaza, 'POST', '/api/disconnect', { body: { session: 'a', reason: 7 } }), 400, 'bad_request');
        assertError(await call(plaza, 'POST', '/api/disconnect', { body: { session: 'a', reason: 'é'.repeat(62) } }), 400, 'bad_request');
      });
    });

    describe('security', () => {
      it('refuses data nested too deeply with 400, not a stack overflow', async () => {
        const nested = (depth: number) => `{"room":"deep","data":${'['.repeat(depth)}${']'.repeat(depth)}}`;
        assert.equal((await call(plaza, 'POST', '/api/publish', { body: nested(100) })).status, 200);
        assertError(await call(plaza, 'POST', '/api/publish', { body: nested(101) }), 400, 'bad_request');
        const deep = `{"room":"deep","data":${'['.repeat(480)}${']'.repeat(480)}}`;
        assertError(await call(plaza, 'POST', '/api/publish', { body: deep }), 400, 'bad_request');
        assertError(await call(plaza, 'POST', '/api/broadcast', { body: `{"rooms":["deep"],"data":${'{"a":'.repeat(101)}1${'}'.repeat(101)}}` }), 400, 'bad_request');
        assert.equal((await call(plaza, 'GET', '/api/rooms/deep/history')).body.lastOffset, 1);
      });

      it('ignores __proto__ and constructor keys in bodies', async () => {
        const body = '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"room":"proto","data":{"__proto__":{"x":1}}}';
        const answer = await call(plaza, 'POST', '/api/publish', { body });
        assert.equal(answer.status, 200);
        assert.equal(({} as Record<string, unknown>).polluted, undefined);
        const history = await call(plaza, 'GET', '/api/rooms/proto/history');
        assert.equal(JSON.stringify(history.body.messages[0].data), '{"__proto__":{"x":1}}');
      });

      it('sends no-store and nosniff with every answer', async () => {
        for (const answer of [await call(plaza, 'GET', '/api/rooms'), await call(plaza, 'GET', '/api/rooms', { key: 'wrong' })]) {
          assert.equal(answer.headers.get('cache-control'), 'no-store');
          assert.equal(answer.headers.get('x-content-type-options'), 'nosniff');
        }
      });
    });
  });

  describe('with auth tokens', () => {
    it('shows user ids in presence and disconnects by user', async () => {
      const secret = 's'.repeat(32);
      await withPlaza({ apiKey: KEY, authSecret: secret }, async (plaza) => {
        const exp = Math.floor(Date.now() / 1000) + 3600;
        const token = (sub: string) => signToken({ sub, name: sub.toUpperCase(), rooms: '*', exp }, secret);
        const [a1, a2, b] = await Promise.all(['ann', 'ann', 'bob'].map((sub) => V1Client.open(wsUrl(plaza, `/?token=${token(sub)}`))));
        try {
          for (const client of [a1!, a2!, b!]) await client.request({ type: 'join', room: 'users' });
          const presence = await call(plaza, 'GET', '/api/rooms/users/presence');
          assert.deepEqual(presence.body.members.map((m: any) => [m.user, m.name]).sort(), [['ann', 'ANN'], ['ann', 'ANN'], ['bob', 'BOB']]);
          const answer = await call(plaza, 'POST', '/api/disconnect', { body: { user: 'ann' } });
          assert.deepEqual(answer.body, { disconnected: 2 });
          assert.deepEqual(await Promise.all([a1!.client.closed, a2!.client.closed]), [4001, 4001]);
          assert.equal((await b!.request({ type: 'hello' })).type, 'welcome');
        } finally {
          await Promise.all([a1!.close(), a2!.close(), b!.close()]);
        }
      });
    });
  });

  describe('when every room slot is taken', () => {
    it('answers 503 server_full for publish, and per room for broadcast, once every room has members', async () => {
      await withPlaza({ apiKey: KEY, maxRooms: 2 }, async (plaza) => {
        const members = await Promise.all(['one', 'two'].map(async (room) => {
          const member = await V1Client.open(wsUrl(plaza));
          await member.request({ type: 'join', room });
          return member;
        }));
        try {
          assertError(await call(plaza, 'POST', '/api/publish', { body: { room: 'three', data: 1 } }), 503, 'server_full');
          const answer = await call(plaza, 'POST', '/api/broadcast', { body: { rooms: ['one', 'three'], data: 2 } });
          assert.equal(answer.status, 200);
          assert.deepEqual(answer.body.results[0], { room: 'one', offset: 1, epoch: answer.body.results[0].epoch, delivered: 1 });
          assert.equal(answer.body.results[1].room, 'three');
          assert.equal(answer.body.results[1].error.code, 'server_full');
        } finally {
          await Promise.all(members.map((member) => member.close()));
        }
      });
    });

    it('lets rooms nobody is in give way, least recently used first', async () => {
      await withPlaza({ apiKey: KEY, maxRooms: 2 }, async (plaza) => {
        for (const room of ['one', 'two', 'one', 'three']) assert.equal((await call(plaza, 'POST', '/api/publish', { body: { room, data: 1 } })).status, 200);
        const history = await call(plaza, 'GET', '/api/rooms/two/history');
        assertError(history, 404, 'not_found');
        assert.equal((await call(plaza, 'GET', '/api/rooms/one/history')).body.messages.length, 2);
      });
    });
  });

  describe('rate limit on wrong keys', () => {
    it('answers 429 with Retry-After once an address has failed 10 times, even with the right key', async () => {
      await withPlaza({ apiKey: KEY }, async (plaza) => {
        for (let i = 0; i < 10; i++) assertError(await call(plaza, 'GET', '/api/rooms', { key: `guess-${i}` }), 401, 'unauthorized');
        const limited = await call(plaza, 'GET', '/api/rooms', { key: 'guess-10' });
        assertError(limited, 429, 'rate_limited');
        assert.ok(Number(limited.headers.get('retry-after')) >= 1);
        assertError(await call(plaza, 'GET', '/api/rooms'), 429, 'rate_limited');
        // /metrics shares the limit: it guards the same key.
        assert.equal((await fetch(`${plaza.url}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).status, 429);
      });
    });
  });
});
