import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HistoryStore, type HistoryRecord as JournalRecord, type RoomLog } from '../../src/server/rooms/history.js';

const OPTIONS = { size: 5, ttl: 60_000, maxBytes: 1024 * 1024, maxRooms: 100 };

function append(store: HistoryStore, log: RoomLog, count: number, time = Date.now()): void {
  for (let i = 0; i < count; i++) store.append(log, time, (offset, epoch) => `{"o":${offset},"e":"${epoch}"}`);
}

const offsets = (entries: { offset: number }[]) => entries.map((e) => e.offset);

describe('HistoryStore', () => {
  it('gives each message the next offset and keeps the last `size`', () => {
    const store = new HistoryStore(OPTIONS);
    const log = store.open('lobby')!;
    append(store, log, 8);
    assert.equal(log.lastOffset, 8);
    assert.deepEqual(offsets(log.entries), [4, 5, 6, 7, 8]);
    assert.equal(store.totalEntries, 5);
    assert.deepEqual(offsets(store.last(log, 2)), [7, 8]);
    assert.deepEqual(offsets(store.last(log, 50)), [4, 5, 6, 7, 8]);
  });

  it('recovers exactly what came after a position inside the window', () => {
    const store = new HistoryStore(OPTIONS);
    const log = store.open('lobby')!;
    append(store, log, 8);
    assert.deepEqual(store.since(log, { epoch: log.epoch, offset: 5 }), { recovered: true, entries: log.entries.slice(2) });
    assert.deepEqual(offsets((store.since(log, { epoch: log.epoch, offset: 3 }) as { entries: { offset: number }[] }).entries), [4, 5, 6, 7, 8]);
    assert.deepEqual(store.since(log, { epoch: log.epoch, offset: 8 }), { recovered: true, entries: [] });
  });

  it('says why recovery is impossible', () => {
    const store = new HistoryStore(OPTIONS);
    const log = store.open('lobby')!;
    append(store, log, 8);
    assert.deepEqual(store.since(log, { epoch: log.epoch, offset: 2 }), { recovered: false, reason: 'window_passed' });
    assert.deepEqual(store.since(log, { epoch: 'other', offset: 8 }), { recovered: false, reason: 'epoch_changed' });
    assert.deepEqual(store.since(log, { epoch: log.epoch, offset: 9 }), { recovered: false, reason: 'offset_ahead' });
  });

  it('drops messages past the TTL and forgets idle rooms, with a new epoch next time', () => {
    const store = new HistoryStore(OPTIONS);
    const log = store.open('quiet')!;
    const epoch = log.epoch;
    append(store, log, 3, 1_000);
    store.sweep(1_000 + OPTIONS.ttl - 1);
    assert.equal(log.entries.length, 3);
    store.sweep(1_000 + OPTIONS.ttl + 1);
    assert.equal(store.log('quiet'), undefined);
    assert.equal(store.totalEntries, 0);
    assert.equal(store.totalBytes, 0);
    assert.notEqual(store.open('quiet')!.epoch, epoch);
  });

  it('keeps a room with members even when its history has expired', () => {
    const store = new HistoryStore(OPTIONS);
    const log = store.open('busy')!;
    log.hold();
    append(store, log, 2, 0);
    store.sweep(OPTIONS.ttl * 2);
    assert.equal(store.log('busy'), log);
    assert.equal(log.entries.length, 0);
    assert.equal(log.lastOffset, 2, 'offsets never go back');
    assert.deepEqual(store.since(log, { epoch: log.epoch, offset: 1 }), { recovered: false, reason: 'window_passed' });
  });

  it('bounds total bytes across rooms by dropping the globally oldest first', () => {
    const store = new HistoryStore({ ...OPTIONS, size: 1000, maxBytes: 100 });
    const a = store.open('a')!;
    const b = store.open('b')!;
    const entry = (offset: number, epoch: string) => `{"pad":"${'x'.repeat(10)}","o":${offset},"e":"${epoch}"}`; // ~40 bytes
    store.append(a, 1, entry);
    store.append(b, 2, entry);
    store.append(a, 3, entry);
    assert.ok(store.totalBytes <= 100);
    assert.deepEqual(offsets(a.entries), [2]);
    assert.deepEqual(offsets(b.entries), [1]);
  });

  it('stays consistent over many appends across rooms (queue compaction)', () => {
    const store = new HistoryStore({ ...OPTIONS, size: 3 });
    const logs = ['a', 'b', 'c'].map((name) => store.open(name)!);
    for (let i = 0; i < 10_000; i++) append(store, logs[i % 3]!, 1, i);
    for (const log of logs) assert.equal(log.entries.length, 3);
    assert.equal(store.totalEntries, 9);
    store.sweep(10_000 + OPTIONS.ttl);
    assert.equal(store.totalEntries, 0);
    assert.equal(store.totalBytes, 0);
  });

  it('refuses new rooms past maxRooms unless idle ones can go', () => {
    const store = new HistoryStore({ ...OPTIONS, maxRooms: 2 });
    const a = store.open('a')!;
    a.hold();
    const b = store.open('b')!;
    b.hold();
    assert.equal(store.open('c'), undefined);
    b.release();
    assert.ok(store.open('c'), 'an idle room with no history makes way');
  });

  it('rebuilds rooms from journal records, restarting a room when its epoch changes', () => {
    const store = new HistoryStore(OPTIONS);
    const now = Date.now();
    const record = (room: string, epoch: string, offset: number): JournalRecord => ({ room, epoch, offset, time: now, data: `${epoch}:${offset}` });
    for (const r of [record('x', 'e1', 1), record('x', 'e1', 2), record('__proto__', 'p', 7), record('x', 'e2', 1), record('x', 'e2', 2)]) {
      store.restore(r, now);
    }
    const x = store.log('x')!;
    assert.equal(x.epoch, 'e2');
    assert.deepEqual(x.entries.map((e) => e.json), ['e2:1', 'e2:2']);
    const proto = store.log('__proto__')!;
    assert.equal(proto.lastOffset, 7);
    assert.deepEqual(store.since(proto, { epoch: 'p', offset: 6 }), { recovered: true, entries: proto.entries });
    const next = store.append(x, now, (offset, epoch) => `${epoch}:${offset}`);
    assert.equal(next, 'e2:3');
  });

  it('hands every appended record to the sink', () => {
    const records: JournalRecord[] = [];
    const store = new HistoryStore(OPTIONS, { append: (r) => records.push(r) });
    const log = store.open('room')!;
    store.append(log, 5, () => 'payload');
    assert.deepEqual(records, [{ room: 'room', epoch: log.epoch, offset: 1, time: 5, data: 'payload' }]);
  });
});

