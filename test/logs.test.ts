/**
 * What the server writes to its log under real traffic: JSON lines, an open and a close line per
 * connection, and never a key, a token or a message body.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { signToken } from '../src/server/auth.js';
import { createLogger } from '../src/server/logger.js';
import { createPlaza } from '../src/server/plaza.js';
import { connect, eventually, wsUrl } from './helpers/plaza.js';
import { V1Client } from './helpers/v1.js';

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
      await eventually(() => plaza.connectionCount === 0);
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
    assert.ok(entries.some((e) => e.msg === 'api request' && e.route === '/api/publish' && e.status === 200));
    assert.ok(entries.some((e) => e.msg === 'refused a request without the right key' && e.surface === 'api' && e.remote === '127.0.0.1'));
  });
});
