/**
 * The reconnecting socket under the client (src/client/transport.ts) with a fake WebSocket the
 * test opens, feeds and drops: one socket at a time, the handshake before the queue, the bounded
 * queue, reconnecting or stopping by close code, tokens per attempt, the connect timeout and the
 * watchdog. Timers run on node:test's mock clock where a test waits for one.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { resolveOptions, type ClientOptions } from '../../src/client/options.js';
import type { CloseInfo } from '../../src/client/socket.js';
import { createTransport, type Status, type Transport, type TransportHandler } from '../../src/client/transport.js';

import { fakeWebSocket, type FakeSocket } from '../helpers/fake-socket.js';
import { until } from '../helpers/wait.mjs';

const URL = 'ws://plaza.test/';

/** Every transport a test made, closed after it even when it fails, so no retry loop outlives it. */
const transports = new Set<Transport>();
const track = <T extends Transport>(transport: T): T => (transports.add(transport), transport);

/** A transport over fake sockets with a handler that records everything, in order. */
function setup(options: ClientOptions = {}, handshake?: (write: (data: string) => boolean) => void) {
  const { WebSocket, sockets } = fakeWebSocket();
  const log: string[] = [];
  const closes: CloseInfo[] = [];
  const statuses: Status[] = [];
  const messages: Array<string | ArrayBuffer> = [];
  let write: (data: string) => boolean = () => false;
  const handler: TransportHandler = {
    ...(handshake && { handshake: () => handshake(write) }),
    open: () => log.push('open'),
    message: (data) => messages.push(data),
    close: (info) => {
      log.push(`close ${info.code}`);
      closes.push(info);
    },
    status: (status) => {
      log.push(`status ${status}`);
      statuses.push(status);
    },
  };
  const transport = track(createTransport(URL, resolveOptions({ WebSocket, minDelay: 1, maxDelay: 1, ...options }), handler));
  write = (data) => transport.write(data);
  const socket = (i: number): FakeSocket => {
    const found = sockets[i];
    assert.ok(found, `socket ${i} was opened`);
    return found;
  };
  return { transport, sockets, socket, log, closes, statuses, messages };
}

