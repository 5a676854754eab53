/**
 * The delivery checker must be able to fail: each kind of broken promise, fed to it as a client
 * would have seen it, is caught, and the legitimate shapes (resets, islands, own excludeSelf
 * messages) are not.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeliveryChecker, type RoomEvent } from './helpers/delivery-checker.js';

const m = (epoch: string, offset: number, data: string): RoomEvent => ({ kind: 'message', epoch, offset, data });
const joined = (epoch: string, offset: number): RoomEvent => ({ kind: 'joined', epoch, offset });
const reset: RoomEvent = { kind: 'reset', reason: 'epoch_changed' };

function checker(views: Record<string, RoomEvent[]>, final?: { epoch: string; offset: number }): DeliveryChecker {
  const c = new DeliveryChecker();
  for (const [client, events] of Object.entries(views)) for (const e of events) c.record(client, 'r', e);
  if (final) c.final('r', final);
  return c;
}

const kinds = (c: DeliveryChecker) => c.violations().map((v) => v.kind);

describe('DeliveryChecker', () => {
  it('passes clients that saw the same messages in the same order to the end', () => {
    const c = checker({ a: [joined('E', 0), m('E', 1, 'x'), m('E', 2, 'y')], b: [joined('E', 1), m('E', 2, 'y')] }, { epoch: 'E', offset: 2 });
    assert.deepEqual(c.violations(), []);
    assert.equal(c.deliveries, 3);
  });

  it('catches a gap, a duplicate, an order inversion and a tail left behind', () => {
    assert.deepEqual(kinds(checker({ a: [joined('E', 0), m('E', 1, 'x'), m('E', 3, 'z')] })), ['gap']);
    assert.deepEqual(kinds(checker({ a: [joined('E', 0), m('E', 1, 'x'), joined('E', 0), m('E', 1, 'x')] })), ['order', 'duplicate']);
    assert.deepEqual(kinds(checker({ a: [joined('E', 0), m('E', 2, 'y'), m('E', 1, 'x')] })), ['gap', 'order']);
    assert.deepEqual(kinds(checker({ a: [joined('E', 0), m('E', 1, 'x')] }, { epoch: 'E', offset: 2 })), ['gap']);
    assert.deepEqual(kinds(checker({ a: [joined('E', 0), m('E', 1, 'x')] }, { epoch: 'F', offset: 2 })), ['tail']);
  });

  it('catches one offset reused for two messages, and an order divergence between members', () => {
    assert.deepEqual(kinds(checker({ a: [joined('E', 0), m('E', 1, 'x')], b: [joined('E', 0), m('E', 1, 'other')] })), ['reused']);
    // Two members saw x and y in different orders: some offset carries two messages.
    const diverged = kinds(checker({ a: [joined('E', 0), m('E', 1, 'x'), m('E', 2, 'y')], b: [joined('E', 0), m('E', 1, 'y'), m('E', 2, 'x')] }));
    assert.ok(diverged.includes('reused') && diverged.includes('twice'), diverged.join());
  });

  it('catches an ack that names a place another message has, and publishes landing out of order', () => {
    const c = checker({ a: [joined('E', 0), m('E', 1, 'x')] });
    c.published({ client: 'b', room: 'r', data: 'z', seq: 1, excludeSelf: false, ack: { epoch: 'E', offset: 1 } });
    assert.deepEqual(kinds(c), ['reused']);
    const d = checker({});
    d.published({ client: 'b', room: 'r', data: 'p1', seq: 1, excludeSelf: false, ack: { epoch: 'E', offset: 5 } });
    d.published({ client: 'b', room: 'r', data: 'p2', seq: 2, excludeSelf: false, ack: { epoch: 'E', offset: 4 } });
    assert.deepEqual(kinds(d), ['publisher order']);
    // A retry the server could not tell from a first try (a new epoch) lands where it can, and says so.
    const e = checker({});
    e.published({ client: 'b', room: 'r', data: 'p1', seq: 1, excludeSelf: false, ack: { epoch: 'E', offset: 5, mayRepeat: true } });
    e.published({ client: 'b', room: 'r', data: 'p2', seq: 2, excludeSelf: false, ack: { epoch: 'E', offset: 4 } });
    assert.deepEqual(kinds(e), []);
    // ...and may have a place in the epoch the room left, but only one in each.
    const f = checker({ a: [joined('O', 0), m('O', 1, 'p1'), { kind: 'reset', reason: 'epoch_changed' }, joined('E', 4), m('E', 5, 'p1')] });
    f.published({ client: 'b', room: 'r', data: 'p1', seq: 1, excludeSelf: false, ack: { epoch: 'E', offset: 5, mayRepeat: true } });
    assert.deepEqual(kinds(f), []);
    const g = checker({ a: [joined('E', 0), m('E', 1, 'p1'), m('E', 2, 'p1')] });
    g.published({ client: 'b', room: 'r', data: 'p1', seq: 1, excludeSelf: false, ack: { epoch: 'E', offset: 2, mayRepeat: true } });
    assert.ok(kinds(g).includes('twice'), kinds(g).join());
  });

  it('catches going back to an epoch left without a reset (a gap hidden behind an island)', () => {
    assert.deepEqual(kinds(checker({ a: [joined('C', 0), m('C', 1, 'x'), m('I', 2, 'i'), m('C', 5, 'y')] })), ['order']);
  });

  it('accepts a reset, an island followed by a reset, and skipping its own excludeSelf messages', () => {
    const healed = checker(
      { a: [joined('C', 0), m('C', 1, 'x'), m('I', 2, 'island'), reset, joined('D', 7), m('D', 8, 'y')] },
      { epoch: 'D', offset: 8 },
    );
    assert.deepEqual(healed.violations(), []);
    const own = checker({ a: [joined('E', 0), m('E', 1, 'x'), m('E', 3, 'z')], b: [joined('E', 0), m('E', 1, 'x'), m('E', 2, 'mine'), m('E', 3, 'z')] });
    own.published({ client: 'a', room: 'r', data: 'mine', seq: 1, excludeSelf: true, ack: { epoch: 'E', offset: 2 } });
    assert.deepEqual(own.violations(), []);
  });

  it('takes ephemeral events for no gap or step, and catches an ephemeral publish that took a place (issue #22)', () => {
    const e = (data: string): RoomEvent => ({ kind: 'ephemeral', data });
    const clean = checker({ a: [joined('E', 0), e('typing'), m('E', 1, 'x'), e('typing'), e('typing'), m('E', 2, 'y')] }, { epoch: 'E', offset: 2 });
    clean.published({ client: 'b', room: 'r', data: 'typing', seq: 1, excludeSelf: false, ephemeral: true });
    assert.deepEqual(clean.violations(), []);
    assert.equal(clean.deliveries, 2);
    const stored = checker({ a: [joined('E', 0), m('E', 1, 'typing'), m('E', 2, 'y')] });
    stored.published({ client: 'b', room: 'r', data: 'typing', seq: 1, excludeSelf: false, ephemeral: true });
    assert.deepEqual(kinds(stored), ['stored']);
  });
});
