/**
 * The embeddable client (src/client) in Node, against a real Plaza on port 0 (`ws` supplies the
 * WebSocket). Pure parts (backoff, retry policy, options, URL) are tested without sockets.
 */
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { connect, type ClientEvents, type ClientOptions, type CloseInfo, type PlazaClient, type Status } from '../../src/client/index.js';
import { resolveOptions, resolveUrl } from '../../src/client/options.js';
import { backoffDelay, shouldReconnect } from '../../src/client/retry.js';
import type { Plaza } from '../../src/server/plaza.js';
import { connect as rawConnect, PUBLIC_DIR, startPlaza, wsUrl } from '../helpers/plaza.js';
import { sleep, until } from '../helpers/wait.mjs';

/** A Plaza client with `ws`, fast backoff, and a record of everything it emitted. */
interface Probe {
  client: PlazaClient;
  messages: Array<string | ArrayBuffer>;
  statuses: Status[];
  closes: CloseInfo[];
}

const probes = new Set<Probe>();

function probe(url: string, options: ClientOptions = {}): Probe {
  const client = connect(url, { WebSocket, minDelay: 10, maxDelay: 50, ...options });
  const p: Probe = { client, messages: [], statuses: [], closes: [] };
  client.on('message', (data) => p.messages.push(data));
  client.on('status', (status) => p.statuses.push(status));
  client.on('close', (info) => p.closes.push(info));
  probes.add(p);
  return p;
}

/** Closes every probe a test made, so no reconnect timer outlives it. */
function closeProbes(): void {
  for (const p of probes) p.client.close();
  probes.clear();
}

async function opened(p: Probe, what = 'client to open'): Promise<void> {
  await until(() => p.client.status === 'open', 5000, what);
}

function nextEvent<K extends keyof ClientEvents>(client: PlazaClient, event: K, ms = 5000): Promise<ClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${String(event)}' event within ${ms} ms`)), ms);
    const off = client.on(event, (...args) => {
      clearTimeout(timer);
      off();
      resolve(args);
    });
  });
}

const bytes = (data: string | ArrayBuffer | undefined): number[] => {
  assert.ok(data instanceof ArrayBuffer, `expected an ArrayBuffer, got ${typeof data}`);
  return [...new Uint8Array(data)];
};


