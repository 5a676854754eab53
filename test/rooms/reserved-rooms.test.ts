/**
 * The server's policy for its own rooms (src/server/rooms/reserved-rooms.ts): they are routed to
 * a history-less backplane on this node whatever the server's backplane is, and the
 * application's hooks and observer are never theirs. Real hub and history, plain members.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Hub } from '../../src/server/engine/hub.js';
import { Metrics } from '../../src/server/engine/metrics.js';
import { LocalBackplane } from '../../src/server/rooms/backplane/local.js';
import type { Draft } from '../../src/server/rooms/backplane/types.js';
import { HistoryStore } from '../../src/server/rooms/history.js';
import { createLocalNode } from '../../src/server/rooms/local-node.js';
import { applicationIn, withReservedRooms } from '../../src/server/rooms/reserved-rooms.js';
import { Collector } from '../helpers/members.js';

function draft(room: string, data: unknown): Draft {
  return { room, roomJson: JSON.stringify(room), fromJson: '{"session":"p","name":"P"}', dataJson: JSON.stringify(data), payload: { kind: 'json', data }, time: 1, except: undefined };
}

function setup() {
  const hub = new Hub();
  const history = new HistoryStore({ size: 10, ttl: 60_000, maxBytes: 1 << 20, maxRooms: 100 });
  const node = createLocalNode(hub, new Metrics(), []);
  const server = new LocalBackplane(node, history);
  const routed: string[] = [];
  // The server's backplane, watched: what reaches it is what a Redis backplane would see.
  const watched = new Proxy(server, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== 'function' || !['attach', 'publish', 'history', 'members'].includes(String(key))) return value;
      return (first: string | Draft, ...rest: unknown[]) => {
        routed.push(typeof first === 'string' ? first : first.room);
        return (value as (...args: unknown[]) => unknown).call(target, first, ...rest);
      };
    },
  });
  return { hub, history, backplane: withReservedRooms(watched, node, history), routed };
}

describe('reserved rooms policy', () => {
  it('keeps plaza: rooms away from the server backplane, history-less, and the rest with it', async () => {
    const { hub, history, backplane, routed } = setup();
    const watcher = new Collector('w');
    hub.join(watcher, 'plaza:status');
    await backplane.attach('plaza:status');
    await backplane.publish(draft('plaza:status', 1));
    await backplane.attach('team');
    await backplane.publish(draft('team', 2));
    await backplane.members('plaza:status', 10);
    await backplane.history('plaza:status', 0, 10);
    assert.deepEqual(routed, ['team', 'team']);
    assert.equal(watcher.frames.length, 1);
    assert.equal(history.log('plaza:status')!.ephemeral, true);
    assert.equal(history.log('plaza:status')!.length, 0);
    assert.equal(history.log('team')!.length, 1);
  });

  it('lists each room once, from the backplane that serves it', async () => {
    const { hub, backplane } = setup();
    hub.join(new Collector('a'), 'plaza:status');
    hub.join(new Collector('b'), 'team');
    const rooms = (await backplane.rooms()).map((summary) => summary.room).sort();
    assert.deepEqual(rooms, ['plaza:status', 'team']);
    assert.equal(backplane.stats, undefined, 'one server: no cluster gauges');
  });

  it('gives the application no part in plaza: rooms', () => {
    const app = { hooks: 'hooks', observer: 'observer' };
    assert.equal(applicationIn('team', app), app);
    assert.deepEqual(applicationIn('plaza:status', app), {});
  });
});
