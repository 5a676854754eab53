/**
 * The hooks' shared state without React (src/react/connection.ts, room-entry.ts), against a real
 * Plaza on port 0 with Plaza's client over ws: holds counted so a let-go followed at once by a
 * hold keeps the join, the message bound, presence added by a later holder, and close on the
 * last let-go.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { createConnection, type Connection } from '../../src/react/connection.js';
import type { Plaza } from '../../src/server/plaza.js';
import { listening } from '../helpers/library.js';
import { until } from '../helpers/wait.mjs';

describe('Connection (the state behind the hooks)', () => {
  let plaza: Plaza;
  const joins: string[] = [];
  const leaves: string[] = [];
  before(async () => {
    plaza = await listening();
    plaza.on('join', ({ room, client }) => joins.push(`${client.name}@${room}`));
    plaza.on('leave', ({ room, client }) => leaves.push(`${client.name}@${room}`));
  });
  /** Every connection a test made, held once more here and let go in `after`, whatever failed. */
  const made: Connection[] = [];
  after(async () => {
    for (const connection of made) connection.letGo();
    await until(() => made.every((connection) => connection.status() == 'closed'), 5000, 'every connection closed');
    await plaza?.close();
  });

  const make = (name: string) => {
    const connection = createConnection({ url: plaza.url, options: { name, WebSocket } });
    connection.hold();
    made.push(connection);
    return connection;
  };
  const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

  it('keeps the latest `keep` messages, oldest first, the largest keep any holder asked for', async () => {
    const connection = make('Keeper');
    const entry = connection.holdRoom('bounded', { history: 0, presence: false, keep: 3 });
    await until(() => connection.snapshot('bounded').joined, 5000, 'joined');
    for (let i = 1; i <= 5; i++) await plaza.publish('bounded', i);
    await until(() => connection.snapshot('bounded').messages.at(-1)?.data === 5, 5000, 'the fifth message');
    assert.deepEqual(connection.snapshot('bounded').messages.map((m) => m.data), [3, 4, 5]);
    const wider = connection.holdRoom('bounded', { history: 0, presence: false, keep: 4 });
    await plaza.publish('bounded', 6);
    await until(() => connection.snapshot('bounded').messages.at(-1)?.data === 6, 5000, 'the sixth message');
    assert.deepEqual(connection.snapshot('bounded').messages.map((m) => m.data), [3, 4, 5, 6]);
    connection.letGoRoom(wider);
    connection.letGoRoom(entry);
  });

  it('joins once when a let-go is followed at once by a hold (StrictMode, a room switch back)', async () => {
    const connection = make('Twice');
    const first = connection.holdRoom('strict', { history: 0, presence: false, keep: 10 });
    connection.letGoRoom(first);
    const second = connection.holdRoom('strict', { history: 0, presence: false, keep: 10 });
    assert.equal(second, first, 'the same entry');
    await until(() => connection.snapshot('strict').joined, 5000, 'joined');
    await tick();
    assert.deepEqual(joins.filter((j) => j.startsWith('Twice@')), ['Twice@strict']);
    assert.deepEqual(leaves.filter((j) => j.startsWith('Twice@')), []);
    connection.letGoRoom(second);
    await until(() => leaves.includes('Twice@strict'), 5000, 'left after the last let-go');
    assert.equal(connection.status(), 'open', 'the connection stays while something else holds it');
  });

  it('closes the client it made a tick after the last let-go, and not before', async () => {
    const connection = createConnection({ url: plaza.url, options: { name: 'Closer', WebSocket } });
    const entry = connection.holdRoom('closing', { history: 0, presence: false, keep: 1 });
    await until(() => connection.snapshot('closing').joined, 5000, 'joined');
    connection.letGoRoom(entry);
    assert.equal(connection.status(), 'open', 'still open in the same tick (StrictMode remounts there)');
    await until(() => connection.status() == 'closed', 5000, 'closed after the last let-go');
    await until(() => leaves.includes('Closer@closing'), 5000, 'the server saw it leave');
  });

  it('joins again with presence when a later holder asks for it, repeating no message', async () => {
    const connection = make('Later');
    const plain = connection.holdRoom('grow', { history: 0, presence: false, keep: 10 });
    await until(() => connection.snapshot('grow').joined, 5000, 'joined');
    await plaza.publish('grow', 'before');
    await until(() => connection.snapshot('grow').messages.length == 1, 5000, 'a message');
    const withPresence = connection.holdRoom('grow', { history: 10, presence: true, keep: 10 });
    await until(() => connection.snapshot('grow').memberCount == 1, 5000, 'the member list');
    assert.deepEqual(connection.snapshot('grow').members.map((m) => m.name), ['Later']);
    await plaza.publish('grow', 'after');
    await until(() => connection.snapshot('grow').messages.length == 2, 5000, 'the second message');
    await tick();
    assert.deepEqual(connection.snapshot('grow').messages.map((m) => m.data), ['before', 'after']);
    connection.letGoRoom(withPresence);
    connection.letGoRoom(plain);
  });
});
