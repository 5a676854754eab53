/**
 * What the server writes to its log under real traffic: JSON lines, an open and a close line per
 * connection, and never a key, a token or a message body.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { signToken } from '../src/server/access/tokens.js';
import { createLogger } from '../src/server/logger.js';
import { createPlaza } from '../src/server/plaza.js';
import { connect, wsUrl } from './helpers/plaza.js';
import { openRaw } from './helpers/raw-ws.js';
import { V1Client } from './helpers/v1.js';
import { until } from './helpers/wait.mjs';

const API_KEY = 'sk-live-API-KEY-never-logged-5e1f';
const WRONG_KEY = 'sk-wrong-GUESS-never-logged-77aa';
const AUTH_SECRET = 'auth-SECRET-never-logged-0123456789abcdef';
const SECRETS = {
  apiBody: 'card 4111-1111-1111-1111 via API',
  v1Body: 'password=hunter2 from v1',
  plainBody: 'ssn 078-05-1120 from plain',
  binary: 'BINARY-SECRET-BYTES',
  reason: 'operator-REASON-text',
};

describe('logs', () => {
  it('pair every open with a close and carry no keys, tokens or bodies', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', format: 'json', write: (line) => lines.push(line) });
    const plaza = createPlaza({ port: 0, host: '127.0.0.1', apiKey: API_KEY, authSecret: AUTH_SECRET }, { logger });
    await plaza.start();
    const token = signToken({ sub: 'user-1', rooms: '*', exp: Math.floor(Date.now() / 1000) + 600 }, AUTH_SECRET);
    const api = (path: string, body: unknown, key = API_KEY) =>
      fetch(`${plaza.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    try {
      const ada = await V1Client.open(wsUrl(plaza, `/?token=${token}&key=${API_KEY}`), 'Ada');
      const bob = await V1Client.open(wsUrl(plaza, `/?token=${token}`), 'Bob');
      const plain = await connect(wsUrl(plaza, `/?token=${token}`));
      await ada.request({ type: 'join', room: 'secret-room' });
      await bob.request({ type: 'join', room: 'secret-room' });
      await ada.request({ type: 'publish', room: 'secret-room', data: SECRETS.v1Body });
      assert.equal((await api('/api/publish', { room: 'secret-room', data: SECRETS.apiBody })).status, 200);
      assert.equal((await api('/api/publish', { room: 'secret-room', data: SECRETS.apiBody }, WRONG_KEY)).status, 401);
      await bob.waitForMessages(2, 'secret-room');
      plain.send(SECRETS.plainBody);
      plain.send(Buffer.from(SECRETS.binary));
      await plain.waitFor(2);
      bob.send(`{"type":"publish","room":"nowhere","data":"${SECRETS.v1Body}"}`);
      bob.send(`not json ${SECRETS.v1Body}`);
      await bob.waitFor((e) => e.type === 'error' && e.code === 'bad_json');
      const { session } = await bob.request({ type: 'hello' });
      assert.equal((await api('/api/disconnect', { session, reason: SECRETS.reason })).status, 200);
      await bob.client.closed;
      await Promise.all([ada.close(), plain.close()]);
      await until(() => plaza.connectionCount === 0);
    } finally {
      await plaza.close();
    }

    const entries = lines.map((line) => {
      assert.ok(line.endsWith('\n'), 'one line per entry');
      const entry = JSON.parse(line) as Record<string, unknown>;
      assert.equal(typeof entry.time, 'string');
      assert.ok(['debug', 'info', 'warn', 'error'].includes(entry.level as string));
      assert.equal(typeof entry.msg, 'string');
      return entry;
    });
    const all = lines.join('');
    for (const secret of [API_KEY, WRONG_KEY, AUTH_SECRET, token, token.split('.')[2]!, ...Object.values(SECRETS), 'hunter2']) {
      assert.ok(!all.includes(secret), `the log must not contain ${JSON.stringify(secret.slice(0, 40))}`);
    }
    assert.ok(!all.includes(Buffer.from(SECRETS.binary).toString('base64')), 'nor binary bodies in base64');

    const opens = entries.filter((e) => e.msg === 'connection open');
    const closes = entries.filter((e) => e.msg === 'connection closed');
    assert.equal(opens.length, 3);
    assert.equal(closes.length, 3);
    for (const open of opens) {
      assert.equal(open.remote, '127.0.0.1');
      const close = closes.find((c) => c.id === open.id);
      assert.ok(close, `connection ${open.id} has a close line`);
      assert.equal(typeof close.code, 'number');
      assert.equal(typeof close.ms, 'number');
      assert.equal(close.remote, '127.0.0.1', 'the close line names the remote too');
    }
    assert.deepEqual(closes.map((c) => c.code).sort(), [1005, 1005, 4001]);
    assert.deepEqual(closes.map((c) => c.by).sort(), ['client', 'client', 'server']);
    assert.ok(entries.some((e) => e.msg === 'api request' && e.route === '/api/publish' && e.status === 200));
    assert.ok(entries.some((e) => e.msg === 'refused a request without the right key' && e.surface === 'api' && e.remote === '127.0.0.1'));
  });

  it('report the close code Plaza sent and who closed first, with bytes out, in the log and the metrics', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', format: 'json', write: (line) => lines.push(line) });
    const plaza = createPlaza({ port: 0, host: '127.0.0.1', maxPayload: 1000, heartbeatMs: 0 }, { logger });
    await plaza.start();
    const closeLine = (id: string) => lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((e) => e.msg === 'connection closed' && e.id === id);
    const openIds = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((e) => e.msg === 'connection open').map((e) => e.id as string);
    /** Opens a client and returns it with the id its open line gave it. */
    async function opened<T>(open: () => Promise<T>): Promise<[T, string]> {
      const before = openIds().length;
      const client = await open();
      await until(() => openIds().length > before, 3000, 'an open line');
      return [client, openIds()[before]!];
    }
    try {
      // 1009: the peer's echo never comes (ws ends the socket), so ws itself would say 1006.
      const [big, bigId] = await opened(() => connect(wsUrl(plaza)));
      const [reader, readerId] = await opened(() => connect(wsUrl(plaza)));
      big.send('x'.repeat(900));
      await reader.waitFor(1);
      big.send('x'.repeat(1001));
      assert.equal(await big.closed, 1009);
      // 1007: a text frame that is not UTF-8.
      const [raw, rawId] = await opened(() => openRaw(plaza.port));
      raw.send({ opcode: 1, payload: Buffer.from([0xff, 0xfe]) });
      assert.equal(await raw.closed, 1007);
      // A client that closes with 1000 itself, and one whose link just ends.
      reader.ws.close(1000, 'bye');
      await reader.closed;
      const [gone, goneId] = await opened(() => connect(wsUrl(plaza)));
      (gone.ws as unknown as { _socket: { destroy(): void } })._socket.destroy();
      await until(() => [bigId, rawId, readerId, goneId].every((id) => closeLine(id)), 3000, 'four close lines');

      assert.deepEqual(
        [bigId, rawId, readerId, goneId].map((id) => ({ code: closeLine(id)!.code, by: closeLine(id)!.by })),
        [
          { code: 1009, by: 'server' },
          { code: 1007, by: 'server' },
          { code: 1000, by: 'client' },
          { code: 1006, by: 'network' },
        ],
      );
      // The reader got big's 900-byte message (and its own nothing): more than that went out to it.
      const readerOut = closeLine(readerId)!.bytesOut as number;
      assert.ok(readerOut > 900 && readerOut < 1200, `reader bytesOut ${readerOut}`);
      assert.ok((closeLine(bigId)!.bytesOut as number) > 900, 'big got its own echo');
      assert.equal(closeLine(rawId)!.bytesIn, 0, 'the refused frame never counted as a message');

      const metrics = await (await fetch(`${plaza.url}/metrics`)).text();
      for (const code of [1009, 1007, 1000, 1006]) assert.match(metrics, new RegExp(`^plaza_disconnects_total\\{code="${code}"\\} 1$`, 'm'));
    } finally {
      await plaza.close();
    }
  });
});
