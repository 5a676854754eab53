/**
 * --write-delay (README Options): frames wait up to the delay to share a write, and nothing of
 * the delivery promise changes: every member gets every message in order, and the publisher's
 * ack still comes after its own copy of the message. Real Plaza on port 0, real ws clients.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connect, withPlaza, wsUrl } from './helpers/plaza.js';
import { V1Client } from './helpers/v1.js';

describe('--write-delay', () => {
  it('delivers everything in order, and an ack never overtakes its message', async () => {
    await withPlaza({ writeDelay: 30, rateLimit: 0 }, async (plaza) => {
      const publisher = await V1Client.open(wsUrl(plaza));
      const member = await V1Client.open(wsUrl(plaza));
      const plain = await connect(wsUrl(plaza));
      try {
        for (const client of [publisher, member]) await client.request({ type: 'join', room: 'lobby' });
        const sent = Array.from({ length: 50 }, (_, i) => `message ${i}`);
        sent.forEach((data, i) => publisher.send({ type: 'publish', room: 'lobby', data, id: `p${i}` }));
        await publisher.waitFor((e) => e.type === 'ack' && e.id === 'p49', 10_000);
        // In the publisher's own stream: message i, then (at some point after it) ack p<i>.
        const stream = publisher.envelopes.filter((e) => e.type === 'message' || e.type === 'ack');
        for (let i = 0; i < sent.length; i++) {
          const message = stream.findIndex((e) => e.type === 'message' && e.data === sent[i]);
          const ack = stream.findIndex((e) => e.type === 'ack' && e.id === `p${i}`);
          assert.ok(message >= 0 && message < ack, `message ${i} at ${message}, its ack at ${ack}`);
        }
        assert.deepEqual((await member.waitForMessages(50, 'lobby', 10_000)).map((m) => m.data), sent);
        assert.deepEqual((await plain.waitFor(50, 10_000)).map((r) => r.text), sent);
      } finally {
        for (const client of [publisher.client, member.client, plain]) client.ws.terminate();
      }
    });
  });
});
