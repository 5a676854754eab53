/**
 * Presence with the client's plaza.v1 mode against a real Plaza on port 0: the member list from
 * the join snapshot and the join/leave deltas, and none without `presence: true`.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Member } from '../../src/client/index.js';
import type { Plaza } from '../../src/server/plaza.js';
import { startPlaza, wsUrl } from '../helpers/plaza.js';
import { closeClients, roomsClient, watch } from '../helpers/rooms-client.js';
import { until } from '../helpers/wait.mjs';

describe('client rooms: presence', () => {
  after(closeClients);

  describe('with a running Plaza', () => {
    let plaza: Plaza;
    let url: string;

    const setup = async () => {
      plaza = await startPlaza({ rateLimit: 0 });
      url = wsUrl(plaza);
    };
    const teardown = async () => {
      closeClients();
      await plaza.close();
    };

    it('keeps the presence list from the snapshot and the deltas', async () => {
      await setup();
      try {
        const ada = roomsClient(url, { name: 'Ada' });
        const room = ada.join('team', { presence: true });
        const seen = watch(room);
        await until(() => seen.joined.length === 1, 3000, 'joined');
        assert.deepEqual(seen.presence, [{ names: ['Ada'], count: 1 }]);

        const grace = roomsClient(url, { name: 'Grace' });
        const graceRoom = grace.join('team');
        const graceSeen = watch(graceRoom);
        await until(() => room.memberCount === 2 && graceSeen.joined.length === 1, 3000, 'grace in the list');
        assert.deepEqual(room.members.map((m: Member) => m.name).sort(), ['Ada', 'Grace']);
        assert.ok(room.members.some((m) => m.session === grace.session));

        graceRoom.leave();
        graceRoom.leave();
        await until(() => room.memberCount === 1, 3000, 'grace gone');
        assert.deepEqual(room.members.map((m) => m.name), ['Ada']);
        assert.equal(graceRoom.active, false);
        assert.deepEqual(seen.presence.at(-1), { names: ['Ada'], count: 1 });
        // Without presence: true there is no list.
        assert.deepEqual(graceRoom.members, []);
      } finally {
        await teardown();
      }
    });
  });
});