describe('transport', { timeout: 10_000 }, () => {
  afterEach(() => {
    for (const transport of transports) transport.close();
    transports.clear();
  });

  it('connects at once with the URL and protocols, and reports open only after the handshake and the queue were written', () => {
    const t = setup({ protocols: ['chat'] }, (write) => write('handshake'));
    assert.equal(t.sockets.length, 1);
    assert.equal(t.socket(0).url, URL);
    assert.deepEqual(t.socket(0).protocols, ['chat']);
    assert.equal(t.socket(0).binaryType, 'arraybuffer');
    assert.equal(t.transport.status, 'connecting');
    t.transport.send('first');
    t.transport.send('second');
    assert.equal(t.transport.write('not queued'), false, 'write never queues');
    assert.deepEqual(t.socket(0).sent, []);
    t.socket(0).open();
    assert.deepEqual(t.socket(0).sent, ['handshake', 'first', 'second']);
    assert.equal(t.transport.status, 'open');
    assert.deepEqual(t.log, ['status open', 'open']);
    t.transport.send('live');
    assert.equal(t.socket(0).sent.at(-1), 'live');
    t.socket(0).receive('from the server');
    assert.deepEqual(t.messages, ['from the server']);
    t.transport.close();
  });

  it('keeps at most maxQueue messages while offline, dropping the oldest, and copies the bytes it keeps', () => {
    const t = setup({ maxQueue: 2 });
    const bytes = new Uint8Array([1, 2, 3]);
    t.transport.send('dropped');
    t.transport.send(bytes);
    t.transport.send('kept');
    bytes[0] = 99;
    t.socket(0).open();
    assert.equal(t.socket(0).sent.length, 2);
    assert.deepEqual([...(t.socket(0).sent[0] as Uint8Array)], [1, 2, 3], 'the caller may reuse its buffer');
    assert.equal(t.socket(0).sent[1], 'kept');
    t.transport.close();
  });

  it('keeps at most maxQueueBytes while offline (UTF-8 of text, bytes of binary), dropping the oldest', () => {
    const t = setup({ maxQueueBytes: 8 });
    t.transport.send('dropped');
    t.transport.send(new Uint8Array(3));
    t.transport.send('€€'); // 6 bytes: 9 with the 3 above, so those go too
    t.transport.send('too large alone');
    t.socket(0).open();
    assert.deepEqual(t.socket(0).sent, ['€€']);
    t.transport.close();
  });

  it('queues nothing with maxQueue 0', () => {
    const t = setup({ maxQueue: 0 });
    t.transport.send('lost');
    t.socket(0).open();
    assert.deepEqual(t.socket(0).sent, []);
    t.transport.close();
  });

  it('reconnects after a drop, with a new socket, and ignores the old one from then on', async () => {
    const t = setup();
    t.socket(0).open();
    t.socket(0).drop(1006);
    assert.equal(t.transport.status, 'reconnecting');
    assert.deepEqual(t.closes, [{ code: 1006, reason: '', willReconnect: true }]);
    assert.equal(t.socket(0).onmessage, null, 'the old socket is let go');
    t.transport.send('while reconnecting');
    await until(() => t.sockets.length === 2, 1000, 'the second attempt');
    t.socket(1).open();
    assert.deepEqual(t.socket(1).sent, ['while reconnecting']);
    assert.deepEqual(t.statuses, ['open', 'reconnecting', 'open']);
    t.transport.close();
  });

  for (const code of [1002, 1003, 1007, 1008, 1010]) {
    it(`stops for good on ${code}, which means the server will refuse this client again`, async () => {
      const t = setup();
      t.socket(0).open();
      t.socket(0).drop(code, 'go away');
      assert.equal(t.transport.status, 'closed');
      assert.deepEqual(t.closes, [{ code, reason: 'go away', willReconnect: false }]);
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(t.sockets.length, 1, 'no new attempt');
    });
  }

  it('stops on 4003 and 4004 with a string token, and retries them with a token function, calling it before every attempt', async () => {
    const fixed = setup({ token: 'abc' });
    assert.equal(fixed.socket(0).url, `${URL}?token=abc`);
    fixed.socket(0).drop(4003, 'bad token');
    assert.equal(fixed.transport.status, 'closed');

    let calls = 0;
    const fresh = setup({ token: () => `t${++calls}` });
    await until(() => fresh.sockets.length === 1, 1000, 'the first attempt');
    assert.equal(fresh.socket(0).url, `${URL}?token=t1`);
    fresh.socket(0).open();
    fresh.socket(0).drop(4004, 'token expired');
    assert.equal(fresh.transport.status, 'reconnecting');
    await until(() => fresh.sockets.length === 2, 1000, 'the second attempt');
    assert.equal(fresh.socket(1).url, `${URL}?token=t2`);
    fresh.transport.close();
  });

  it('counts a token function that fails or gives nothing as a failed attempt, and retries', async () => {
    let calls = 0;
    const t = setup({
      token: () => {
        calls++;
        if (calls === 1) throw new Error('auth server down');
        if (calls === 2) return '';
        return 'good';
      },
    });
    await until(() => t.sockets.length === 1, 1000, 'an attempt with a token');
    assert.deepEqual(
      t.closes.map((c) => [c.code, c.reason, c.willReconnect]),
      [[1006, 'options.token() failed: Error: auth server down', true], [1006, 'options.token() gave no token', true]],
    );
    assert.equal(t.socket(0).url, `${URL}?token=good`);
    t.transport.close();
  });

  it('close() closes with 1000 once, empties the queue, and makes no attempt after', async () => {
    const t = setup();
    t.socket(0).open();
    t.socket(0).drop(1006);
    t.transport.send('queued');
    t.transport.close();
    t.transport.close();
    assert.equal(t.transport.status, 'closed');
    assert.deepEqual(t.closes.map((c) => [c.code, c.willReconnect]), [[1006, true], [1000, false]]);
    t.transport.send('ignored');
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(t.sockets.length, 1, 'the pending retry was cancelled');
    const open = setup();
    open.socket(0).open();
    open.transport.close();
    assert.deepEqual(open.socket(0).closeCalls, [{ code: 1000, reason: undefined }]);
    assert.equal(open.socket(0).onclose, null);
  });

  it('stops when a close listener calls close()', async () => {
    const { WebSocket, sockets } = fakeWebSocket();
    const transport: Transport = track(createTransport(URL, resolveOptions({ WebSocket, minDelay: 1, maxDelay: 1 }), {
      open: () => {},
      message: () => {},
      close: (info) => {
        if (info.willReconnect) transport.close();
      },
      status: () => {},
    }));
    sockets[0]!.open();
    sockets[0]!.drop(1006);
    assert.equal(transport.status, 'closed');
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(sockets.length, 1, 'no attempt after the listener closed it');
  });

  it('throws a TypeError when the first socket cannot even be made, and retries later ones', async () => {
    let made = 0;
    class Refusing {
      constructor() {
        made++;
        if (made !== 3) throw new SyntaxError('blocked by CSP');
      }
    }
    assert.throws(() => createTransport(URL, resolveOptions({ WebSocket: Refusing as never }), { open() {}, message() {}, close() {}, status() {} }), {
      name: 'TypeError',
      message: /cannot open a WebSocket to ws:\/\/plaza\.test\/: blocked by CSP/,
    });
    const closes: CloseInfo[] = [];
    const { WebSocket, sockets } = fakeWebSocket();
    made = 0;
    class SecondThrows extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        made++;
        if (made === 2) throw new SyntaxError('flaky');
        super(url, protocols);
      }
    }
    const transport = track(createTransport(URL, resolveOptions({ WebSocket: SecondThrows, minDelay: 1, maxDelay: 1 }), {
      open() {},
      message() {},
      close: (info) => closes.push(info),
      status() {},
    }));
    sockets[0]!.drop(1006);
    await until(() => sockets.length === 2, 1000, 'the third attempt');
    assert.deepEqual(closes.map((c) => c.reason), ['', 'SyntaxError: flaky']);
    transport.close();
  });

  describe('timers', () => {
    it('gives up an attempt that does not open within connectTimeout, and tries again', (t) => {
      t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
      const s = setup({ connectTimeout: 500, minDelay: 10, maxDelay: 10 });
      t.mock.timers.tick(499);
      assert.deepEqual(s.closes, []);
      t.mock.timers.tick(1);
      assert.deepEqual(s.closes, [{ code: 1006, reason: 'connect timeout', willReconnect: true }]);
      assert.deepEqual(s.socket(0).closeCalls, [{ code: 1000, reason: undefined }]);
      t.mock.timers.tick(10);
      assert.equal(s.sockets.length, 2);
      s.socket(1).open();
      t.mock.timers.tick(10_000);
      assert.equal(s.closes.length, 1, 'an open socket has no connect timer');
      s.transport.close();
    });

    it('closes a socket that hears nothing for the watched silence (1006, heartbeat timeout), and not one that hears frames', (t) => {
      t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
      const s = setup({ minDelay: 10, maxDelay: 10 });
      s.socket(0).open();
      s.transport.ready(250);
      for (let i = 0; i < 10; i++) {
        t.mock.timers.tick(200);
        s.socket(0).receive('beat');
      }
      assert.deepEqual(s.closes, [], '2 s of frames 200 ms apart');
      t.mock.timers.tick(249);
      assert.deepEqual(s.closes, []);
      t.mock.timers.tick(1);
      assert.deepEqual(s.closes, [{ code: 1006, reason: 'heartbeat timeout', willReconnect: true }]);
      t.mock.timers.tick(10);
      s.socket(1).open();
      t.mock.timers.tick(250);
      assert.equal(s.closes.length, 2, 'the watch holds for the next socket too');
      s.transport.close();
    });

    it('has no watchdog with watch(0)', (t) => {
      t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
      const s = setup();
      s.socket(0).open();
      s.transport.ready(0);
      t.mock.timers.tick(3_600_000);
      assert.deepEqual(s.closes, []);
      s.transport.close();
    });
  });
});
