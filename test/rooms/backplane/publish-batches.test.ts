/** PublishBatches: a room's publishes leave in order, one batch on its way per room, batches bounded. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_BATCH, MAX_BATCH_BYTES, PublishBatches } from '../../../src/server/rooms/backplane/publish-batches.js';

interface Sent {
  room: string;
  batch: number[];
  finish: () => void;
}

/** Batches whose sends finish only when the test says so. */
function controlled(bytes: (item: number) => number = () => 1) {
  const sent: Sent[] = [];
  const batches = new PublishBatches<number>({
    send: (room, batch) => new Promise<void>((resolve) => sent.push({ room, batch, finish: resolve })),
    bytes,
  });
  return { batches, sent };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('PublishBatches', () => {
  it('sends the first publish of an idle room at once, alone', () => {
    const { batches, sent } = controlled();
    batches.add('a', 1);
    assert.deepEqual(sent.map((s) => s.batch), [[1]]);
  });

  it('is busy for a room while something of it is on its way or waiting, and idle once all was answered', async () => {
    const { batches, sent } = controlled();
    assert.equal(batches.busy('a'), false);
    batches.add('a', 1);
    batches.add('a', 2);
    assert.equal(batches.busy('a'), true);
    assert.equal(batches.busy('b'), false);
    sent[0]!.finish();
    await tick();
    assert.equal(batches.busy('a'), true, 'the second batch is on its way');
    sent[1]!.finish();
    await tick();
    assert.equal(batches.busy('a'), false);
  });

  it('holds a room\'s next publishes until its batch on the way is answered, then sends them together, in order', async () => {
    const { batches, sent } = controlled();
    batches.add('a', 1);
    batches.add('a', 2);
    batches.add('a', 3);
    assert.equal(sent.length, 1);
    sent[0]!.finish();
    await tick();
    assert.deepEqual(sent.map((s) => s.batch), [[1], [2, 3]]);
    sent[1]!.finish();
    await tick();
    assert.equal(sent.length, 2, 'nothing left to send');
  });

  it('lets rooms go independently: one slow room holds back no other', () => {
    const { batches, sent } = controlled();
    batches.add('a', 1);
    batches.add('a', 2);
    batches.add('b', 10);
    assert.deepEqual(sent.map((s) => [s.room, s.batch]), [['a', [1]], ['b', [10]]]);
  });

  it(`cuts batches at ${MAX_BATCH} messages`, async () => {
    const { batches, sent } = controlled();
    batches.add('a', 0);
    for (let i = 1; i <= MAX_BATCH + 5; i++) batches.add('a', i);
    sent[0]!.finish();
    await tick();
    assert.equal(sent[1]!.batch.length, MAX_BATCH);
    assert.deepEqual(sent[1]!.batch.slice(0, 3), [1, 2, 3]);
    sent[1]!.finish();
    await tick();
    assert.deepEqual(sent[2]!.batch, [MAX_BATCH + 1, MAX_BATCH + 2, MAX_BATCH + 3, MAX_BATCH + 4, MAX_BATCH + 5]);
  });

  it(`cuts batches at ${MAX_BATCH_BYTES} bytes, and sends a larger single message alone`, async () => {
    const quarter = MAX_BATCH_BYTES / 4;
    const { batches, sent } = controlled((item) => (item === 99 ? MAX_BATCH_BYTES * 2 : quarter));
    batches.add('a', 0);
    for (const item of [1, 2, 3, 4, 5, 99, 6]) batches.add('a', item);
    for (let i = 0; i < 4; i++) {
      sent[i]!.finish();
      await tick();
    }
    assert.deepEqual(sent.map((s) => s.batch), [[0], [1, 2, 3, 4], [5], [99], [6]]);
  });
});
