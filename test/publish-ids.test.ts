/**
 * The publish-id window's bounds through a real server (issue #22): a plaza.v1 client sending
 * random ids cannot grow it past --publish-id-window per room or --publish-id-max-entries in
 * all, and /metrics shows how many ids are kept and how many repeats were answered.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startPlaza, wsUrl } from './helpers/plaza.js';
import { V1Client } from './helpers/v1.js';
import { metric } from './helpers/metrics.mjs';

describe('publish ids through a server', () => {
  it('keeps at most --publish-id-window ids per room and --publish-id-max-entries in all, whatever ids a client sends', async () => {
    const plaza = await startPlaza({ rateLimit: 0, publishIdWindow: 50, publishIdMaxEntries: 120 });
    const v1 = await V1Client.open(wsUrl(plaza), 'Mallory');
    try {
      for (const room of ['a', 'b', 'c']) await v1.request({ type: 'join', room });
      for (let n = 0; n < 600; n++) v1.send({ type: 'publish', room: ['a', 'b', 'c'][n % 3], data: n, publishId: `random-${n}-${Math.random()}` });
      await v1.waitForMessages(600, undefined, 15_000);
      assert.equal(await metric(plaza.url, 'plaza_publish_ids'), 120, 'three rooms of 50 would be 150: the total bound holds');
      const repeat = await v1.request({ type: 'publish', room: 'a', data: 'x', publishId: 'kept' });
      const again = await v1.request({ type: 'publish', room: 'a', data: 'x', publishId: 'kept' });
      assert.equal(again.duplicate, true);
      assert.equal(again.offset, repeat.offset);
      assert.equal(await metric(plaza.url, 'plaza_publish_duplicates_total'), 1);
    } finally {
      await v1.close();
      await plaza.close();
    }
  });

  it('--publish-id-window 0: every publish is new, ids or not', async () => {
    const plaza = await startPlaza({ publishIdWindow: 0 });
    const v1 = await V1Client.open(wsUrl(plaza), 'Ada');
    try {
      await v1.request({ type: 'join', room: 'a' });
      const first = await v1.request({ type: 'publish', room: 'a', data: 1, publishId: 'same' });
      const second = await v1.request({ type: 'publish', room: 'a', data: 1, publishId: 'same' });
      assert.deepEqual([first.offset, second.offset, second.duplicate], [1, 2, undefined]);
      assert.equal(await metric(plaza.url, 'plaza_publish_ids'), 0);
    } finally {
      await v1.close();
      await plaza.close();
    }
  });
});
