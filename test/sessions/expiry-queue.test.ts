/** One timer for many deadlines (token expiry): order, deletion, replacement and the bound. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExpiryQueue } from '../../src/server/sessions/expiry-queue.js';
import { until } from '../helpers/wait.mjs';

describe('ExpiryQueue', () => {
  it('calls onExpire once per item, in deadline order, not before the deadline', async () => {
    const fired: Array<{ item: number; late: number }> = [];
    const deadlines = new Map<number, number>();
    const queue = new ExpiryQueue<number>((item) => fired.push({ item, late: Date.now() - deadlines.get(item)! }));
    const start = Date.now();
    // Added out of order, some sharing a deadline.
    for (const [item, offset] of [[1, 60], [2, 20], [3, 40], [4, 20], [5, 0], [6, 80]] as const) {
      deadlines.set(item, start + offset);
      queue.add(item, start + offset);
    }
    await until(() => fired.length === 6, 3000, 'six expiries');
    assert.deepEqual(fired.map((f) => f.item).slice(0, 1), [5]);
    assert.deepEqual(new Set(fired.slice(1, 3).map((f) => f.item)), new Set([2, 4]));
    assert.deepEqual(fired.slice(3).map((f) => f.item), [3, 1, 6]);
    for (const f of fired) assert.ok(f.late >= 0, `item ${f.item} fired ${-f.late} ms early`);
    assert.equal(queue.size, 0);
  });

  it('never fires a deleted item, and add() replaces an item’s deadline', async () => {
    const fired: string[] = [];
    const queue = new ExpiryQueue<string>((item) => fired.push(item));
    const now = Date.now();
    queue.add('gone', now + 10);
    queue.add('moved', now + 10);
    queue.add('stays', now + 30);
    queue.delete('gone');
    queue.delete('never-added');
    queue.add('moved', now + 50);
    assert.equal(queue.size, 2);
    await until(() => fired.length === 2, 3000, 'two expiries');
    assert.deepEqual(fired, ['stays', 'moved']);
  });

  it('holds only live items: after any mix of adds and deletes its size is what is left', () => {
    const queue = new ExpiryQueue<number>(() => assert.fail('nothing is due'));
    const live = new Set<number>();
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const far = Date.now() + 3_600_000;
    for (let i = 0; i < 20_000; i++) {
      const item = Math.floor(random() * 500);
      if (random() < 0.5) {
        queue.add(item, far + Math.floor(random() * 1000));
        live.add(item);
      } else {
        queue.delete(item);
        live.delete(item);
      }
      assert.equal(queue.size, live.size);
    }
    for (const item of live) queue.delete(item);
    assert.equal(queue.size, 0);
    queue.clear();
  });

  it('fires the earliest of what remains after deletions from the middle of the heap', async () => {
    const fired: number[] = [];
    const queue = new ExpiryQueue<number>((item) => fired.push(item));
    const now = Date.now();
    for (let item = 0; item < 100; item++) queue.add(item, now + 5 + ((item * 37) % 100));
    for (let item = 0; item < 100; item += 3) queue.delete(item);
    await until(() => queue.size === 0, 3000, 'all expiries');
    const expected = [...Array(100).keys()].filter((item) => item % 3 !== 0).sort((a, b) => ((a * 37) % 100) - ((b * 37) % 100));
    assert.deepEqual(fired, expected);
  });

  it('clear() forgets everything and stops the timer', async () => {
    const fired: number[] = [];
    const queue = new ExpiryQueue<number>((item) => fired.push(item));
    queue.add(1, Date.now() + 10);
    queue.clear();
    await new Promise((resolve) => setTimeout(resolve, 40));
    assert.deepEqual(fired, []);
    assert.equal(queue.size, 0);
  });
});
