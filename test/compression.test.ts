/**
 * --compress (README Options, Performance): permessage-deflate negotiated with no context takeover
 * both ways, each message compressed once and the same compressed frame written to every member
 * that took the extension, the others served plain; what clients send compressed is inflated up to
 * --max-payload (a decompression bomb closes its sender with 1009); ws's own pings and close frames
 * never break a frame. Real Plaza on port 0, real ws clients (with and without the extension) and
 * hand-made sockets that read the frames as they are on the wire.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { deflateRawSync, inflateRawSync, constants } from 'node:zlib';
import { WebSocket } from 'ws';
import { CloseCode } from '../src/shared/protocol.js';
import { connect, TestClient, withPlaza, wsUrl } from './helpers/plaza.js';
import { openRaw, type RawWebSocket } from './helpers/raw-ws.js';
import { V1Client } from './helpers/v1.js';
import { until } from './helpers/wait.mjs';

const OFFER = 'permessage-deflate; client_max_window_bits';
const inflate = (payload: Buffer) => inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: constants.Z_SYNC_FLUSH });

/** A JSON chat message of about `bytes` bytes, of ordinary words (it compresses like chat does). */
function chat(n: number, bytes: number): { user: string; text: string } {
  const words = ['see', 'you', 'at', 'the', 'meeting', 'after', 'lunch', 'bring', 'plan', 'and', 'coffee', 'please'];
  let text = `#${n} `;
  for (let i = 0; text.length < bytes - 30; i++) text += `${words[(i * 7 + n) % words.length]} `;
  return { user: `user-${n % 5}`, text };
}

/** A raw plaza.v1 member of `room` (offering the extension when `offer`), ready once joined. */
async function rawMember(port: number, room: string, offer: boolean): Promise<RawWebSocket> {
  const headers: Record<string, string> = { 'Sec-WebSocket-Protocol': 'plaza.v1' };
  if (offer) headers['Sec-WebSocket-Extensions'] = OFFER;
  const raw = await openRaw(port, { headers });
  raw.send({ opcode: 1, payload: JSON.stringify({ type: 'join', room }) });
  await until(() => raw.frames.some((f) => !f.rsv1 && f.payload.toString().startsWith('{"type":"joined"')));
  return raw;
}

/** The message envelopes a raw member received, inflated where compressed. */
const messagesOf = (raw: RawWebSocket) =>
  raw.frames
    .filter((f) => f.opcode === 1)
    .map((f) => (f.rsv1 ? inflate(f.payload) : f.payload).toString())
    .filter((text) => text.startsWith('{"type":"message"'));

