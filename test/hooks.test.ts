/**
 * The room hooks (onJoin, onLeave, onPublish) through the real path: Plaza's own client against
 * a Plaza on port 0 created with the hooks. What each verdict does, what each failure answers,
 * the order and the bounds of the calls, and that the server stays up whatever a hook does.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { PlazaClient } from '../src/client/index.js';
import { allow, reject, replace, type ClientInfo, type JoinContext, type LeaveContext, type PublishContext } from '../src/server/hooks/types.js';
import type { Plaza } from '../src/server/plaza.js';
import { createLogger } from '../src/server/logger.js';
import { assertHealthy, connect, wsUrl } from './helpers/plaza.js';
import { V1Client } from './helpers/v1.js';
import { gate, joined, listening, messages, rejection, roomsClient } from './helpers/library.js';
import { until } from './helpers/wait.mjs';
import { metric } from './helpers/metrics.mjs';

const open: Array<{ close(): unknown }> = [];
function track<T extends { close(): unknown }>(thing: T): T {
  open.push(thing);
  return thing;
}
after(async () => {
  for (const thing of open.reverse()) await thing.close();
});

function client(plaza: Plaza, name = 'ada'): PlazaClient {
  return track(roomsClient(wsUrl(plaza), { name }));
}

describe('onPublish', () => {
  it('is not asked again, and no second publish event is emitted, for a repeated publishId (issue #22)', async () => {
    const screened: unknown[] = [];
    const plaza = track(await listening({ onPublish: ({ data }) => void screened.push(data) }));
    const events: number[] = [];
    plaza.on('publish', ({ offset }) => events.push(offset));
    const v1 = track(await V1Client.open(wsUrl(plaza), 'Ada'));
    await v1.request({ type: 'join', room: 'team' });
    const first = await v1.request({ type: 'publish', room: 'team', data: 'once', publishId: 'ada.1' });
    const again = await v1.request({ type: 'publish', room: 'team', data: 'once', publishId: 'ada.1' });
    assert.deepEqual([first.type, first.offset, first.duplicate], ['ack', 1, undefined]);
    assert.deepEqual([again.type, again.offset, again.duplicate], ['ack', 1, true]);
    assert.deepEqual(screened, ['once']);
    assert.deepEqual(events, [1]);
  });

  it('sees what the client sent, and who sent it, before the message has an offset', async () => {
    const seen: PublishContext[] = [];
    const plaza = track(await listening({ onPublish: (context) => void seen.push(context) }));
    const ada = client(plaza, 'Ada');
    const room = ada.join('team');
    await joined(room);
    const ack = await room.publish({ text: 'hi' });
    assert.equal(ack.offset, 1);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.room, 'team');
    assert.deepEqual(seen[0]!.data, { text: 'hi' });
    assert.equal(seen[0]!.binary, false);
    assert.equal(seen[0]!.client.session, ada.session);
    assert.equal(seen[0]!.client.name, 'Ada');
    assert.equal(seen[0]!.client.protocol, 'v1');
    assert.equal(seen[0]!.client.address, '127.0.0.1');
    assert.equal(seen[0]!.signal.aborted, false);
  });

  it('reject(code, message): the publisher gets that code, nobody gets the message, and no offset is used', async () => {
    const plaza = track(await listening({ onPublish: ({ data }) => (data === 'spam' ? reject('moderated', 'no spam here') : allow()) }));
    const ada = client(plaza, 'Ada');
    const bob = client(plaza, 'Bob');
    const adaRoom = ada.join('team');
    const bobRoom = bob.join('team');
    await Promise.all([joined(adaRoom), joined(bobRoom)]);
    const got = messages(bobRoom);
    let refusal: unknown;
    await adaRoom.publish('spam').catch((error: unknown) => (refusal = error));
    assert.equal((refusal as { code: string }).code, 'moderated');
    assert.equal((refusal as Error).message, 'no spam here');
    const ack = await adaRoom.publish('ham');
    assert.equal(ack.offset, 1, 'the refused message took no offset');
    await until(() => got.length === 1, 3000, 'bob to get ham');
    assert.deepEqual(got.map((m) => [m.data, m.meta.offset]), [['ham', 1]]);
    // Refusals are the application's answer, not the client's mistake: no error budget is spent.
    for (let i = 0; i < 30; i++) await rejection(adaRoom.publish('spam'));
    assert.equal(ada.status, 'open');
  });

  it('reject() without arguments answers `rejected`', async () => {
    const plaza = track(await listening({ onPublish: () => reject() }));
    const room = client(plaza).join('team');
    await joined(room);
    assert.equal(await rejection(room.publish('x')), 'rejected');
  });

  it('replace(data): every member gets the replacement, the publisher included', async () => {
    const plaza = track(await listening({ onPublish: ({ data }) => replace({ text: String((data as { text: string }).text).toUpperCase(), checked: true }) }));
    const ada = client(plaza);
    const bob = client(plaza);
    const adaRoom = ada.join('team');
    const bobRoom = bob.join('team');
    await Promise.all([joined(adaRoom), joined(bobRoom)]);
    const adaGot = messages(adaRoom);
    const bobGot = messages(bobRoom);
    await adaRoom.publish({ text: 'quiet please' });
    await until(() => adaGot.length === 1 && bobGot.length === 1, 3000, 'the replacement');
    assert.deepEqual(bobGot[0]!.data, { text: 'QUIET PLEASE', checked: true });
    assert.deepEqual(adaGot[0]!.data, { text: 'QUIET PLEASE', checked: true });
  });

  it('a hook that throws answers hook_failed, logs the error, publishes nothing, and the connection and server go on', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'error', format: 'json', write: (line) => void lines.push(line) });
    const plaza = track(await listening({
      onPublish: ({ data }) => {
        if (data === 'boom') throw new Error('database exploded at 10.0.0.7');
      },
    }, { logger }));
    const ada = client(plaza);
    const bob = client(plaza);
    const adaRoom = ada.join('team');
    const bobRoom = bob.join('team');
    await Promise.all([joined(adaRoom), joined(bobRoom)]);
    const got = messages(bobRoom);
    let failure: unknown;
    await adaRoom.publish('boom').catch((error: unknown) => (failure = error));
    assert.equal((failure as { code: string }).code, 'hook_failed');
    assert.doesNotMatch((failure as Error).message, /10\.0\.0\.7|exploded/, 'the hook\'s error stays in the log');
    assert.equal((await adaRoom.publish('fine')).offset, 1);
    await until(() => got.length === 1, 3000, 'the next message');
    assert.deepEqual(got.map((m) => m.data), ['fine']);
    assert.equal(await metric(plaza, 'plaza_hook_failures_total{hook="onPublish",code="hook_failed"}'), 1);
    assert.ok(lines.some((line) => /"hook":"onPublish"/.test(line) && /database exploded/.test(line)), 'the error is in the log');
    await assertHealthy(plaza);
  });

  it('a hook past hookTimeout answers hook_timeout and sees its signal aborted', async () => {
    let signal: AbortSignal | undefined;
    const plaza = track(await listening({
      hookTimeout: 100,
      onPublish: (context) => {
        signal = context.signal;
        return new Promise<undefined>(() => {});
      },
    }));
    const room = client(plaza).join('team');
    await joined(room);
    assert.equal(await rejection(room.publish('slow')), 'hook_timeout');
    assert.equal(signal?.aborted, true);
    assert.equal(await metric(plaza, 'plaza_hook_failures_total{hook="onPublish",code="hook_timeout"}'), 1);
  });

  it('a verdict it may not give answers hook_failed: an unknown shape, a bad code, replacement data that is too large', async () => {
    let deep: unknown = 1;
    for (let i = 0; i < 101; i++) deep = [deep];
    const verdicts: unknown[] = [42, { verdict: 'maybe' }, reject('Not A Code', 'x'), replace('x'.repeat(2000)), replace(() => 1), replace(deep)];
    let next = 0;
    const plaza = track(await listening({ maxPayload: 1024, onPublish: () => verdicts[next++] as undefined }));
    const room = client(plaza).join('team');
    await joined(room);
    for (let i = 0; i < verdicts.length; i++) assert.equal(await rejection(room.publish(i)), 'hook_failed', `verdict ${i}`);
  });

  it('a verdict that throws when read answers hook_failed, and the connection stays', async () => {
    const boom = () => {
      throw new Error('getter exploded');
    };
    const verdicts: unknown[] = [
      { get verdict() {
        return boom();
      } },
      { verdict: 'reject', get code() {
        return boom();
      }, message: 'x' },
      { verdict: 'replace', get data() {
        return boom();
      } },
      replace({ get text() {
        return boom();
      } }),
      new Proxy({}, { get: boom }),
      { get then() {
        return boom();
      } },
    ];
    let next = 0;
    const plaza = track(await listening({ onPublish: () => verdicts[next++] as undefined }));
    const ada = client(plaza);
    const room = ada.join('team');
    await joined(room);
    for (let i = 0; i < verdicts.length; i++) assert.equal(await rejection(room.publish(i)), 'hook_failed', `verdict ${i}`);
    assert.equal((await room.publish('fine')).offset, 1);
    assert.equal(ada.status, 'open');
    assert.equal(await metric(plaza, 'plaza_hook_failures_total{hook="onPublish",code="hook_failed"}'), verdicts.length);
    await assertHealthy(plaza);
  });

  it('keeps each connection\'s publishes in order, one hook call at a time, however long each call takes', async () => {
    const running = new Map<string, number>();
    let most = 0;
    const plaza = track(await listening({
      rateLimit: 0,
      onPublish: async ({ client: who, data }) => {
        const now = (running.get(who.session) ?? 0) + 1;
        running.set(who.session, now);
        most = Math.max(most, now);
        // Later messages finish sooner: only the ordering can keep them in line.
        await new Promise((resolve) => setTimeout(resolve, 30 - (data as number)));
        running.set(who.session, now - 1);
      },
    }));
    const ada = client(plaza);
    const bob = client(plaza);
    const adaRoom = ada.join('team');
    const bobRoom = bob.join('team');
    await Promise.all([joined(adaRoom), joined(bobRoom)]);
    const got = messages(bobRoom);
    const acks = await Promise.all(Array.from({ length: 30 }, (_, i) => adaRoom.publish(i)));
    assert.deepEqual(acks.map((ack) => ack.offset), Array.from({ length: 30 }, (_, i) => i + 1));
    await until(() => got.length === 30, 5000, '30 messages');
    assert.deepEqual(got.map((m) => m.data), Array.from({ length: 30 }, (_, i) => i));
    assert.equal(most, 1, 'one call at a time per connection');
  });

  it('a leave right behind a waiting publish waits too: the publish still finds its room', async () => {
    const hold = gate();
    const plaza = track(await listening({ onPublish: () => hold.promise }));
    const ada = client(plaza);
    const bob = client(plaza);
    const adaRoom = ada.join('team');
    const bobRoom = bob.join('team');
    await Promise.all([joined(adaRoom), joined(bobRoom)]);
    const got = messages(bobRoom);
    const published = adaRoom.publish('last words');
    adaRoom.leave();
    setTimeout(hold.open, 50);
    assert.equal((await published).offset, 1);
    await until(() => got.length === 1, 3000, 'the message published before the leave');
  });

  it('a call that timed out keeps its place in the bound until it settles: a hook that hangs ends in hook_busy, not in piled-up calls', async () => {
    const plaza = track(await listening({ maxHookCalls: 1, hookTimeout: 50, onPublish: () => new Promise<undefined>(() => {}) }));
    const room = client(plaza).join('team');
    await joined(room);
    assert.equal(await rejection(room.publish(1)), 'hook_timeout');
    assert.equal(await rejection(room.publish(2)), 'hook_busy');
    assert.equal(await metric(plaza, 'plaza_hook_calls_active'), 1);
  });

  it('does not screen what the application publishes itself: plaza.publish() and the HTTP API', async () => {
    const key = 'hooks-test-api-key-0123456789';
    const plaza = track(await listening({ apiKey: key, onPublish: () => reject('closed', 'nobody may talk') }));
    const room = client(plaza).join('news');
    await joined(room);
    const got = messages(room);
    assert.equal(await rejection(room.publish('from a client')), 'closed');
    await plaza.publish('news', 'from plaza.publish');
    const response = await fetch(`http://127.0.0.1:${plaza.port}/api/publish`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ room: 'news', data: 'from the API' }),
    });
    assert.equal(response.status, 200);
    await until(() => got.length === 2, 3000, 'both server-side messages');
    assert.deepEqual(got.map((m) => m.data), ['from plaza.publish', 'from the API']);
  });

  it('holds at most maxHookCalls calls at once across the server; past it: hook_busy at once', async () => {
    const hold = gate();
    let calls = 0;
    const plaza = track(await listening({ maxHookCalls: 2, onPublish: () => (calls++, hold.promise) }));
    const rooms = [client(plaza).join('a'), client(plaza).join('b'), client(plaza).join('c')];
    await Promise.all(rooms.map(joined));
    const first = rooms[0]!.publish(1);
    const second = rooms[1]!.publish(2);
    await until(() => calls === 2, 5000, 'both publishes in the hook');
    assert.equal(await rejection(rooms[2]!.publish(3)), 'hook_busy');
    hold.open();
    assert.equal((await first).offset, 1);
    assert.equal((await second).offset, 1);
    assert.equal((await rooms[2]!.publish(4)).offset, 1, 'the bound frees up once calls settle');
  });

  it('screens a plain client\'s messages too: refused ones are dropped and counted, the rest go on in order', async () => {
    const plaza = track(await listening({ onPublish: ({ data, binary }) => (binary || String(data).startsWith('bad') ? reject('nope', 'dropped') : undefined) }));
    const [sender, listener] = await Promise.all([connect(wsUrl(plaza)), connect(wsUrl(plaza))]);
    track(sender);
    track(listener);
    await until(() => plaza.connectionCount === 2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (const text of ['one', 'bad two', 'three']) sender.send(text);
    sender.send(Buffer.from([1, 2, 3]));
    sender.send('four');
    const got = await listener.waitFor(3);
    assert.deepEqual(got.map((m) => m.text), ['one', 'three', 'four']);
    await listener.expectNoMoreThan(3, 100);
    assert.equal(await metric(plaza, 'plaza_plain_messages_dropped_total'), 2);
  });
});

describe('onJoin', () => {
  it('sees the room and the client, and lets it in with nothing or allow()', async () => {
    const seen: JoinContext[] = [];
    const plaza = track(await listening({ onJoin: (context) => (seen.push(context), context.room === 'a' ? undefined : allow()) }));
    const ada = client(plaza, 'Ada');
    await joined(ada.join('a'));
    await joined(ada.join('b'));
    assert.deepEqual(seen.map((c) => [c.room, c.client.name, c.client.session]), [['a', 'Ada', ada.session], ['b', 'Ada', ada.session]]);
  });

  it('is asked once per room: joining a room the connection is in answers again without asking', async () => {
    const asked: string[] = [];
    const plaza = track(await listening({ onJoin: ({ room }) => void asked.push(room) }));
    const raw = track(await V1Client.open(wsUrl(plaza)));
    assert.equal((await raw.request({ type: 'join', room: 'team' })).type, 'joined');
    assert.equal((await raw.request({ type: 'join', room: 'team' })).type, 'joined');
    assert.deepEqual(asked, ['team']);
  });

  it('reject(code, message): the join fails with that code and the client is not a member', async () => {
    const plaza = track(await listening({ onJoin: ({ room }) => (room.startsWith('vip-') ? reject('members_only', 'this room is for members') : undefined) }));
    const ada = client(plaza);
    const vip = ada.join('vip-lounge');
    await assert.rejects(joined(vip), (error: Error & { code: string }) => error.code === 'members_only' && error.message === 'this room is for members');
    const res = await fetch(`http://127.0.0.1:${plaza.port}/healthz`);
    assert.equal(res.status, 200);
    await joined(ada.join('lobby-2'));
    assert.equal(plaza.connectionCount, 1);
  });

  it('a throwing or slow hook answers hook_failed or hook_timeout and the join does not happen', async () => {
    const plaza = track(await listening({
      hookTimeout: 100,
      onJoin: ({ room }) => {
        if (room === 'throws') throw new Error('no');
        if (room === 'slow') return new Promise<undefined>(() => {});
        return undefined;
      },
    }));
    const ada = client(plaza);
    await assert.rejects(joined(ada.join('throws')), (error: { code: string }) => error.code === 'hook_failed');
    await assert.rejects(joined(ada.join('slow')), (error: { code: string }) => error.code === 'hook_timeout');
    await joined(ada.join('fine'));
  });

  it('a verdict that throws when read answers hook_failed, the join does not happen, and the connection stays', async () => {
    const plaza = track(await listening({
      onJoin: ({ room }) => (room === 'getter'
        ? { get verdict() {
          throw new Error('getter exploded');
        } }
        : room === 'proxy' ? new Proxy({}, { get: () => {
          throw new Error('proxy exploded');
        } }) : undefined) as undefined,
    }));
    const ada = client(plaza);
    let disconnects = 0;
    ada.on('close', () => disconnects++);
    await assert.rejects(joined(ada.join('getter')), (error: { code: string }) => error.code === 'hook_failed');
    await assert.rejects(joined(ada.join('proxy')), (error: { code: string }) => error.code === 'hook_failed');
    await joined(ada.join('fine'));
    assert.equal(disconnects, 0);
    await assertHealthy(plaza);
  });

  it('keeps a plain client out of the default room: closed with 1008 and the code, and nothing it sent meanwhile is published', async () => {
    let inviteOnly = false;
    const plaza = track(await listening({
      onJoin: async () => {
        await new Promise((resolve) => setTimeout(resolve, 100));
        return inviteOnly ? reject('closed_room', 'invite only') : undefined;
      },
    }));
    const joins: string[] = [];
    plaza.on('join', ({ client: who }) => joins.push(who.session));
    const listener = track(await connect(wsUrl(plaza)));
    await until(() => joins.length === 1, 3000, 'the listener in the lobby');
    inviteOnly = true;
    const intruder = track(await connect(wsUrl(plaza)));
    intruder.send('sneaking in');
    assert.equal(await intruder.closed, 1008);
    assert.match(intruder.closeReason, /^closed_room: invite only/);
    await listener.expectNoMoreThan(0, 100);
  });

  it('a plain client the hook could not decide about is closed with 1013 (try again later)', async () => {
    const plaza = track(await listening({
      onJoin: () => {
        throw new Error('membership service down');
      },
    }));
    const plain = track(await connect(wsUrl(plaza)));
    assert.equal(await plain.closed, 1013);
    assert.match(plain.closeReason, /^hook_failed/);
  });

  it('is not asked about Plaza\'s own rooms (plaza:status)', async () => {
    const rooms: string[] = [];
    const plaza = track(await listening({ status: true, onJoin: ({ room }) => void rooms.push(room) }));
    const ada = client(plaza);
    await joined(ada.join('plaza:status'));
    await joined(ada.join('team'));
    assert.deepEqual(rooms, ['team']);
  });
});

describe('onLeave', () => {
  it('is told after a leave and for every room of a client that disconnects; what it throws is only logged', async () => {
    const left: LeaveContext[] = [];
    const plaza = track(await listening({
      onLeave: (context) => {
        left.push(context);
        throw new Error('audit log unavailable');
      },
    }));
    const ada = client(plaza, 'Ada');
    const a = ada.join('a');
    await Promise.all([joined(a), joined(ada.join('b')), joined(ada.join('c'))]);
    a.leave();
    await until(() => left.length === 1, 3000, 'onLeave after leave()');
    assert.equal(left[0]!.room, 'a');
    assert.equal(left[0]!.client.name, 'Ada');
    ada.close();
    await until(() => left.length === 3, 3000, 'onLeave for the rooms left by closing');
    assert.deepEqual(left.map((c) => c.room).sort(), ['a', 'b', 'c']);
    assert.equal(await metric(plaza, 'plaza_hook_failures_total{hook="onLeave",code="hook_failed"}'), 3);
    await assertHealthy(plaza);
  });
});

describe('onLeave past maxHookCalls', () => {
  it('is not called and is counted as hook_busy; the leave event is told regardless', async () => {
    const plaza = track(await listening({ maxHookCalls: 1, onLeave: () => new Promise(() => {}) }));
    const leaves: string[] = [];
    plaza.on('leave', ({ room }) => leaves.push(room));
    const ada = client(plaza);
    const a = ada.join('a');
    const b = ada.join('b');
    await Promise.all([joined(a), joined(b)]);
    a.leave();
    b.leave();
    await until(() => leaves.length === 2, 3000, 'both leave events');
    assert.equal(await metric(plaza, 'plaza_hook_failures_total{hook="onLeave",code="hook_busy"}'), 1);
    assert.equal(await metric(plaza, 'plaza_hook_calls_active'), 1);
  });
});

describe('events', () => {
  it('tell connect, roomOccupied, join, publish, leave, roomVacated and disconnect, in that order, with who and what', async () => {
    const plaza = track(await listening());
    const seen: string[] = [];
    const clients: ClientInfo[] = [];
    plaza.on('connect', ({ client: who }) => (seen.push('connect'), clients.push(who)));
    plaza.on('roomOccupied', ({ room }) => seen.push(`occupied ${room}`));
    plaza.on('join', ({ room, client: who }) => (seen.push(`join ${room}`), clients.push(who)));
    plaza.on('publish', ({ room, data, offset, client: who }) => seen.push(`publish ${room} ${JSON.stringify(data)} ${offset} ${who ? who.name : 'server'}`));
    plaza.on('leave', ({ room }) => seen.push(`leave ${room}`));
    plaza.on('roomVacated', ({ room }) => seen.push(`vacated ${room}`));
    plaza.on('disconnect', ({ code }) => seen.push(`disconnect ${code}`));
    const ada = client(plaza, 'Ada');
    const room = ada.join('team');
    await joined(room);
    await room.publish({ n: 1 });
    await plaza.publish('team', 'from the app');
    ada.close();
    await until(() => seen.includes('disconnect 1000'), 3000, 'disconnect');
    assert.deepEqual(seen, [
      'connect',
      'occupied team',
      'join team',
      'publish team {"n":1} 1 Ada',
      'publish team "from the app" 2 server',
      'leave team',
      'vacated team',
      'disconnect 1000',
    ]);
    assert.equal(clients[1]!.session, clients[0]!.session);
  });

  it('a listener that throws is logged and the others still run; on() returns its own unsubscribe', async () => {
    const plaza = track(await listening());
    const rooms: string[] = [];
    plaza.on('join', () => {
      throw new Error('listener bug');
    });
    const off = plaza.on('join', ({ room }) => rooms.push(room));
    const ada = client(plaza);
    await joined(ada.join('a'));
    off();
    off();
    await joined(ada.join('b'));
    assert.deepEqual(rooms, ['a']);
    assert.throws(() => plaza.on('nonsense' as 'join', () => {}), TypeError);
  });
});
