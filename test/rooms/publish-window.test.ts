import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PublishWindow } from '../../src/server/rooms/publish-window.js';

const ack = (offset: number, time: number, fingerprint = '') => ({ offset, epoch: 'E', time, fingerprint });

describe('PublishWindow', () => {
  it('landed() is the one way a place gets in: nothing without an id; repeatOf() counts repeats, not withdrawals', () => {
    const window = new PublishWindow({ size: 10, ttl: 60_000, maxEntries: 100 }, () => 1000);
    window.landed('r', undefined, { offset: 1, epoch: 'E', time: 1000 });
    window.landed('r', '', { offset: 2, epoch: 'E', time: 1000 });
    assert.equal(window.size, 0);
    window.landed('r', 'a.1', { offset: 3, epoch: 'E', time: 1000, fingerprint: 'fp' });
    assert.equal(window.repeatOf('r', undefined), undefined);
    assert.equal(window.repeatOf('r', 'a.2'), undefined, 'a new id');
    assert.deepEqual(window.repeatOf('r', 'a.1'), { offset: 3, epoch: 'E', time: 1000, fingerprint: 'fp', room: 'r', id: 'a.1', removed: false });
    assert.equal(window.duplicates, 1);
    assert.deepEqual(window.withdraw('r', 'a.1', 1000), window.get('r', 'a.1'), 'a published id is answered, not withdrawn');
    assert.equal(window.withdraw('r', 'a.2', 1000), undefined);
    assert.equal(window.repeatOf('r', 'a.2')?.withdrawn, true);
    assert.equal(window.duplicates, 1, 'a withdrawal is no repeat');
    window.landed('r', 'a.2', { offset: 4, epoch: 'E', time: 1000 });
    assert.equal(window.get('r', 'a.2')?.withdrawn, true, 'a withdrawn id keeps its withdrawal');
  });

  it('answers a remembered id with its first place, and keeps the first one', () => {
    const window = new PublishWindow({ size: 10, ttl: 60_000, maxEntries: 100 }, () => 1000);
    window.remember('r', 'a.1', ack(7, 1000, 'fp'));
    window.remember('r', 'a.1', ack(8, 1000));
    assert.deepEqual(window.get('r', 'a.1'), { room: 'r', id: 'a.1', offset: 7, epoch: 'E', time: 1000, fingerprint: 'fp', removed: false });
    assert.equal(window.get('other', 'a.1'), undefined, 'ids are per room');
    assert.equal(window.size, 1);
  });

  it('off with size 0: remembers nothing', () => {
    const window = new PublishWindow({ size: 0, ttl: 60_000, maxEntries: 100 });
    window.remember('r', 'a.1', ack(1, Date.now()));
    assert.equal(window.get('r', 'a.1'), undefined);
    assert.equal(window.size, 0);
  });

  describe('bounds', () => {
    it('a room keeps at most `size` ids: random ids push out only the oldest', () => {
      const window = new PublishWindow({ size: 50, ttl: 60_000, maxEntries: 1_000_000 }, () => 1000);
      for (let n = 0; n < 10_000; n++) window.remember('r', `random-${n}`, ack(n + 1, 1000));
      assert.equal(window.size, 50);
      assert.ok(window.queueLength <= 2 * 50 + 1024, `the queue holds ${window.queueLength} slots`);
      assert.equal(window.get('r', 'random-9949'), undefined);
      assert.equal(window.get('r', 'random-9950')?.offset, 9951);
    });

    it('all rooms together keep at most `maxEntries` ids, the oldest going first', () => {
      const window = new PublishWindow({ size: 1000, ttl: 60_000, maxEntries: 100 }, () => 1000);
      for (let n = 0; n < 5000; n++) window.remember(`room-${n % 37}`, `id-${n}`, ack(n + 1, 1000));
      assert.equal(window.size, 100);
      assert.equal(window.get('room-0', 'id-0'), undefined);
      assert.equal(window.get(`room-${4999 % 37}`, 'id-4999')?.offset, 5000);
    });

    it('forgets ids older than `ttl`: on read, and from the oldest end on sweep', () => {
      let now = 1000;
      const window = new PublishWindow({ size: 1000, ttl: 5000, maxEntries: 1000 }, () => now);
      for (let n = 0; n < 10; n++) window.remember('r', `old-${n}`, ack(n + 1, now));
      now += 3000;
      window.remember('r', 'young', ack(11, now));
      now += 2500;
      assert.equal(window.get('r', 'old-0'), undefined, 'past the ttl on read');
      window.sweep();
      assert.equal(window.size, 1, 'the sweep forgot the old ones');
      assert.equal(window.get('r', 'young')?.offset, 11);
      now += 5000;
      window.sweep();
      assert.equal(window.size, 0);
    });
  });
});
