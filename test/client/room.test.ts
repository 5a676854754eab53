/**
 * One room's bookkeeping on the client (src/client/room.ts), without sockets: delivery exactly
 * once and in order across resumes, the position, skipping our own excludeSelf messages, resets,
 * and the member list.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PlazaError } from '../../src/client/error.js';
import { createRoom, type RoomHost } from '../../src/client/room.js';
import type { Joined, RoomMessage } from '../../src/shared/protocol.js';
import { watch } from '../helpers/rooms-client.js';
import { message } from '../helpers/scripted-server.js';

describe('client room', () => {
  describe('Room bookkeeping (no sockets)', () => {
    const host: RoomHost = {
      publish: () => Promise.reject(new Error('not in these tests')),
      leave: () => {},
    };
    const joined = (fields: Partial<Joined>): Joined => ({ type: 'joined', room: 'r', epoch: 'E1', offset: 0, messages: [], ...fields });
    const live = (offset: number, epoch = 'E1') => message('r', offset, epoch) as unknown as RoomMessage;

    it('delivers in order, drops what it already delivered, and tracks the position', () => {
      const state = createRoom('r', { history: 5 }, host);
      const seen = watch(state.room);
      assert.deepEqual(state.request(), { type: 'join', room: 'r', history: 5 });
      state.joined(joined({ offset: 2, messages: [live(1), live(2)] }));
      for (const offset of [2, 1, 3, 3, 4]) state.message(live(offset));
      assert.deepEqual(seen.data, ['m1', 'm2', 'm3', 'm4']);
      assert.deepEqual(state.room.position, { epoch: 'E1', offset: 4 });
      assert.deepEqual(state.request(), { type: 'join', room: 'r', since: { epoch: 'E1', offset: 4 }, history: 5 });
      // A resumed join repeating 3 and 4 adds only 5.
      state.joined(joined({ offset: 5, recovered: true, messages: [live(3), live(4), live(5)] }));
      assert.deepEqual(seen.data, ['m1', 'm2', 'm3', 'm4', 'm5']);
      assert.deepEqual(seen.joined, [{ epoch: 'E1', offset: 2 }, { epoch: 'E1', offset: 5 }]);
      // The ack of our own excludeSelf message is stepped over once everything before it came.
      state.skip({ epoch: 'E1', offset: 7 });
      assert.deepEqual(state.room.position, { epoch: 'E1', offset: 5 }, 'an ack is not a delivery: 6 has not come yet');
      state.message(live(6));
      assert.deepEqual(state.room.position, { epoch: 'E1', offset: 7 });
      state.message(live(7));
      assert.deepEqual(seen.data, ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'], 'our own excluded message is never shown');
      state.skip({ epoch: 'E0', offset: 99 });
      assert.deepEqual(state.room.position, { epoch: 'E1', offset: 7 });
    });

    it('never lets an ack move the position past messages still on their way (cluster: acks overtake channel messages)', () => {
      const state = createRoom('r', {}, host);
      const seen = watch(state.room);
      state.joined(joined({ offset: 0 }));
      // Acks of plain publishes are not given to the room at all; only excludeSelf ones are.
      state.message(live(1));
      state.skip({ epoch: 'E1', offset: 3 });
      state.message(live(2));
      state.message(live(4));
      assert.deepEqual(seen.data, ['m1', 'm2', 'm4']);
      assert.deepEqual(state.room.position, { epoch: 'E1', offset: 4 });
      // A resume that repeats our excluded message never shows it.
      state.joined(joined({ offset: 4, recovered: true, messages: [] }));
      assert.deepEqual(seen.data, ['m1', 'm2', 'm4']);
    });

    it("emits 'reset' before the history of a failed resume, and starts over in the new epoch", () => {
      const state = createRoom('r', { since: { epoch: 'E1', offset: 40 } }, host);
      const order: string[] = [];
      state.room.on('reset', ({ reason }) => order.push(`reset ${reason}`));
      state.room.on('message', (data) => order.push(String(data)));
      state.joined(joined({ epoch: 'E2', offset: 2, recovered: false, reason: 'epoch_changed', messages: [live(1, 'E2'), live(2, 'E2')] }));
      assert.deepEqual(order, ['reset epoch_changed', 'm1', 'm2']);
      assert.deepEqual(state.room.position, { epoch: 'E2', offset: 2 });
    });

    it('keeps members from the snapshot and the deltas, one entry per session', () => {
      const state = createRoom('r', { presence: true }, host);
      const ada = { session: 'a', name: 'Ada' };
      const grace = { session: 'g', name: 'Grace' };
      state.joined(joined({ members: [ada], memberCount: 1 }));
      state.presence({ type: 'presence', room: 'r', joined: [grace], memberCount: 2 });
      state.presence({ type: 'presence', room: 'r', joined: [grace], memberCount: 2 });
      const before = state.room.members;
      assert.deepEqual(before, [ada, grace]);
      state.presence({ type: 'presence', room: 'r', left: [ada], memberCount: 1 });
      assert.deepEqual(state.room.members, [grace]);
      assert.equal(state.room.memberCount, 1);
      assert.deepEqual(before, [ada, grace], 'a list handed out is never changed afterwards');
    });

    it('asks to join with only what it has: since from options.since at first, history and presence when set', () => {
      assert.deepEqual(createRoom('r', {}, host).request(), { type: 'join', room: 'r' });
      assert.deepEqual(createRoom('r', { history: 0, presence: false }, host).request(), { type: 'join', room: 'r' });
      const saved = createRoom('r', { since: { epoch: 'E1', offset: 9 }, presence: true }, host);
      assert.deepEqual(saved.request(), { type: 'join', room: 'r', since: { epoch: 'E1', offset: 9 }, presence: true });
      assert.deepEqual(saved.room.position, { epoch: 'E1', offset: 9 });
    });

    it('hands the meta of each message to listeners, with encoding only for base64 data', () => {
      const state = createRoom('r', {}, host);
      const seen = watch(state.room);
      state.joined(joined({}));
      state.message(live(1));
      state.message({ ...live(2), encoding: 'base64', data: 'AQI=' });
      assert.deepEqual(seen.metas, [
        { sender: { session: 'peer', name: 'Peer' }, offset: 1, epoch: 'E1', time: 1_700_000_000_001, id: 'E1:1' },
        { sender: { session: 'peer', name: 'Peer' }, offset: 2, epoch: 'E1', time: 1_700_000_000_002, id: 'E1:2', encoding: 'base64' },
      ]);
      assert.equal('encoding' in seen.metas[0]!, false);
    });

    it('forgets the steps over its own messages when a reset starts a new epoch', () => {
      const state = createRoom('r', {}, host);
      const seen = watch(state.room);
      state.joined(joined({ offset: 1 }));
      state.skip({ epoch: 'E1', offset: 3 });
      state.joined(joined({ epoch: 'E2', offset: 1, recovered: false, reason: 'window_passed', messages: [live(1, 'E2')] }));
      assert.deepEqual(seen.resets, ['window_passed']);
      state.message(live(2, 'E2'));
      state.message(live(3, 'E2'));
      assert.deepEqual(seen.data, ['m1', 'm2', 'm3'], 'offset 3 of the new epoch is not our old excluded message');
      assert.deepEqual(state.room.position, { epoch: 'E2', offset: 3 });
    });

    it('remembers at most 1000 of its own excluded messages ahead of the position', () => {
      const state = createRoom('r', {}, host);
      state.joined(joined({ offset: 0 }));
      // 1500 acks of excludeSelf publishes at offsets 2…1501 before message 1 arrives.
      for (let offset = 2; offset <= 1501; offset++) state.skip({ epoch: 'E1', offset });
      state.message(live(1));
      assert.deepEqual(state.room.position, { epoch: 'E1', offset: 1001 }, 'stepped over the 1000 it kept, no further');
    });

    it('takes the member count from the snapshot, or its length when the server sent none', () => {
      const state = createRoom('r', { presence: true }, host);
      const counts: number[] = [];
      state.room.on('presence', (_members, count) => counts.push(count));
      state.joined(joined({ members: [{ session: 'a', name: 'A' }, { session: 'b', name: 'B' }] }));
      state.joined(joined({ members: [{ session: 'a', name: 'A' }], memberCount: 250 }));
      assert.deepEqual(counts, [2, 250]);
      assert.equal(state.room.memberCount, 250);
    });

    it('passes publish and leave to its host, and stops listeners that unsubscribed', async () => {
      const calls: string[] = [];
      const recording: RoomHost = {
        publish: (_state, data, options) => {
          calls.push(`publish ${JSON.stringify(data)} ${JSON.stringify(options)}`);
          return Promise.resolve({ room: 'r', offset: 1, epoch: 'E1' });
        },
        leave: () => calls.push('leave'),
      };
      const state = createRoom('r', {}, recording);
      assert.deepEqual(await state.room.publish({ a: 1 }, { excludeSelf: true }), { room: 'r', offset: 1, epoch: 'E1' });
      await state.room.publish('x');
      state.room.leave();
      assert.deepEqual(calls, ['publish {"a":1} {"excludeSelf":true}', 'publish "x" {}', 'leave']);
      const got: unknown[] = [];
      const off = state.room.on('message', (data) => got.push(data));
      state.joined(joined({}));
      state.message(live(1));
      off();
      off();
      state.message(live(2));
      assert.deepEqual(got, ['m1']);
    });

    it("fails: inactive, with the error given to 'error' listeners", () => {
      const state = createRoom('r', {}, host);
      const seen = watch(state.room);
      assert.equal(state.room.active, true);
      const refusal = new PlazaError('forbidden', 'no');
      state.fail(refusal);
      assert.equal(state.room.active, false);
      assert.deepEqual(seen.errors, [refusal]);
    });
  });
});
