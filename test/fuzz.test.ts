/**
 * Seeded random garbage at the plaza.v1 parser over a real socket: every frame must get an
 * answer (or a 1008 once the error budget is spent), the server must stay up, and a
 * bystander in the same room must see nothing but what was really published.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startPlaza, wsUrl } from './helpers/plaza.js';
import { V1Client } from './helpers/v1.js';

/** mulberry32: small, fast, seedable; the seed is printed so a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FRAGMENTS = [
  '{', '}', '[', ']', '"', ':', ',', 'null', 'true', '1e999', '-0', '"type"', '"join"', '"publish"', '"leave"', '"hello"',
  '"room"', '"data"', '"since"', '"epoch"', '"offset"', '"history"', '"__proto__"', '"constructor"', '"prototype"',
  '"\\u0000"', '"\\ud800"', '"💥"', '9007199254740993', '{"type":"join","room":', '{"type":"publish","room":"f","data":',
];

function garbage(next: () => number): string {
  const pick = next();
  if (pick < 0.3) {
    // Structured-looking: right keys, wrong values.
    const types = ['join', 'leave', 'publish', 'hello', 'x', 1, null];
    const values = [1, -1, 'f', '', 'a b', [], {}, null, true, 'r'.repeat(200), { epoch: 'e', offset: -5 }];
    const message: Record<string, unknown> = { type: types[Math.floor(next() * types.length)] };
    for (const key of ['room', 'data', 'since', 'history', 'presence', 'id', 'name', 'excludeSelf']) {
      if (next() < 0.5) message[key] = values[Math.floor(next() * values.length)];
    }
    return JSON.stringify(message);
  }
  let text = '';
  const parts = 1 + Math.floor(next() * 12);
  for (let i = 0; i < parts; i++) text += FRAGMENTS[Math.floor(next() * FRAGMENTS.length)];
  return text;
}

describe('fuzz', () => {
  it('survives thousands of random frames with coded answers', async () => {
    const seed = Number(process.env.FUZZ_SEED ?? 20261121);
    const next = random(seed);
    const plaza = await startPlaza();
    try {
      const url = wsUrl(plaza);
      const bystander = await V1Client.open(url, 'bystander');
      await bystander.request({ type: 'join', room: 'f' });
      let frames = 0;
      let policyCloses = 0;
      while (frames < 3000) {
        const fuzzer = await V1Client.open(url);
        // Stay under the error budget most of the time, overrun it sometimes.
        const burst = next() < 0.2 ? 60 : 15;
        for (let i = 0; i < burst; i++, frames++) fuzzer.send(garbage(next));
        const hello = burst < 20 ? await fuzzer.request({ type: 'hello' }).catch(() => undefined) : undefined;
        if (hello) {
          assert.equal(hello.type, 'welcome', `seed ${seed}: connection unusable after garbage`);
          for (const e of fuzzer.envelopes) {
            assert.ok(['error', 'welcome', 'joined', 'ack', 'left', 'message', 'presence'].includes(e.type), `seed ${seed}: odd reply ${JSON.stringify(e)}`);
            if (e.type === 'error') assert.match(e.code, /^[a-z_]+$/);
          }
          await fuzzer.close();
        } else {
          const code = await fuzzer.client.closed;
          assert.equal(code, 1008, `seed ${seed}: expected a policy close`);
          policyCloses++;
        }
      }
      assert.ok(policyCloses > 0, 'the error budget was exercised');
      // The bystander saw only well-formed messages, and the server still serves.
      for (const m of bystander.messages('f')) assert.equal(m.room, 'f');
      const ack = await bystander.request({ type: 'publish', room: 'f', data: 'still up' });
      assert.equal(ack.type, 'ack');
      await bystander.close();
    } finally {
      await plaza.close();
    }
  });
});
