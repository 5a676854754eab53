/**
 * The SSE transport on one node, through the real path: a Plaza on port 0, real HTTP streams and
 * POSTs (PROTOCOL.md, "Server-sent events"), and plaza.v1 WebSockets in the same rooms.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signToken, type TokenClaims } from '../../src/server/access/tokens.js';
import type { Plaza } from '../../src/server/plaza.js';
import { refuse } from '../../src/server/hooks/types.js';
import { listening } from '../helpers/library.js';
import { startPlaza, wsUrl } from '../helpers/plaza.js';
import { httpSend, SseClient } from '../helpers/sse-client.js';
import { V1Client } from '../helpers/v1.js';

const sseUrl = (plaza: Plaza, query = '') => `http://127.0.0.1:${plaza.port}/sse${query}`;

describe('SSE streams on one node', () => {
  let plaza: Plaza;
  const open: SseClient[] = [];
  const stream = async (query = '', headers: Record<string, string> = {}) => {
    const client = await SseClient.open(sseUrl(plaza, query), headers);
    open.push(client);
    return client;
  };
  before(async () => {
    plaza = await startPlaza({ welcome: 'be kind', maxPayload: 4096, maxBuffered: 64 * 1024 });
  });
  after(async () => {
    for (const client of open) client.close();
    await plaza.close();
  });

  it('opens with the headers, a retry line, the welcome with a secret stream id, the notice and the URL rooms', async () => {
    const client = await stream('?room=lobby&room=team-7&name=Ada');
    assert.equal(client.response.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(client.response.headers['cache-control'], 'no-cache, no-transform');
    assert.equal(client.response.headers['x-accel-buffering'], 'no');
    const welcome = await client.welcome();
    assert.equal(welcome.name, 'Ada');
    assert.match(welcome.stream, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    await client.next((e) => e.type === 'joined' && e.room === 'team-7');
    assert.ok(client.raw.startsWith('retry: '));
    assert.deepEqual(client.envelopes().map((e) => [e.type, e.id ?? null]), [
      ['welcome', null], ['notice', null], ['joined', 'open:lobby'], ['joined', 'open:team-7'],
    ]);
    const [lobby, team] = [client.envelopes()[2]!, client.envelopes()[3]!];
    assert.equal(client.events.find((e) => e.json?.room === 'team-7')!.lastEventId, `team-7 ${team.epoch}:${team.offset}`);
    // In two rooms: the write ends with a line naming both.
    await client.until(() => client.lastEventId === `lobby ${lobby.epoch}:${lobby.offset} team-7 ${team.epoch}:${team.offset}`, 5000, 'a cursor of both rooms');
  });

  it('takes POSTed requests in order and answers them on the stream, with ids that are room positions', async () => {
    const client = await stream();
    const answer = await client.post([
      { type: 'hello', id: 1, name: 'Bea' },
      { type: 'join', id: 2, room: 'posts', presence: true },
      { type: 'publish', id: 3, room: 'posts', data: { text: 'hi' } },
    ]);
    assert.equal(answer.status, 204);
    const ack = await client.next((e) => e.type === 'ack' && e.id === 3);
    const types = client.envelopes().map((e) => e.type);
    assert.deepEqual(types, ['welcome', 'notice', 'welcome', 'joined', 'message', 'ack']);
    const second = client.envelopes().filter((e) => e.type === 'welcome')[1]!;
    assert.equal(second.id, 1);
    assert.equal(second.name, 'Bea');
    assert.equal(typeof second.stream, 'string');
    const message = client.events.find((e) => e.json?.type === 'message')!;
    assert.equal(message.lastEventId, `posts ${ack.epoch}:${ack.offset}`);
    assert.deepEqual(message.json!.data, { text: 'hi' });
  });

  it('puts SSE streams and WebSockets in the same rooms: messages and presence both ways', async () => {
    const client = await stream('?room=mixed&presence=1');
    await client.next((e) => e.type === 'joined');
    const ws = await V1Client.open(wsUrl(plaza), 'Cy');
    await ws.request({ type: 'join', room: 'mixed', presence: true });
    const joinedPresence = await client.next((e) => e.type === 'presence' && Array.isArray(e.joined));
    assert.equal((joinedPresence.joined as Array<{ name: string }>)[0]!.name, 'Cy');
    await ws.request({ type: 'publish', room: 'mixed', data: 'from ws' });
    await client.next((e) => e.type === 'message' && e.data === 'from ws');
    assert.equal((await client.post([{ type: 'publish', id: 'p', room: 'mixed', data: 'from sse' }])).status, 204);
    await ws.waitFor((e) => e.type === 'message' && e.data === 'from sse');
    await ws.close();
    await client.next((e) => e.type === 'presence' && Array.isArray(e.left));
  });

  it('answers a repeated publishId with the first ack and publishes nothing again', async () => {
    const client = await stream('?room=once');
    await client.next((e) => e.type === 'joined');
    await client.post([{ type: 'publish', id: 1, room: 'once', data: 'x', publishId: 'k1.1' }]);
    const first = await client.next((e) => e.type === 'ack' && e.id === 1);
    await client.post([{ type: 'publish', id: 2, room: 'once', data: 'x', publishId: 'k1.1' }]);
    const again = await client.next((e) => e.type === 'ack' && e.id === 2);
    assert.deepEqual([again.offset, again.epoch, again.duplicate], [first.offset, first.epoch, true]);
    assert.equal(client.envelopes().filter((e) => e.type === 'message').length, 1);
  });

  it('sends history and resumes with join since, as over a WebSocket', async () => {
    const writer = await stream('?room=hist');
    await writer.next((e) => e.type === 'joined');
    await writer.post([1, 2, 3].map((n) => ({ type: 'publish', id: n, room: 'hist', data: n })));
    await writer.next((e) => e.type === 'ack' && e.id === 3);
    const reader = await stream('?room=hist&history=2');
    const joined = await reader.next((e) => e.type === 'joined');
    assert.deepEqual((joined.messages as Array<{ data: number }>).map((m) => m.data), [2, 3]);
    const resumer = await stream();
    await resumer.post([{ type: 'join', id: 'r', room: 'hist', since: { epoch: joined.epoch, offset: 1 } }]);
    const resumed = await resumer.next((e) => e.type === 'joined');
    assert.equal(resumed.recovered, true);
    assert.deepEqual((resumed.messages as Array<{ data: number }>).map((m) => m.data), [2, 3]);
  });

  it('answers each bad line with an error event and keeps the stream', async () => {
    const client = await stream();
    const answer = await client.post('{"type":"join","id":1,"room":"a b"}\nnot json\n{"type":"nope","id":2}\n\n{"type":"leave","id":3,"room":"x"}');
    assert.equal(answer.status, 204);
    await client.next((e) => e.type === 'error' && e.id === 3);
    assert.deepEqual(client.envelopes().filter((e) => e.type === 'error').map((e) => e.code), ['bad_room', 'bad_json', 'unknown_type', 'not_joined']);
  });

  it('refuses POSTs it cannot take with a status and a code', async () => {
    const client = await stream();
    const url = await client.postUrl();
    const post = (body: string, headers: Record<string, string> = {}) => httpSend(url, { method: 'POST', body, headers });
    const codes = async (answer: Promise<{ status: number; json: { error?: { code: string } } | undefined }>) => {
      const { status, json } = await answer;
      return [status, json?.error?.code];
    };
    assert.deepEqual(await codes(post('')), [400, 'bad_request']);
    assert.deepEqual(await codes(post('\n\n')), [400, 'bad_request']);
    assert.deepEqual(await codes(httpSend(url, { method: 'POST', body: Buffer.from([0x7b, 0xff, 0x7d]) })), [400, 'bad_request']);
    assert.deepEqual(await codes(post('{}', { 'Plaza-Seq': '0' })), [400, 'bad_request']);
    assert.deepEqual(await codes(post('{}', { 'Plaza-Seq': 'x' })), [400, 'bad_request']);
    assert.deepEqual(await codes(post('x'.repeat(5000))), [413, 'too_large']);
    assert.deepEqual(await codes(httpSend(`${url}x`, { method: 'POST', body: '{}' })), [404, 'unknown_stream']);
    assert.deepEqual(await codes(httpSend(url, { method: 'PUT', body: '{}' })), [405, 'method_not_allowed']);
    assert.deepEqual(await codes(httpSend(sseUrl(plaza), { method: 'POST', body: '{}' })), [405, 'method_not_allowed']);
    // Numbered POSTs: only the next one is taken, an earlier one is a duplicate.
    const one = await post('{"type":"hello","id":"s1"}', { 'Plaza-Seq': '1' });
    assert.equal(one.status, 204);
    assert.equal(one.headers['plaza-seq-duplicate'], undefined);
    const ahead = await post('{"type":"hello","id":"s3"}', { 'Plaza-Seq': '3' });
    assert.deepEqual([ahead.status, ahead.json?.error?.code, ahead.headers['plaza-seq-expected']], [409, 'out_of_order', '2']);
    const again = await post('{"type":"hello","id":"s1-again"}', { 'Plaza-Seq': '1' });
    assert.deepEqual([again.status, again.headers['plaza-seq-duplicate']], [204, 'true']);
    assert.equal((await post('{"type":"hello","id":"s2"}', { 'Plaza-Seq': '2' })).status, 204);
    await client.next((e) => e.type === 'welcome' && e.id === 's2');
    assert.deepEqual(client.envelopes().filter((e) => e.type === 'welcome').map((e) => e.id ?? null), [null, 's1', 's2']);
  });

  it('refuses a bad stream request with 400 and a code, before any stream exists', async () => {
    for (const [query, code] of [
      ['?room=a%20b', 'bad_room'], ['?history=x', 'bad_request'], ['?history=101', 'bad_request'], ['?presence=maybe', 'bad_request'],
      ['?name=%E2%80%8B', 'bad_request'], ['?lastEventId=lobby', 'bad_request'], ['?lastEventId=a%20b%20E:1', 'bad_request'],
    ] as const) {
      const answer = await httpSend(sseUrl(plaza, query));
      assert.deepEqual([answer.status, answer.json?.error?.code], [400, code], query);
    }
    const rooms = Array.from({ length: 101 }, (_, i) => `room=r${i}`).join('&');
    const tooMany = await httpSend(sseUrl(plaza, `?${rooms}`));
    assert.deepEqual([tooMany.status, tooMany.json?.error?.code], [400, 'too_many_rooms']);
  });

  it('says goodbye with a close event when the server shuts down', async () => {
    const own = await startPlaza({});
    const client = await SseClient.open(sseUrl(own));
    await client.welcome();
    await own.close();
    const last = await client.next((e) => e.type === 'close');
    assert.deepEqual([last.code, last.reason], [1001, 'server shutting down']);
    await client.until(() => client.ended, 3000, 'the end of the response');
  });
});

describe('SSE heartbeats', () => {
  it('sends comments every --heartbeat-ms, or beat events with ?beats=1', async () => {
    const plaza = await startPlaza({ heartbeatMs: 50 });
    try {
      const comments = await SseClient.open(sseUrl(plaza));
      const beats = await SseClient.open(sseUrl(plaza, '?beats=1'));
      await comments.until(() => comments.parser.comments >= 2, 3000, 'two heartbeat comments');
      await beats.next((e) => e.type === 'beat', 3000);
      assert.equal(beats.parser.comments, 0);
      assert.equal(comments.envelopes().filter((e) => e.type === 'beat').length, 0);
      assert.equal((await comments.welcome()).heartbeat, 50);
      comments.close();
      beats.close();
    } finally {
      await plaza.close();
    }
  });
});

describe('SSE with tokens', () => {
  const SECRET = 's'.repeat(40);
  const token = (sub: string, claims: Partial<TokenClaims> = {}) =>
    signToken({ sub, name: sub, rooms: '*', exp: Math.floor(Date.now() / 1000) + 600, ...claims } as TokenClaims, SECRET);

  it('needs a token to open a stream and the same user\'s bearer token to POST', async () => {
    const plaza = await startPlaza({ authSecret: SECRET });
    try {
      const missing = await httpSend(sseUrl(plaza));
      assert.deepEqual([missing.status, missing.json?.error?.code], [401, 'unauthorized']);
      const forged = await httpSend(sseUrl(plaza, `?token=${token('ada')}x`));
      assert.deepEqual([forged.status, forged.json?.error?.code], [401, 'unauthorized']);
      const client = await SseClient.open(sseUrl(plaza, `?token=${token('ada')}&room=lobby`));
      const welcome = await client.welcome();
      assert.equal(welcome.name, 'ada');
      const request = [{ type: 'publish', id: 1, room: 'lobby', data: 'hi' }];
      assert.deepEqual([(await client.post(request, { seq: null })).json?.error?.code], ['unauthorized']);
      const foreign = await client.post(request, { seq: null, headers: { Authorization: `Bearer ${token('bob')}` } });
      assert.deepEqual([foreign.status, foreign.json?.error?.code], [403, 'foreign_stream']);
      const own = await client.post(request, { seq: null, headers: { Authorization: `Bearer ${token('ada')}` } });
      assert.equal(own.status, 204);
      await client.next((e) => e.type === 'ack');
      // The Authorization header opens a stream too (for clients that can set one).
      const viaHeader = await SseClient.open(sseUrl(plaza), { Authorization: `Bearer ${token('cy')}` });
      assert.equal((await viaHeader.welcome()).name, 'cy');
      client.close();
      viaHeader.close();
    } finally {
      await plaza.close();
    }
  });

  it('ends a stream whose token expires with close code 4004, and a room the token forbids is an error event', async () => {
    const plaza = await startPlaza({ authSecret: SECRET });
    try {
      const soon = signToken({ sub: 'ada', rooms: ['lobby'], exp: Math.floor(Date.now() / 1000) + 1 } as TokenClaims, SECRET);
      const client = await SseClient.open(sseUrl(plaza, `?token=${soon}&room=secret`));
      const refused = await client.next((e) => e.type === 'error');
      assert.deepEqual([refused.id, refused.code], ['open:secret', 'forbidden']);
      const last = await client.next((e) => e.type === 'close', 4000);
      assert.equal(last.code, 4004);
    } finally {
      await plaza.close();
    }
  });
});

describe('SSE for pages of other origins', () => {
  it('answers allowed origins with CORS headers and a preflight, and refuses the others', async () => {
    const plaza = await startPlaza({ allowedOrigins: ['https://app.example'] });
    try {
      const preflight = await httpSend(sseUrl(plaza, '/abc'), {
        method: 'OPTIONS',
        headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization, plaza-seq' },
      });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers['access-control-allow-origin'], 'https://app.example');
      assert.match(String(preflight.headers['access-control-allow-headers']), /Plaza-Seq/);
      assert.match(String(preflight.headers['access-control-allow-methods']), /POST/);
      const client = await SseClient.open(sseUrl(plaza), { Origin: 'https://app.example' });
      assert.equal(client.response.headers['access-control-allow-origin'], 'https://app.example');
      const posted = await client.post([{ type: 'hello' }], { headers: { Origin: 'https://app.example' } });
      assert.equal(posted.headers['access-control-allow-origin'], 'https://app.example');
      assert.match(String(posted.headers['access-control-expose-headers']), /Plaza-Seq-Expected/);
      for (const method of ['GET', 'OPTIONS']) {
        const other = await httpSend(sseUrl(plaza), { method, headers: { Origin: 'https://evil.example' } });
        assert.deepEqual([other.status, other.json?.error?.code], [403, 'forbidden'], method);
      }
      const otherPost = await client.post([{ type: 'hello' }], { headers: { Origin: 'https://evil.example' } });
      assert.deepEqual([otherPost.status, otherPost.json?.error?.code], [403, 'forbidden']);
      client.close();
    } finally {
      await plaza.close();
    }
  });
});

describe('SSE with the authenticate hook', () => {
  it('asks the same hook at the door of a stream and of each POST: its identity names the stream, its refusal is the status', async () => {
    const users = new Map([['s-ada', { id: 'u1', name: 'Ada' }], ['s-bob', { id: 'u2', name: 'Bob' }]]);
    const cookie = (request: { headers: { cookie?: string | undefined } }) => /(?:^|;\s*)session=([^;]+)/.exec(request.headers.cookie ?? '')?.[1] ?? '';
    const plaza = await listening({ authenticate: (request) => users.get(cookie(request)) ?? refuse(403, 'members only: sign in at /login') });
    try {
      const refused = await httpSend(sseUrl(plaza));
      assert.deepEqual([refused.status, refused.json?.error], [403, { code: 'forbidden', message: 'members only: sign in at /login' }]);
      const client = await SseClient.open(sseUrl(plaza, '?room=lobby&name=Mallory'), { Cookie: 'session=s-ada' });
      assert.equal((await client.welcome()).name, 'Ada');
      const asBob = await client.post([{ type: 'hello' }], { seq: 1, headers: { Cookie: 'session=s-bob' } });
      assert.deepEqual([asBob.status, asBob.json?.error?.code], [403, 'foreign_stream']);
      const asNobody = await client.post([{ type: 'hello' }], { seq: null });
      assert.deepEqual([asNobody.status, asNobody.json?.error?.code], [403, 'forbidden']);
      // Refused POSTs took nothing: Plaza-Seq 1 is still the next one.
      assert.equal((await client.post([{ type: 'publish', id: 1, room: 'lobby', data: 'hi' }], { seq: 1, headers: { Cookie: 'session=s-ada' } })).status, 204);
      const message = await client.next((e) => e.type === 'message');
      assert.deepEqual(message.from, { session: (await client.welcome()).session, name: 'Ada' });
      client.close();
    } finally {
      await plaza.close();
    }
  });
});