describe('client', () => {
  describe('with a running Plaza', () => {
    let plaza: Plaza;
    let url: string;
    before(async () => {
      plaza = await startPlaza({ publicDir: PUBLIC_DIR });
      url = wsUrl(plaza);
    });
    after(async () => {
      closeProbes();
      await plaza.close();
    });

    it('starts connecting at once and opens', async () => {
      const a = probe(url);
      try {
        assert.equal(a.client.status, 'connecting');
        assert.equal(a.client.url, url);
        await nextEvent(a.client, 'open');
        assert.equal(a.client.status, 'open');
        assert.deepEqual(a.statuses, ['open']);
      } finally {
        closeProbes();
      }
    });

    it('sends and receives text', async () => {
      const a = probe(url);
      const b = probe(url);
      try {
        await Promise.all([opened(a), opened(b)]);
        a.client.send('hello, plaza ✓');
        await until(() => b.messages.length === 1, 3000, 'text at b');
        assert.equal(b.messages[0], 'hello, plaza ✓');
      } finally {
        closeProbes();
      }
    });

    it('sends ArrayBuffer and views as binary and receives ArrayBuffer', async () => {
      const a = probe(url);
      const b = probe(url);
      try {
        await Promise.all([opened(a), opened(b)]);
        a.client.send(new Uint8Array([0, 1, 255]).buffer);
        const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
        a.client.send(backing.subarray(2, 5));
        a.client.send(new DataView(new Uint8Array([7, 8]).buffer));
        await until(() => b.messages.length === 3, 3000, 'three binary messages');
        assert.deepEqual(b.messages.map(bytes), [[0, 1, 255], [1, 2, 3], [7, 8]]);
      } finally {
        closeProbes();
      }
    });

    it('copies bytes it queues, so the caller may reuse its buffer', async () => {
      const b = probe(url);
      try {
        await opened(b);
        const a = probe(url);
        const buffer = new Uint8Array([1, 2, 3]);
        a.client.send(buffer); // still connecting: queued
        buffer.fill(0);
        await until(() => b.messages.length === 1, 3000, 'the queued message');
        assert.deepEqual(bytes(b.messages[0]), [1, 2, 3]);
      } finally {
        closeProbes();
      }
    });

    it('talks with plain WebSocket clients both ways', async () => {
      const a = probe(url);
      const raw = await rawConnect(url);
      try {
        await opened(a);
        raw.send('from wscat');
        await until(() => a.messages.includes('from wscat'), 3000, 'raw message at client');
        a.client.send('from plaza client');
        const got = await raw.waitFor(2);
        assert.equal(got[1]!.text, 'from plaza client');
        assert.equal(got[1]!.isBinary, false);
      } finally {
        closeProbes();
        await raw.close();
      }
    });

    describe('#on', () => {
      it('returns an unsubscribe that removes only that listener and is safe to call twice', async () => {
        const a = probe(url);
        try {
          await opened(a);
          const removed: unknown[] = [];
          const kept: unknown[] = [];
          const off = a.client.on('message', (data) => removed.push(data));
          a.client.on('message', (data) => kept.push(data));
          off();
          off();
          a.client.send('after unsubscribe');
          await until(() => kept.length === 1, 3000, 'the kept listener');
          assert.deepEqual(removed, []);
          assert.deepEqual(kept, ['after unsubscribe']);
          assert.deepEqual(a.messages, ['after unsubscribe']);
        } finally {
          closeProbes();
        }
      });

      it('reports a throwing listener and keeps the other listeners and the client working', async () => {
        const reported: unknown[] = [];
        Object.defineProperty(globalThis, 'reportError', {
          value: (error: unknown) => reported.push(error),
          configurable: true,
          writable: true,
        });
        const a = probe(url);
        try {
          await opened(a);
          a.client.on('message', () => {
            throw new Error('listener bug');
          });
          const later: unknown[] = [];
          a.client.on('message', (data) => later.push(data));
          a.client.send('one');
          a.client.send('two');
          await until(() => later.length === 2, 3000, 'both messages after the throwing listener');
          assert.deepEqual(later, ['one', 'two']);
          assert.equal(reported.length, 2);
          assert.match(String(reported[0]), /listener bug/);
          assert.equal(a.client.status, 'open');
        } finally {
          closeProbes();
          delete (globalThis as { reportError?: unknown }).reportError;
        }
      });
    });

    describe('queue', () => {
      it('queues while connecting, flushes in order, and drops the oldest past maxQueue', async () => {
        const receiver = probe(url);
        try {
          await opened(receiver);
          const sender = probe(url, { maxQueue: 3 });
          for (const n of ['1', '2', '3', '4', '5']) sender.client.send(n);
          await nextEvent(sender.client, 'open');
          sender.client.send('end');
          await until(() => receiver.messages.includes('end'), 3000, "the 'end' marker");
          assert.deepEqual(receiver.messages, ['3', '4', '5', 'end']);
        } finally {
          closeProbes();
        }
      });

      it('bounds the queue in bytes too (maxQueueBytes, 1 MiB by default): the oldest go first', async () => {
        // A server that lets the receiver take the whole burst at once.
        const roomy = await startPlaza({ rateLimit: 0, maxBuffered: 16 << 20 });
        const url = wsUrl(roomy);
        const receiver = probe(url);
        try {
          await opened(receiver);
          // 30 messages of 60,000 bytes wait while connecting: 17 of them fit in 1 MiB.
          const sender = probe(url);
          for (let i = 0; i < 30; i++) sender.client.send(`${String(i).padStart(2, '0')}${'x'.repeat(59_998)}`);
          await nextEvent(sender.client, 'open');
          sender.client.send('end');
          await until(() => receiver.messages.includes('end'), 5000, "the 'end' marker");
          const big = receiver.messages.map(String).filter((text) => text.length === 60_000).map((text) => Number(text.slice(0, 2)));
          assert.deepEqual(big, Array.from({ length: 17 }, (_, i) => 13 + i));
        } finally {
          closeProbes();
          await roomy.close();
        }
      });

      it('counts the bytes of text as UTF-8', async () => {
        const receiver = probe(url);
        try {
          await opened(receiver);
          const sender = probe(url, { maxQueueBytes: 10 });
          // 'ü' takes two bytes: 'üüü' and 'bbbb' fill the 10, 'aaaa' is pushed out.
          for (const text of ['aaaa', 'üüü', 'bbbb']) sender.client.send(text);
          await nextEvent(sender.client, 'open');
          sender.client.send('end');
          await until(() => receiver.messages.includes('end'), 3000, "the 'end' marker");
          assert.deepEqual(receiver.messages, ['üüü', 'bbbb', 'end']);
        } finally {
          closeProbes();
        }
      });

      it('with maxQueue 0 drops what is sent before open', async () => {
        const receiver = probe(url);
        try {
          await opened(receiver);
          const sender = probe(url, { maxQueue: 0 });
          sender.client.send('lost');
          await opened(sender);
          sender.client.send('end');
          await until(() => receiver.messages.includes('end'), 3000, "the 'end' marker");
          assert.deepEqual(receiver.messages, ['end']);
        } finally {
          closeProbes();
        }
      });
    });
  });

  describe('reconnect', () => {
    after(closeProbes);

    it('walks the status through open, reconnecting and closed, with a close event for each', async () => {
      const plaza = await startPlaza({ publicDir: PUBLIC_DIR });
      try {
        const a = probe(wsUrl(plaza));
        await opened(a);
        await plaza.close();
        await until(() => a.client.status === 'reconnecting', 3000, 'reconnecting');
        assert.deepEqual(a.closes[0], { code: 1001, reason: 'server shutting down', willReconnect: true });
        a.client.close();
        assert.equal(a.client.status, 'closed');
        assert.deepEqual(a.statuses, ['open', 'reconnecting', 'closed']);
        assert.deepEqual(a.closes.at(-1), { code: 1000, reason: '', willReconnect: false });
      } finally {
        closeProbes();
        await plaza.close();
      }
    });

    it('flushes messages queued while offline, in order, after a restart on the same port', async () => {
      // Plain broadcast has no history, so the receiver must be back before the sender flushes.
      // The sender's WebSocket is gated: while closed, its attempts throw (a failed attempt).
      let gateOpen = true;
      class GatedWebSocket extends WebSocket {
        constructor(address: string, protocols?: string | string[]) {
          if (!gateOpen) throw new Error('gate closed by the test');
          super(address, protocols);
        }
      }
      let plaza = await startPlaza({ publicDir: PUBLIC_DIR });
      const port = plaza.port;
      const url = wsUrl(plaza);
      try {
        const sender = probe(url, { WebSocket: GatedWebSocket });
        const receiver = probe(url);
        await Promise.all([opened(sender), opened(receiver)]);

        await plaza.close();
        await until(() => sender.client.status === 'reconnecting', 3000, 'sender reconnecting');
        sender.client.send('one');
        sender.client.send(new Uint8Array([2]));
        sender.client.send('three');
        // At least one real attempt against the closed port failed…
        await until(() => sender.closes.some((c) => c.code === 1006), 3000, 'a refused attempt');
        // …then hold the sender back; once one more attempt has ended, none is in flight.
        gateOpen = false;
        const seen = sender.closes.length;
        await until(() => sender.closes.length > seen, 3000, 'the in-flight attempt to end');

        plaza = await startPlaza({ publicDir: PUBLIC_DIR, port });
        await opened(receiver, 'receiver back on the restarted server');
        const before = receiver.messages.length;
        gateOpen = true;
        await until(() => receiver.messages.length >= before + 3, 5000, 'the queued messages');
        const got = receiver.messages.slice(before);
        assert.equal(got[0], 'one');
        assert.deepEqual(bytes(got[1]), [2]);
        assert.equal(got[2], 'three');
        assert.equal(sender.client.status, 'open');
        assert.ok(sender.closes.every((c) => c.willReconnect));
      } finally {
        closeProbes();
        await plaza.close();
      }
    });

    it('close() stops reconnecting for good and is idempotent', async () => {
      let made = 0;
      class CountingWebSocket extends WebSocket {
        constructor(address: string, protocols?: string | string[]) {
          super(address, protocols);
          made++;
        }
      }
      const plaza = await startPlaza({ publicDir: PUBLIC_DIR });
      try {
        const a = probe(wsUrl(plaza), { WebSocket: CountingWebSocket, minDelay: 5, maxDelay: 20 });
        await opened(a);
        await plaza.close();
        await until(() => made >= 3, 3000, 'a few refused attempts');
        a.client.close();
        a.client.close();
        const attempts = made;
        const closes = a.closes.length;
        a.client.send('ignored after close');
        await sleep(150);
        assert.equal(made, attempts, 'no attempt after close()');
        assert.equal(a.closes.length, closes, 'a second close() emits nothing');
        assert.equal(a.closes.filter((c) => !c.willReconnect).length, 1);
        assert.equal(a.client.status, 'closed');
      } finally {
        closeProbes();
        await plaza.close();
      }
    });

    it('abandons an attempt that does not open within connectTimeout and retries', async () => {
      // A TCP listener that never answers the upgrade: the case a connect timeout exists for.
      const held = new Set<Socket>();
      const silent = createServer((socket) => held.add(socket));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const { port } = silent.address() as { port: number };
      try {
        const a = probe(`ws://127.0.0.1:${port}/`, { connectTimeout: 50, minDelay: 5, maxDelay: 10 });
        await until(() => a.closes.length >= 2, 3000, 'two timed-out attempts');
        assert.deepEqual(a.closes[0], { code: 1006, reason: 'connect timeout', willReconnect: true });
        assert.equal(a.client.status, 'reconnecting');
        assert.ok(held.size >= 2, `expected at least two attempts, saw ${held.size}`);
      } finally {
        closeProbes();
        for (const socket of held) socket.destroy();
        await new Promise((resolve) => silent.close(resolve));
      }
    });
  });

  describe('backoffDelay', () => {
    it('is zero with random() = 0 (full jitter has no floor)', () => {
      for (let attempt = 0; attempt < 10; attempt++) assert.equal(backoffDelay(attempt, 250, 10_000, () => 0), 0);
    });

    it('doubles its bound per attempt up to maxDelay', () => {
      const bounds = Array.from({ length: 9 }, (_, attempt) => backoffDelay(attempt, 250, 10_000, () => 1));
      assert.deepEqual(bounds, [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
    });

    it('scales the bound by random()', () => {
      assert.equal(backoffDelay(2, 250, 10_000, () => 0.5), 500);
      assert.equal(backoffDelay(20, 250, 10_000, () => 0.25), 2500);
    });

    it('stays finite for huge attempt counts and a zero minDelay', () => {
      assert.equal(backoffDelay(1e9, 250, 10_000, () => 1), 10_000);
      assert.equal(backoffDelay(1e9, 0, 10_000, () => 1), 0);
    });

    it('with Math.random stays within [0, bound)', () => {
      for (let i = 0; i < 1000; i++) {
        const delay = backoffDelay(3, 250, 10_000);
        assert.ok(delay >= 0 && delay < 2000, `delay ${delay}`);
      }
    });
  });

  describe('options', () => {
    it('fills defaults, keeping a default where a field is undefined', () => {
      const o = resolveOptions({ WebSocket, maxDelay: undefined });
      assert.equal(o.minDelay, 250);
      assert.equal(o.maxDelay, 10_000);
      assert.equal(o.minUptime, 5000);
      assert.equal(o.connectTimeout, 10_000);
      assert.equal(o.maxQueue, 100);
      assert.equal(o.maxQueueBytes, 1048576);
      assert.equal(o.maxInflightBytes, 1048576);
      assert.deepEqual(o.protocols, []);
      assert.equal(o.stallTimeout, 5000);
      assert.equal(o.upgradeDelay, 60_000);
      // SSE speaks plaza.v1: only the rooms client falls back to it by default.
      assert.deepEqual(o.transports, ['websocket']);
      assert.deepEqual(resolveOptions({ WebSocket, rooms: true }).transports, ['websocket', 'sse']);
      assert.deepEqual(resolveOptions({ rooms: true, transports: ['sse'] }).transports, ['sse'], 'no WebSocket class needed for SSE alone');
    });

    it('throws a TypeError that names the option to fix', () => {
      const bad: Array<[ClientOptions, RegExp]> = [
        [{ minDelay: -1 }, /options\.minDelay must be a number of milliseconds/],
        [{ maxDelay: Number.NaN }, /options\.maxDelay/],
        [{ maxDelay: Number.POSITIVE_INFINITY }, /options\.maxDelay/],
        [{ connectTimeout: '10' as never }, /options\.connectTimeout/],
        [{ minUptime: 2 ** 31 }, /options\.minUptime/],
        [{ maxQueue: 1.5 }, /options\.maxQueue must be a whole number/],
        [{ maxQueueBytes: -1 }, /options\.maxQueueBytes must be a number of bytes/],
        [{ maxInflightBytes: '1' as never }, /options\.maxInflightBytes must be a number of bytes/],
        [{ minDelay: 500, maxDelay: 100 }, /minDelay \(500\) must not exceed options\.maxDelay \(100\)/],
        [{ maxdelay: 5 } as never, /unknown option "maxdelay"/],
        [{ WebSocket: 'ws' as never }, /options\.WebSocket/],
        [{ token: '' }, /options\.token must be a non-empty string or a function/],
        [{ token: 42 as never }, /options\.token must be a non-empty string or a function/],
        [{ rooms: true, transports: ['websocket', 'polling' as never] }, /options\.transports must list 'websocket' and\/or 'sse', each once/],
        [{ rooms: true, transports: ['sse', 'sse'] }, /each once/],
        [{ rooms: true, transports: 'sse' as never }, /options\.transports must list/],
        [{ transports: ['sse'] }, /'sse' speaks plaza\.v1 only; it needs options\.rooms: true/],
        [{ rooms: true, stallTimeout: -5 }, /options\.stallTimeout must be a number of milliseconds/],
        [{ rooms: true, upgradeDelay: Number.NaN }, /options\.upgradeDelay/],
      ];
      for (const [options, message] of bad) {
        assert.throws(() => connect('ws://127.0.0.1:1/', { WebSocket, ...options }), { name: 'TypeError', message });
      }
    });

    it('asks for a WebSocket implementation where there is no global one', { skip: typeof globalThis.WebSocket === 'function' }, () => {
      assert.throws(() => connect('ws://127.0.0.1:1/'), { name: 'TypeError', message: /import \{ WebSocket \} from 'ws'/ });
    });
  });

  describe('URL', () => {
    it('defaults to the page origin with ws: or wss:', () => {
      assert.equal(resolveUrl(undefined, { href: 'http://127.0.0.1:8080/chat?x=1#top' }), 'ws://127.0.0.1:8080/');
      assert.equal(resolveUrl(undefined, { href: 'https://chat.example.com/room/7' }), 'wss://chat.example.com/');
    });

    it('converts http(s) and resolves relative URLs against the page', () => {
      assert.equal(resolveUrl('http://example.com:81/'), 'ws://example.com:81/');
      assert.equal(resolveUrl('https://example.com'), 'wss://example.com/');
      assert.equal(resolveUrl('/socket', { href: 'https://example.com/page' }), 'wss://example.com/socket');
      assert.equal(resolveUrl(new URL('wss://example.com/a#frag')), 'wss://example.com/a');
    });

    it('rejects other schemes, garbage, and a missing URL outside a browser', () => {
      assert.throws(() => connect('ftp://example.com/', { WebSocket }), {
        name: 'TypeError',
        message: 'Plaza: ftp://example.com/ is not a server address: use ws:, wss:, http: or https:, e.g. "ws://localhost:8080"',
      });
      assert.throws(() => connect('not a url', { WebSocket }), { name: 'TypeError', message: /not a valid URL/ });
      assert.throws(() => connect(undefined, { WebSocket }), { name: 'TypeError', message: /pass a URL outside a browser/ });
    });

    it('asks a page opened from disk for the server URL instead of defaulting to file:', () => {
      assert.throws(() => resolveUrl(undefined, { href: 'file:///home/ada/plaza/dist/public/index.html' }), {
        name: 'TypeError',
        message: 'Plaza: a file: page has no server of its own; pass its URL, e.g. connect("ws://localhost:8080")',
      });
      assert.throws(() => resolveUrl('/socket', { href: 'file:///tmp/index.html' }), { message: /file:\/\/\/socket is not a server address/ });
      assert.equal(resolveUrl('ws://localhost:8080', { href: 'file:///tmp/index.html' }), 'ws://localhost:8080/');
    });
  });

  describe('security', () => {
    it('does not retry close codes that mean the server refuses this client', () => {
      // 1008: Plaza closes floods and rule-breakers with it; reconnecting would resume the abuse.
      for (const code of [1002, 1003, 1007, 1008, 1010]) assert.equal(shouldReconnect(code), false, String(code));
    });

    it('retries drops, restarts, overload and server errors', () => {
      for (const code of [1000, 1001, 1005, 1006, 1009, 1011, 1012, 1013, 1014, 4000, 4001]) {
        assert.equal(shouldReconnect(code), true, String(code));
      }
    });

    it('retries a refused (4003) or expired (4004) token only when it can get a new one', () => {
      for (const code of [4003, 4004]) {
        assert.equal(shouldReconnect(code), false, String(code));
        assert.equal(shouldReconnect(code, true), true, String(code));
      }
      assert.equal(shouldReconnect(1008, true), false, 'a token function does not lift other refusals');
    });

    it('never waits longer than maxDelay, whatever random() returns', () => {
      for (const attempt of [0, 5, 50, 5000]) assert.ok(backoffDelay(attempt, 250, 1000, () => 0.999_999) < 1000);
    });
  });
});
