/**
 * The one-server backplane (src/server/rooms/backplane/local.ts), the reference implementation
 * of the Backplane contract, with the real hub and history and plain objects as members: holds,
 * offsets, delivery before resolving, ephemeral rooms, presence, listings, history pages and
 * disconnects.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Hub } from '../../../src/server/engine/hub.js';
import { Metrics } from '../../../src/server/engine/metrics.js';
import { LocalBackplane, localMembers } from '../../../src/server/rooms/backplane/local.js';
import type { Draft } from '../../../src/server/rooms/backplane/types.js';
import { HistoryStore } from '../../../src/server/rooms/history.js';
import { PublishWindow } from '../../../src/server/rooms/publish-window.js';
import { createLocalNode, type Disconnectable } from '../../../src/server/rooms/local-node.js';
import { Collector } from '../../helpers/members.js';

function setup(options: { size?: number; maxRooms?: number; ephemeral?: boolean; window?: PublishWindow } = {}) {
  const metrics = new Metrics();
  const hub = new Hub();
  const history = new HistoryStore({ size: options.size ?? 10, ttl: 60_000, maxBytes: 1 << 20, maxRooms: options.maxRooms ?? 100 });
  const closed: Array<{ id: string; code: number; reason: string }> = [];
  const connections: Disconnectable[] = [
    { id: 's1', userId: 'ada', close: (code, reason) => closed.push({ id: 's1', code, reason }) },
    { id: 's2', userId: 'ada', close: (code, reason) => closed.push({ id: 's2', code, reason }) },
    { id: 's3', userId: 'grace', close: (code, reason) => closed.push({ id: 's3', code, reason }) },
  ];
  const backplane = new LocalBackplane(createLocalNode(hub, metrics, connections), history, { ephemeral: options.ephemeral ?? false }, options.window);
  return { metrics, hub, history, backplane, closed };
}

function draft(room: string, data: unknown, except?: Collector): Draft {
  return { room, roomJson: JSON.stringify(room), fromJson: '{"session":"p","name":"P"}', dataJson: JSON.stringify(data), payload: { kind: 'json', data }, time: 1_700_000_000_000, except };
}

describe('LocalBackplane', () => {
  it('is always up and counts nothing of a cluster', async () => {
    const { backplane } = setup();
    await backplane.start();
    assert.deepEqual(backplane.status, { up: true });
    assert.equal(backplane.stats, undefined);
    assert.deepEqual(backplane.publishIdCounts, { entries: 0, duplicates: 0 });
    assert.deepEqual(await backplane.presenceForJoin('r', 10), { members: [], count: 0, sessions: new Set() });
    await backplane.close();
    await backplane.close();
  });

  it('holds a room from attach to detach, and never below zero', async () => {
    const { backplane, history } = setup();
    const log = await backplane.attach('r');
    assert.equal(log, history.log('r'));
    assert.equal(log.holds, 1);
    await backplane.attach('r');
    assert.equal(log.holds, 2);
    backplane.detach('r');
    backplane.detach('r');
    backplane.detach('r');
    assert.equal(log.holds, 0);
    backplane.detach('never-attached');
  });

  it('rejects attach and publish with server_full when every room is held, holding nothing', async () => {
    const { backplane, history } = setup({ maxRooms: 1 });
    await backplane.attach('held');
    await assert.rejects(backplane.attach('other'), { name: 'BackplaneError', code: 'server_full', message: /--max-rooms/ });
    await assert.rejects(backplane.publish(draft('other', 1)), { code: 'server_full' });
    assert.equal(history.log('other'), undefined);
    assert.equal(history.roomCount, 1);
  });

  it('gives each message the next offset and hands it to the members here before resolving', async () => {
    const { backplane, hub, metrics, history } = setup();
    const [a, b, c] = ['a', 'b', 'c'].map((id) => new Collector(id));
    for (const member of [a!, b!]) hub.join(member, 'r');
    hub.join(c!, 'elsewhere');
    const first = await backplane.publish(draft('r', 'one'));
    const log = history.log('r')!;
    assert.deepEqual(first, { offset: 1, epoch: log.epoch, delivered: 2 });
    const second = await backplane.publish(draft('r', 'two', a));
    assert.deepEqual(second, { offset: 2, epoch: log.epoch, delivered: 1 });
    assert.deepEqual(a!.envelopes.map((e) => e.data), ['one']);
    assert.deepEqual(b!.envelopes.map((e) => [e.offset, e.data]), [[1, 'one'], [2, 'two']]);
    assert.deepEqual(c!.frames, []);
    assert.equal(metrics.deliveries, 3);
    // History keeps the very envelope members got live.
    assert.deepEqual(log.entries.map((entry) => entry.json), b!.texts);
  });

  it('answers a repeated publish id with the first place, publishing and delivering nothing (issue #22)', async () => {
    const window = new PublishWindow({ size: 10, ttl: 60_000, maxEntries: 100 });
    const { backplane, hub, history } = setup({ window });
    const member = new Collector('m');
    hub.join(member, 'r');
    // Now: the window forgets ids published longer than its ttl ago.
    const time = Date.now();
    const first = await backplane.publish({ ...draft('r', 'one'), time, publishId: 'c.1', fingerprint: 'fp' });
    const again = await backplane.publish({ ...draft('r', 'one, retried'), time, publishId: 'c.1' });
    const other = await backplane.publish({ ...draft('r', 'two'), time, publishId: 'c.2' });
    const log = history.log('r')!;
    assert.deepEqual(first, { offset: 1, epoch: log.epoch, delivered: 1 });
    assert.deepEqual(again, { offset: 1, epoch: log.epoch, delivered: 0, duplicate: true, fingerprint: 'fp' });
    assert.equal(other.offset, 2);
    assert.deepEqual(member.envelopes.map((e) => e.data), ['one', 'two']);
    assert.equal((await backplane.firstAck('r', 'c.2'))?.offset, 2);
    assert.equal(await backplane.firstAck('r', 'never'), undefined);
    assert.deepEqual(backplane.publishIdCounts, { entries: 2, duplicates: 1 });
  });

  it("ephemeral (the server's own rooms): counts offsets but keeps no history", async () => {
    const { backplane, history, hub } = setup({ ephemeral: true });
    const watcher = new Collector('w');
    hub.join(watcher, 'plaza:status');
    await backplane.attach('plaza:status');
    await backplane.publish(draft('plaza:status', { up: 1 }));
    const published = await backplane.publish(draft('plaza:status', { up: 2 }));
    const log = history.log('plaza:status')!;
    assert.equal(published.offset, 2);
    assert.equal(log.ephemeral, true);
    assert.equal(log.length, 0);
    assert.equal(watcher.frames.length, 2);
    // Published to before anyone attached (the status feed publishes into its room).
    await backplane.publish(draft('plaza:elsewhere', 1));
    assert.equal(history.log('plaza:elsewhere')!.length, 0);
  });

  it("tells a room's watchers who joined or left, except the member it is about", () => {
    const { backplane, hub } = setup();
    const [watcher, subject, bystander] = ['w', 's', 'b'].map((id) => new Collector(id, 'v1', id.toUpperCase()));
    const room = hub.join(bystander!, 'r');
    backplane.announce(room, 'joined', bystander!);
    assert.equal(bystander!.frames.length, 0, 'nobody watches: nothing sent');
    hub.join(watcher!, 'r', true);
    hub.join(subject!, 'r', true);
    backplane.announce(room, 'joined', subject!);
    assert.deepEqual(watcher!.envelopes, [{ type: 'presence', room: 'r', joined: [{ session: 's', name: 'S' }], memberCount: 3 }]);
    assert.deepEqual(subject!.frames, []);
    assert.deepEqual(bystander!.frames, [], 'members that do not watch are not told');
  });

  it('lists members cut at the limit with the exact count, and rooms with their positions', async () => {
    const { backplane, hub, history } = setup();
    for (const id of ['a', 'b', 'c']) hub.join(new Collector(id, 'v1', `N${id}`), 'r');
    const list = await backplane.members('r', 2);
    assert.deepEqual(list.members, [{ session: 'a', name: 'Na' }, { session: 'b', name: 'Nb' }]);
    assert.equal(list.count, 3);
    assert.deepEqual([...list.sessions].sort(), ['a', 'b', 'c']);
    assert.deepEqual(await backplane.members('nobody-here', 5), { members: [], count: 0, sessions: new Set() });
    assert.deepEqual(localMembers(undefined, 1).count, 0);
    await backplane.publish(draft('r', 1));
    await backplane.publish(draft('history-only', 1));
    assert.deepEqual(await backplane.rooms(), [{ room: 'r', members: 3, epoch: history.log('r')!.epoch, lastOffset: 1 }], 'rooms with members only');
  });

  it('pages history after an offset, and says whether anything between was trimmed away', async () => {
    const { backplane, history } = setup({ size: 3 });
    for (let n = 1; n <= 5; n++) await backplane.publish(draft('r', n));
    const epoch = history.log('r')!.epoch;
    const data = (page: { messages: string[] } | undefined) => page?.messages.map((json) => JSON.parse(json).data);
    const fromThree = await backplane.history('r', 2, 10);
    assert.deepEqual({ ...fromThree, messages: data(fromThree) }, { epoch, lastOffset: 5, complete: true, messages: [3, 4, 5] });
    assert.deepEqual(data(await backplane.history('r', 3, 1)), [4], 'at most limit messages');
    const trimmed = await backplane.history('r', 0, 10);
    assert.equal(trimmed?.complete, false, 'offsets 1 and 2 are gone');
    assert.deepEqual(data(trimmed), [3, 4, 5]);
    const ahead = await backplane.history('r', 9, 10);
    assert.equal(ahead?.complete, false, 'a position after the last offset is from another history');
    assert.deepEqual(data(ahead), []);
    const latest = await backplane.history('r', 5, 10);
    assert.equal(latest?.complete, true);
    assert.deepEqual(data(latest), []);
    assert.equal(await backplane.history('unknown', 0, 10), undefined);
  });

  it('disconnects the sessions or the user asked for with 4001, and never everyone', async () => {
    const { backplane, closed } = setup();
    assert.equal(await backplane.disconnect({ reason: 'no selector' }), 0);
    assert.equal(await backplane.disconnect({ session: 's3', reason: 'bye' }), 1);
    assert.equal(await backplane.disconnect({ user: 'ada', reason: 'all of ada' }), 2);
    assert.equal(await backplane.disconnect({ user: 'ada', session: 's3', reason: 'both must match' }), 0);
    assert.deepEqual(closed, [
      { id: 's3', code: 4001, reason: 'bye' },
      { id: 's1', code: 4001, reason: 'all of ada' },
      { id: 's2', code: 4001, reason: 'all of ada' },
    ]);
  });
});
