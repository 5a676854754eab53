/**
 * Resuming a bare EventSource (PROTOCOL.md, "Ids and resuming"): each event's id is a cursor of
 * room positions, and a reconnect that sends it as Last-Event-ID gets exactly what it missed, or
 * `recovered: false` with a reason. Real server, real HTTP; the reconnect is what a browser's
 * EventSource sends by itself.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Plaza } from '../../src/server/plaza.js';
import { startPlaza } from '../helpers/plaza.js';
import { SseClient, type Envelope } from '../helpers/sse-client.js';

const dataOf = (messages: unknown) => (messages as Envelope[]).map((m) => m.data);

describe('resuming SSE streams with Last-Event-ID', () => {
  let plaza: Plaza;
  const clients: SseClient[] = [];
  const open = async (query: string, headers: Record<string, string> = {}) => {
    const client = await SseClient.open(`http://127.0.0.1:${plaza.port}/sse${query}`, headers);
    clients.push(client);
    return client;
  };
  /** Publishes through a stream of its own and waits for the acks. */
  const publish = async (room: string, values: unknown[]) => {
    const writer = await open(`?room=${room}`);
    await writer.next((e) => e.type === 'joined');
    await writer.post(values.map((data, i) => ({ type: 'publish', id: i + 1, room, data })));
    await writer.next((e) => e.type === 'ack' && e.id === values.length);
    writer.close();
  };
  const messages = (client: SseClient) => client.envelopes().filter((e) => e.type === 'message');

  before(async () => {
    plaza = await startPlaza({});
  });
  after(async () => {
    for (const client of clients) client.close();
    await plaza.close();
  });

  it('gets exactly the missed messages of its room, then live ones', async () => {
    const first = await open('?room=solo');
    await first.next((e) => e.type === 'joined');
    await publish('solo', [1, 2]);
    await first.until(() => messages(first).length === 2, 5000, 'two messages');
    const cursor = first.lastEventId;
    const last = messages(first)[1]!;
    assert.equal(cursor, `solo ${last.epoch}:${last.offset}`);
    first.close();
    await publish('solo', [3, 4]);
    const again = await open('?room=solo', { 'Last-Event-ID': cursor });
    const joined = await again.next((e) => e.type === 'joined');
    assert.deepEqual([joined.id, joined.recovered, dataOf(joined.messages)], ['open:solo', true, [3, 4]]);
    await publish('solo', [5]);
    await again.next((e) => e.type === 'message' && e.data === 5);
    assert.deepEqual(messages(again).map((m) => m.data), [5]);
  });

  it('resumes every room of a stream in several rooms, from the id-only line after each write', async () => {
    const first = await open('?room=multi-a&room=multi-b');
    await first.next((e) => e.type === 'joined' && e.room === 'multi-b');
    await publish('multi-a', ['a1']);
    await publish('multi-b', ['b1']);
    await first.until(() => messages(first).length === 2, 5000, 'two messages');
    // The message of multi-b named only its room; the line after it names both.
    await first.until(() => first.lastEventId.includes('multi-a') && first.lastEventId.includes('multi-b'), 5000, 'a cursor of both rooms');
    const cursor = first.lastEventId;
    assert.match(cursor, /^multi-a \S+:1 multi-b \S+:1$/);
    first.close();
    await publish('multi-a', ['a2']);
    await publish('multi-b', ['b2', 'b3']);
    const again = await open('?room=multi-a&room=multi-b', { 'Last-Event-ID': cursor });
    const b = await again.next((e) => e.type === 'joined' && e.room === 'multi-b');
    const a = again.envelopes().find((e) => e.type === 'joined' && e.room === 'multi-a')!;
    assert.deepEqual([a.recovered, dataOf(a.messages)], [true, ['a2']]);
    assert.deepEqual([b.recovered, dataOf(b.messages)], [true, ['b2', 'b3']]);
  });

  it('rejoins rooms that only Last-Event-ID names (joined by POST), and says no_position for a URL room it does not name', async () => {
    const first = await open('?room=named');
    await first.next((e) => e.type === 'joined');
    await first.post([{ type: 'join', id: 'j', room: 'posted' }]);
    await first.next((e) => e.type === 'joined' && e.id === 'j');
    await publish('posted', ['p1']);
    await first.next((e) => e.type === 'message' && e.data === 'p1');
    await first.until(() => first.lastEventId.includes('named') && first.lastEventId.includes('posted'), 5000, 'a cursor of both rooms');
    const onlyPosted = first.lastEventId.split(' ').slice(2).join(' ');
    assert.match(onlyPosted, /^posted /);
    first.close();
    await publish('posted', ['p2']);
    const again = await open('?room=named&history=5', { 'Last-Event-ID': onlyPosted });
    const posted = await again.next((e) => e.type === 'joined' && e.room === 'posted');
    const named = again.envelopes().find((e) => e.type === 'joined' && e.room === 'named')!;
    assert.deepEqual([named.recovered, named.reason], [false, 'no_position']);
    assert.deepEqual([posted.id, posted.recovered, dataOf(posted.messages)], ['open:posted', true, ['p2']]);
  });

  it('is told recovered: false when the position cannot be served, and takes ?lastEventId= too', async () => {
    await publish('gone', ['g1']);
    const stale = await open(`?room=gone&history=1&lastEventId=${encodeURIComponent('gone AAAAAAAA:1')}`);
    const joined = await stale.next((e) => e.type === 'joined');
    assert.deepEqual([joined.recovered, joined.reason, dataOf(joined.messages)], [false, 'epoch_changed', ['g1']]);
  });
});
