import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { connect as connectClient } from '../src/client/index.js';
import { createPlaza } from '../src/server/plaza.js';
import { selectProtocol } from '../src/server/websocket/ws-server.js';
import { connect, connectMany, startPlaza, wsUrl, withPlaza } from './helpers/plaza.js';
import { V1Client } from './helpers/v1.js';
import { until } from './helpers/wait.mjs';

describe('Plaza broadcast', () => {
  describe('default (sender included)', () => {
    let plaza: Awaited<ReturnType<typeof startPlaza>>;
    before(async () => {
      // Bursts of hundreds of messages are the point here, not flood control.
      plaza = await startPlaza({ rateLimit: 0 });
    });
    after(() => plaza.close());

    it('sends every message to every open socket, the sender too', async () => {
      const clients = await connectMany(wsUrl(plaza), 3);
      try {
        clients[0]!.send('hello everyone');
        for (const client of clients) {
          const [message] = await client.waitFor(1);
          assert.equal(message!.text, 'hello everyone');
          assert.equal(message!.isBinary, false);
        }
      } finally {
        await Promise.all(clients.map((c) => c.close()));
      }
    });

    it('keeps text as text and binary as binary, byte for byte', async () => {
      const [a, b] = await connectMany(wsUrl(plaza), 2);
      try {
        const binary = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 0x7f]);
        const text = 'ünïcödé ✓ 🚀 "quotes" \u0000 nul';
        a!.send(binary);
        a!.send(text);
        a!.ws.send(Buffer.alloc(200, 1)); // 16-bit length header
        await new Promise((resolve) => setTimeout(resolve, 10));
        const got = await b!.waitFor(3);
        assert.equal(got[0]!.isBinary, true);
        assert.deepEqual(got[0]!.data, binary);
        assert.equal(got[1]!.isBinary, false);
        assert.equal(got[1]!.text, text);
        assert.deepEqual(got[2]!.data, Buffer.alloc(200, 1));
      } finally {
        await Promise.all([a!.close(), b!.close()]);
      }
    });

    it('delivers messages in the order they were sent, also in bursts', async () => {
      const [a, b] = await connectMany(wsUrl(plaza), 2);
      try {
        for (let i = 0; i < 500; i++) a!.send(`m${i}`);
        const got = await b!.waitFor(500);
        assert.deepEqual(
          got.map((m) => m.text),
          Array.from({ length: 500 }, (_, i) => `m${i}`),
        );
      } finally {
        await Promise.all([a!.close(), b!.close()]);
      }
    });

    it('removes closed clients and keeps serving the others', async () => {
      const [a, b, c] = await connectMany(wsUrl(plaza), 3);
      try {
        await until(() => plaza.connectionCount === 3, 2000, '3 connections');
        await b!.close();
        c!.ws.terminate(); // a drop without a closing handshake
        await until(() => plaza.connectionCount === 1, 2000, 'dead clients to leave');
        a!.send('still here');
        const [message] = await a!.waitFor(1);
        assert.equal(message!.text, 'still here');
      } finally {
        await a!.close();
      }
    });

    it('closes a client whose message exceeds maxPayload with 1009, others unaffected', async () => {
      const small = await startPlaza({ maxPayload: 1024 });
      try {
        const [big, other] = await connectMany(wsUrl(small), 2);
        big!.send(Buffer.alloc(1025));
        assert.equal(await big!.closed, 1009);
        other!.send('fine');
        assert.equal((await other!.waitFor(1))[0]!.text, 'fine');
        await other!.close();
      } finally {
        await small.close();
      }
    });

    it('survives invalid UTF-8 in a text frame: 1007 for the sender, nothing for the rest', async () => {
      const [bad, good] = await connectMany(wsUrl(plaza), 2);
      try {
        // A text frame whose payload is not UTF-8 (0xff never appears in UTF-8).
        (bad!.ws as unknown as { _sender: { sendFrame(list: Buffer[]): void } })._sender.sendFrame([
          Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe]),
        ]);
        assert.equal(await bad!.closed, 1007);
        good!.send('alive');
        assert.equal((await good!.waitFor(1))[0]!.text, 'alive');
        assert.deepEqual(
          good!.received.map((m) => m.text),
          ['alive'],
        );
      } finally {
        await good!.close();
      }
    });

    it('refuses upgrades on other paths with 404', async () => {
      const ws = new WebSocket(wsUrl(plaza, '/elsewhere'));
      const status = await new Promise<number>((resolve) => {
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('error', () => {});
      });
      assert.equal(status, 404);
    });
  });

  describe('excludeSender', () => {
    it('does not echo to the sender but reaches everyone else', async () => {
      const plaza = await startPlaza({ excludeSender: true });
      try {
        const [a, b, c] = await connectMany(wsUrl(plaza), 3);
        a!.send('from a');
        assert.equal((await b!.waitFor(1))[0]!.text, 'from a');
        assert.equal((await c!.waitFor(1))[0]!.text, 'from a');
        await a!.expectNoMoreThan(0);
        await Promise.all([a!.close(), b!.close(), c!.close()]);
      } finally {
        await plaza.close();
      }
    });
  });

  describe('#close', () => {
    it('closes every client with 1001 and stops listening', async () => {
      const plaza = await startPlaza();
      const port = plaza.port;
      const clients = await connectMany(wsUrl(plaza), 5);
      await plaza.close();
      for (const client of clients) assert.equal(await client.closed, 1001);
      assert.equal(plaza.state, 'closed');
      const refused = await new Promise<boolean>((resolve) => {
        const socket = netConnect(port, '127.0.0.1');
        socket.on('connect', () => {
          socket.destroy();
          resolve(false);
        });
        socket.on('error', () => resolve(true));
      });
      assert.equal(refused, true);
    });

    it('does not throw if called twice', async () => {
      const plaza = await startPlaza();
      await Promise.all([plaza.close(), plaza.close()]);
      await plaza.close();
      assert.equal(plaza.state, 'closed');
    });

    it('works on a server that never started', async () => {
      const plaza = createPlaza({ port: 0 });
      await plaza.close();
      assert.equal(plaza.state, 'closed');
    });

    it('cuts off clients that never answer the close handshake within shutdownTimeout', async () => {
      const plaza = await startPlaza({ shutdownTimeout: 200 });
      const client = await connect(wsUrl(plaza));
      // Stop reading: the client never sees the close frame, so never answers it.
      (client.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      const started = Date.now();
      await plaza.close();
      assert.ok(Date.now() - started < 3000, 'close() must not wait past the timeout by much');
      assert.equal(plaza.connectionCount, 0);
      client.ws.terminate();
    });
  });

  describe('#start', () => {
    it('rejects with a clear message when the port is taken', async () => {
      const first = await startPlaza();
      try {
        const second = createPlaza({ port: first.port, host: '127.0.0.1', logLevel: 'silent' });
        await assert.rejects(second.start(), /port \d+ is already in use; choose another with --port/);
      } finally {
        await first.close();
      }
    });

    it('refuses to start twice', async () => {
      const plaza = await startPlaza();
      try {
        await assert.rejects(plaza.start(), /start\(\) called on a Plaza that is listening/);
      } finally {
        await plaza.close();
      }
    });
  });

  describe('subprotocols', () => {
    it('selects plaza.v1 when offered, else the first offered protocol that is not a plaza.* one', () => {
      assert.equal(selectProtocol(new Set(['chat', 'plaza.v1'])), 'plaza.v1');
      assert.equal(selectProtocol(new Set(['chat'])), 'chat');
      assert.equal(selectProtocol(new Set(['plaza.v2', 'chat', 'mqtt'])), 'chat');
      assert.equal(selectProtocol(new Set(['plaza.v2'])), false);
      assert.equal(selectProtocol(new Set()), false);
    });

    it('lets a client that offers only its own subprotocol connect, as a plain client', async () => {
      await withPlaza({}, async (plaza) => {
        const chat = await connect(wsUrl(plaza), 'chat');
        const both = await connect(wsUrl(plaza), ['plaza.v2', 'chat']);
        const plain = await connect(wsUrl(plaza));
        try {
          assert.equal(chat.ws.protocol, 'chat');
          assert.equal(both.ws.protocol, 'chat');
          chat.send('hello from a chat-protocol client');
          assert.equal((await plain.waitFor(1))[0]!.text, 'hello from a chat-protocol client');
          assert.equal((await both.waitFor(1))[0]!.text, 'hello from a chat-protocol client');
        } finally {
          await Promise.all([chat.close(), both.close(), plain.close()]);
        }
      });
    });

    it("opens Plaza's own client with protocols: ['chat'] instead of looping on 1006", async () => {
      await withPlaza({}, async (plaza) => {
        const client = connectClient(wsUrl(plaza), { WebSocket, protocols: ['chat'], minDelay: 10, maxDelay: 50 });
        const closes: number[] = [];
        client.on('close', ({ code }) => closes.push(code));
        try {
          await until(() => client.status === 'open', 3000, 'the client to open');
          assert.deepEqual(closes, []);
        } finally {
          client.close();
        }
      });
    });

    it('gives an unknown plaza.* protocol no answer, so that client fails instead of talking plain', async () => {
      await withPlaza({}, async (plaza) => {
        const ws = new WebSocket(wsUrl(plaza), 'plaza.v2');
        const error = await new Promise<Error>((resolve) => ws.on('error', resolve));
        assert.match(error.message, /Server sent no subprotocol/);
      });
    });
  });

  describe('welcome', () => {
    const WELCOME = 'Welcome to the plaza! Be kind.';

    it('greets a plain client with a text frame and a plaza.v1 client with a notice, outside any history', async () => {
      await withPlaza({ welcome: WELCOME }, async (plaza) => {
        const plain = await connect(wsUrl(plaza));
        const v1 = await V1Client.open(wsUrl(plaza));
        try {
          assert.deepEqual((await plain.waitFor(1)).map((m) => [m.text, m.isBinary]), [[WELCOME, false]]);
          assert.deepEqual(await v1.waitFor((e) => e.type === 'notice'), { type: 'notice', text: WELCOME });
          assert.equal(v1.envelopes[0]!.type, 'notice', 'before anything else');
          // Not a room message: a late joiner's history does not hold it.
          const joined = await v1.request({ type: 'join', room: 'lobby', history: 10 });
          assert.deepEqual(joined.messages, []);
          await plain.expectNoMoreThan(1);
        } finally {
          await Promise.all([plain.close(), v1.close()]);
        }
      });
    });

    it("reaches the client's 'notice' event in rooms mode and its 'message' event in plain mode", async () => {
      await withPlaza({ welcome: WELCOME }, async (plaza) => {
        const rooms = connectClient(wsUrl(plaza), { WebSocket, rooms: true });
        const plain = connectClient(wsUrl(plaza), { WebSocket });
        const notices: string[] = [];
        const messages: unknown[] = [];
        rooms.on('notice', (text) => notices.push(text));
        plain.on('message', (data) => messages.push(data));
        try {
          await until(() => notices.length === 1 && messages.length === 1, 3000, 'both greetings');
          assert.deepEqual([notices, messages], [[WELCOME], [WELCOME]]);
        } finally {
          rooms.close();
          plain.close();
        }
      });
    });

    it('sends nothing without --welcome', async () => {
      await withPlaza({}, async (plaza) => {
        const plain = await connect(wsUrl(plaza));
        try {
          await plain.expectNoMoreThan(0);
        } finally {
          await plain.close();
        }
      });
    });
  });
});
