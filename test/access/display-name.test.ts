/**
 * Display names as people see them: counted in grapheme clusters, capped in bytes, emoji
 * sequences intact, and nothing that could forge text in someone else's page or log.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signToken, type TokenClaims } from '../../src/server/access/tokens.js';
import { MAX_NAME_BYTES, MAX_NAME_CHARACTERS } from '../../src/server/access/display-name.js';
import type { Plaza } from '../../src/server/plaza.js';
import { startPlaza, wsUrl } from '../helpers/plaza.js';
import { V1Client } from '../helpers/v1.js';

const FAMILY = '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}'; // 👨‍👩‍👧: three emoji joined by ZWJ
const ENGLAND = '\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}'; // black flag + tag characters
const RAINBOW = '\u{1F3F3}\uFE0F\u200D\u{1F308}'; // 🏳️‍🌈

describe('display names', () => {
  let plaza: Plaza;
  let client: V1Client;
  before(async () => {
    plaza = await startPlaza();
    client = await V1Client.open(wsUrl(plaza));
  });
  after(async () => {
    await client.close();
    await plaza.close();
  });
  const hello = (name: string) => client.request({ type: 'hello', name });

  it('counts what people see: 40 emoji after a word fit in 64 characters', async () => {
    const name = `hello ${'\u{1F600}'.repeat(40)}`;
    assert.equal((await hello(name)).name, name);
    const longest = '\u{1F600}'.repeat(MAX_NAME_CHARACTERS);
    assert.equal((await hello(longest)).name, longest, '64 emoji are 64 characters');
    const tooLong = await hello('a'.repeat(MAX_NAME_CHARACTERS + 1));
    assert.equal(tooLong.code, 'bad_request');
    assert.match(tooLong.message, /1 to 64 visible characters/);
  });

  it('keeps emoji sequences whole: ZWJ families, tag flags, and what others receive matches', async () => {
    for (const name of [FAMILY, `Ada ${FAMILY}`, ENGLAND, RAINBOW, 'Zoë', 'Łukasz', '山田太郎', 'नमस्ते', 'Ирина']) {
      assert.equal((await hello(name)).name, name, name);
    }
    const listener = await V1Client.open(wsUrl(plaza));
    try {
      await listener.request({ type: 'join', room: 'names' });
      await client.request({ type: 'join', room: 'names' });
      await hello(FAMILY);
      await client.request({ type: 'publish', room: 'names', data: 'hi' });
      const message = await listener.waitFor((e) => e.type === 'message');
      assert.equal(message.from.name, FAMILY, 'not split in three');
    } finally {
      await listener.close();
    }
  });

  it('caps the bytes too: 64 family emoji are 64 characters but over 256 bytes', async () => {
    const heavy = FAMILY.repeat(MAX_NAME_CHARACTERS);
    assert.ok(Buffer.byteLength(heavy) > MAX_NAME_BYTES);
    const reply = await hello(heavy);
    assert.equal(reply.code, 'bad_request');
    assert.match(reply.message, /at most 256 bytes/);
    const zalgo = `Z${'\u0301'.repeat(300)}`;
    assert.equal((await hello(zalgo)).code, 'bad_request', 'one character stacked with 300 marks');
  });

  it('strips control characters, bidi controls and invisible format characters outside emoji', async () => {
    assert.equal((await hello('Mal\nlory\u001b[31m')).name, 'Mallory[31m');
    assert.equal((await hello('\u202Eexe.jpg')).name, 'exe.jpg', 'RIGHT-TO-LEFT OVERRIDE cannot reverse the name');
    assert.equal((await hello('Bob\u2067 says hi\u2069')).name, 'Bob says hi', 'isolates');
    assert.equal((await hello('Al\u200Bice\u00AD')).name, 'Alice', 'zero-width space and soft hyphen');
    assert.equal((await hello('Eve\u{E0041}\u{E0042}')).name, 'Eve', 'tag characters smuggling text after a letter');
    assert.equal((await hello('  \u200B\u202E  ')).code, 'bad_request', 'nothing visible is left');
  });

  it('applies the same rules to a token\'s name claim', async () => {
    const secret = 'a-test-secret-that-is-long-enough-0123456789';
    const authed = await startPlaza({ authSecret: secret });
    try {
      const sign = (name: string) => signToken({ sub: 'u1', name, exp: Math.floor(Date.now() / 1000) + 60, rooms: '*' } as TokenClaims, secret);
      const family = await V1Client.open(`${wsUrl(authed)}?token=${sign(`${'\u{1F600}'.repeat(40)} ${FAMILY}`)}`);
      assert.equal((await family.request({ type: 'hello' })).name, `${'\u{1F600}'.repeat(40)} ${FAMILY}`);
      await family.close();
      const forged = await V1Client.open(`${wsUrl(authed)}?token=${sign('\u202Enimda')}`);
      assert.equal((await forged.request({ type: 'hello' })).name, 'nimda');
      await forged.close();
    } finally {
      await authed.close();
    }
  });
});