describe('HistoryStore bounds', () => {
  it('holds a million appends across a quiet and a busy room at the bound (counts, not timings)', () => {
    const size = 100;
    const store = new HistoryStore({ size, ttl: 3_600_000, maxBytes: 64 * 1024 * 1024, maxRooms: 10 });
    const quiet = store.open('quiet')!;
    const busy = store.open('busy')!;
    // The quiet room's one entry is the oldest in the store: it must not pin the busy room's.
    store.append(quiet, 0, () => 'q'.repeat(1000));
    let maxQueue = 0;
    for (let i = 1; i <= 1_000_000; i++) {
      store.append(busy, i, (offset) => `${offset}`.padEnd(1000, 'x'));
      if (store.queueLength > maxQueue) maxQueue = store.queueLength;
    }
    assert.equal(busy.lastOffset, 1_000_000);
    assert.equal(busy.length, size);
    assert.equal(quiet.length, 1);
    assert.equal(store.totalEntries, size + 1);
    assert.equal(store.totalBytes, (size + 1) * 1000);
    assert.ok(maxQueue <= 2 * store.totalEntries + 1024 + 1, `queue slots peaked at ${maxQueue}`);
    assert.ok(store.queueCapacity <= 4 * (2 * store.totalEntries + 1024 + 1), `queue capacity ${store.queueCapacity}`);
    assert.deepEqual(offsets(store.last(busy, 3)), [999_998, 999_999, 1_000_000]);
  });

  it('keeps a room of --history-size 100000 as a ring: the last entries, in order, after wrapping', () => {
    const store = new HistoryStore({ size: 100_000, ttl: 3_600_000, maxBytes: 1024 ** 3, maxRooms: 10 });
    const log = store.open('big')!;
    for (let i = 0; i < 250_000; i++) store.append(log, i, (offset) => String(offset));
    assert.equal(log.length, 100_000);
    assert.equal(log.firstOffset, 150_001);
    assert.equal(log.oldest!.offset, 150_001);
    assert.equal(log.newest!.offset, 250_000);
    const recovered = store.since(log, { epoch: log.epoch, offset: 249_990 });
    assert.ok(recovered.recovered);
    assert.deepEqual(offsets(recovered.entries), Array.from({ length: 10 }, (_, i) => 249_991 + i));
  });

  it('releases the text of entries trimmed by count at once, whatever waits in the queue', () => {
    const store = new HistoryStore({ size: 1, ttl: 3_600_000, maxBytes: 1024 ** 2, maxRooms: 10 });
    const log = store.open('r')!;
    store.append(log, 1, () => 'first');
    const first = log.oldest!;
    store.append(log, 2, () => 'second');
    assert.equal(first.removed, true);
    assert.equal(first.json, '', 'nothing of a removed entry is kept');
    assert.equal(store.totalBytes, 'second'.length);
  });

  it('keeps nothing of ephemeral rooms (the status feed), though their offsets count', () => {
    const records: JournalRecord[] = [];
    const store = new HistoryStore(OPTIONS, { append: (r) => records.push(r) });
    const log = store.open('plaza:status')!;
    log.ephemeral = true;
    append(store, log, 3);
    assert.equal(log.lastOffset, 3);
    assert.equal(log.length, 0);
    assert.equal(store.totalEntries, 0);
    assert.deepEqual(records, []);
  });
});

describe('HistoryStore at --max-rooms', () => {
  it('forgets the least recently used room nobody is in, never one with members', () => {
    const store = new HistoryStore({ ...OPTIONS, maxRooms: 3 });
    const a = store.open('a')!;
    const b = store.open('b')!;
    const c = store.open('c')!;
    append(store, b, 2);
    a.hold();
    store.open('b'); // b used again: c is now the least recently used without members
    assert.ok(store.open('d'));
    assert.equal(store.log('c'), undefined, 'c gave way');
    assert.ok(store.log('a') && store.log('b'));
    assert.equal(store.evicted, 1);
    b.hold();
    store.log('d')!.hold();
    assert.equal(store.open('e'), undefined, 'every room has members: server_full');
    void c;
  });

  it('restores a journal with more rooms than maxRooms by keeping the ones used last', () => {
    const store = new HistoryStore({ ...OPTIONS, maxRooms: 2 });
    const now = Date.now();
    for (const [room, offset] of [['x', 1], ['y', 1], ['x', 2], ['z', 1]] as const) {
      store.restore({ room, epoch: 'e', offset, time: now, data: `${room}${offset}` }, now);
    }
    assert.equal(store.roomCount, 2);
    assert.deepEqual([...store.rooms()].map((log) => log.room).sort(), ['x', 'z']);
  });
});