describe('--compress', () => {
  it('negotiates permessage-deflate with no context takeover both ways, and only with --compress', async () => {
    await withPlaza({ compress: true }, async (plaza) => {
      const raw = await openRaw(plaza.port, { headers: { 'Sec-WebSocket-Extensions': OFFER } });
      const header = /^sec-websocket-extensions: (.*)$/im.exec(raw.responseHead)?.[1] ?? '';
      assert.match(header, /^permessage-deflate/);
      assert.match(header, /server_no_context_takeover/);
      assert.match(header, /client_no_context_takeover/);
      raw.socket.destroy();
    });
    await withPlaza({}, async (plaza) => {
      const raw = await openRaw(plaza.port, { headers: { 'Sec-WebSocket-Extensions': OFFER } });
      assert.doesNotMatch(raw.responseHead, /sec-websocket-extensions/i);
      raw.socket.destroy();
    });
  });

  it('compresses each message once: the same RSV1 frame for every member that took the extension, plain for the others', async () => {
    await withPlaza({ compress: true, compressMinBytes: 512 }, async (plaza) => {
      const [a, b, plain] = [await rawMember(plaza.port, 'r', true), await rawMember(plaza.port, 'r', true), await rawMember(plaza.port, 'r', false)];
      const publisher = await V1Client.open(wsUrl(plaza));
      await publisher.request({ type: 'join', room: 'r' });
      try {
        await publisher.request({ type: 'publish', room: 'r', data: chat(1, 1024) });
        await publisher.request({ type: 'publish', room: 'r', data: 'short' });
        for (const raw of [a, b, plain]) await until(() => messagesOf(raw).length === 2);
        const compressedA = a.frames.filter((f) => f.rsv1);
        const compressedB = b.frames.filter((f) => f.rsv1);
        assert.equal(compressedA.length, 1, 'the 1 KiB message compressed, the short one not');
        assert.deepEqual(compressedA[0]!.payload, compressedB[0]!.payload, 'byte for byte the same compressed frame');
        assert.ok(compressedA[0]!.payload.length < 700, `compressed to ${compressedA[0]!.payload.length} B`);
        assert.equal(plain.frames.filter((f) => f.rsv1).length, 0, 'a member without the extension gets no compressed frame');
        assert.deepEqual(messagesOf(a), messagesOf(plain));
        assert.deepEqual(JSON.parse(messagesOf(a)[0]!).data, chat(1, 1024));
      } finally {
        for (const raw of [a, b, plain]) raw.socket.destroy();
        publisher.client.ws.terminate();
      }
    });
  });

  it('delivers every message intact to Node ws clients with and without the extension, plain and plaza.v1', async () => {
    await withPlaza({ compress: true, rateLimit: 0 }, async (plaza) => {
      const withExtension = await connect(wsUrl(plaza), 'plaza.v1');
      const bare = new WebSocket(wsUrl(plaza), 'plaza.v1', { perMessageDeflate: false });
      await once(bare, 'open');
      const without = new TestClient(bare);
      const plainWith = await connect(wsUrl(plaza));
      const plainWithout = new TestClient(new WebSocket(wsUrl(plaza), { perMessageDeflate: false }));
      await once(plainWithout.ws, 'open');
      try {
        assert.match(withExtension.ws.extensions, /permessage-deflate/);
        assert.equal(without.ws.extensions, '');
        const v1 = [new V1Client(withExtension), new V1Client(without)];
        for (const client of v1) await client.request({ type: 'join', room: 'lobby' });
        const sent = Array.from({ length: 40 }, (_, i) => chat(i, [100, 600, 1024, 5000, 40_000][i % 5]!));
        for (const data of sent) v1[0]!.send({ type: 'publish', room: 'lobby', data });
        for (const client of v1) assert.deepEqual((await client.waitForMessages(40, 'lobby', 10_000)).map((m) => m.data), sent);
        for (const client of [plainWith, plainWithout]) {
          const texts = (await client.waitFor(40, 10_000)).map((r) => JSON.parse(r.text));
          assert.deepEqual(texts, sent);
        }
      } finally {
        for (const client of [withExtension, without, plainWith, plainWithout]) client.ws.terminate();
      }
    });
  });

  it('inflates what clients send compressed, and closes a decompression bomb with 1009 past --max-payload', async () => {
    await withPlaza({ compress: true, maxPayload: 64 * 1024 }, async (plaza) => {
      const listener = await connect(wsUrl(plaza));
      // The ws client compresses what it sends (1 KiB and more, by default): it arrives inflated.
      const sender = await connect(wsUrl(plaza));
      const bomber = await openRaw(plaza.port, { headers: { 'Sec-WebSocket-Extensions': OFFER } });
      try {
        const text = JSON.stringify(chat(7, 4000));
        sender.ws.send(text);
        assert.equal((await listener.waitFor(1))[0]!.text, text);
        // 1 MiB of zeros deflates to about 1 KiB: small on the wire, 16× --max-payload inflated.
        const bomb = deflateRawSync(Buffer.alloc(1024 * 1024), { finishFlush: constants.Z_SYNC_FLUSH });
        assert.ok(bomb.length < 2048);
        bomber.send({ opcode: 1, rsv: 4, payload: bomb.subarray(0, bomb.length - 4) });
        assert.equal(await bomber.closed, CloseCode.MessageTooBig);
        sender.ws.send('still here');
        assert.equal((await listener.waitFor(2))[1]!.text, 'still here', 'the server and everyone else carry on');
      } finally {
        for (const client of [listener, sender]) client.ws.terminate();
        bomber.socket.destroy();
      }
    });
  });

  it("never lets ws's own pings or close frame land inside one of Plaza's frames", async () => {
    // Pings every 250 ms: often enough to fall between Plaza's writes, rarely enough that a test
    // machine under load answers each in time (two unanswered ones cut the client off).
    await withPlaza({ compress: true, heartbeatMs: 250, rateLimit: 0 }, async (plaza) => {
      const receiver = await connect(wsUrl(plaza), 'plaza.v1');
      const publisher = await connect(wsUrl(plaza), 'plaza.v1');
      let pings = 0;
      receiver.ws.on('ping', () => pings++);
      const v1 = [new V1Client(receiver), new V1Client(publisher)];
      for (const client of v1) await client.request({ type: 'join', room: 'r' });
      const sent = Array.from({ length: 300 }, (_, i) => chat(i, 8000));
      // In batches over a few heartbeats, so that pings go out between Plaza's writes.
      for (let i = 0; i < sent.length; i++) {
        v1[1]!.send({ type: 'publish', room: 'r', data: sent[i] });
        if (i % 30 === 29) await new Promise((resolve) => setTimeout(resolve, 120));
      }
      assert.deepEqual((await v1[0]!.waitForMessages(300, 'r', 20_000)).map((m) => m.data), sent);
      assert.ok(pings > 0, 'pings went out meanwhile');
      publisher.ws.terminate();
      // The server's close frame after everything: ws would fail the connection (1002) on a broken frame.
      void plaza.close();
      assert.equal(await receiver.closed, CloseCode.GoingAway);
    });
  });
});
