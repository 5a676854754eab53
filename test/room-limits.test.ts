/**
 * Room names as a resource (what a client sees, through Plaza's own client): rooms nobody is in
 * give way at --max-rooms, least recently used first, so anonymous clients publishing into many
 * rooms cannot make the server refuse live ones; and each connection creates rooms at a bounded
 * rate.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startPlaza } from './helpers/plaza.js';
import { connectBuilt, type Client } from './helpers/plaza-client.js';
import { firstJoin } from './helpers/workload.js';
import { until } from './helpers/wait.mjs';

function refusal(room: Client.Room): Promise<string> {
  return new Promise((resolve) => room.on('error', (error) => resolve(error.code)));
}

describe('rooms as a resource', () => {
  it('at --max-rooms forgets the rooms used longest ago, so new and live rooms are never refused', async () => {
    const plaza = await startPlaza({ maxRooms: 20, rateLimit: 0 });
    const url = `ws://127.0.0.1:${plaza.port}/`;
    const clients: Client.PlazaClient[] = [];
    try {
      const resident = await connectBuilt(url);
      clients.push(resident);
      const home = resident.join('home');
      await firstJoin(home);
      // Five anonymous clients publish once into 20 rooms each, then leave them: 100 rooms.
      let first: Client.Position | undefined;
      for (let c = 0; c < 5; c++) {
        const visitor = await connectBuilt(url);
        clients.push(visitor);
        for (let r = 0; r < 20; r++) {
          const room = visitor.join(`spam-${c}-${r}`);
          await firstJoin(room);
          const ack = await room.publish('x');
          first ??= { epoch: ack.epoch, offset: ack.offset - 1 };
          room.leave();
        }
      }
      // The live room kept its history; a brand-new room is not server_full.
      const late = await connectBuilt(url);
      clients.push(late);
      const fresh = late.join('fresh');
      await firstJoin(fresh);
      assert.equal((await home.publish('still here')).offset, 1);
      // The first spam room was forgotten, epoch and all: a resume there is told so.
      const returning = late.join('spam-0-0', { since: first });
      const resets: string[] = [];
      returning.on('reset', ({ reason }) => resets.push(reason));
      await firstJoin(returning);
      assert.deepEqual(resets, ['epoch_changed']);
      const metrics = await (await fetch(`${plaza.url}/metrics`)).text();
      assert.ok(Number(/^plaza_history_rooms_evicted_total (\d+)$/m.exec(metrics)![1]) >= 80);
      assert.ok(Number(/^plaza_history_rooms (\d+)$/m.exec(metrics)![1]) <= 20);
    } finally {
      for (const c of clients) c.close();
      await plaza.close();
    }
  });

  it('lets one connection create new rooms only at --room-creation-rate (burst --room-creation-burst)', async () => {
    const plaza = await startPlaza({ roomCreationRate: 1, roomCreationBurst: 5, rateLimit: 0 });
    const url = `ws://127.0.0.1:${plaza.port}/`;
    const creator = await connectBuilt(url);
    const other = await connectBuilt(url);
    try {
      const rooms = Array.from({ length: 8 }, (_, i) => creator.join(`new-${i}`));
      const outcomes = await Promise.all(rooms.map((room) => Promise.race([firstJoin(room).then(() => 'joined'), refusal(room)])));
      assert.deepEqual(outcomes, [...Array(5).fill('joined'), ...Array(3).fill('rate_limited')]);
      // Joining rooms that exist is never limited.
      const existing = await Promise.all([0, 1, 2, 3, 4].map((i) => firstJoin(other.join(`new-${i}`)).then(() => 'joined')));
      assert.deepEqual(existing, Array(5).fill('joined'));
      // The allowance comes back at the rate.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const later = creator.join('new-later');
      await firstJoin(later);
      await until(() => later.active, 1000, 'the later room joined');
    } finally {
      creator.close();
      other.close();
      await plaza.close();
    }
  });
});
