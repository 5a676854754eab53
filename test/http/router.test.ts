/** Routing of plain HTTP: health, readiness (with a broken data dir), the status page and its feed. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Plaza } from '../../src/server/plaza.js';
import { PUBLIC_DIR, startPlaza, withPlaza, wsUrl } from '../helpers/plaza.js';
import { rawGet, sendRaw } from '../helpers/raw-http.js';
import { V1Client, type Envelope } from '../helpers/v1.js';

const KEY = 'status-key-0123456789abcdef';

async function get(plaza: Plaza, path: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${plaza.url}${path}`, { headers });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

describe('health endpoints', () => {
  it('answers /healthz and /readyz with 200 JSON while serving', async () => {
    await withPlaza({}, async (plaza) => {
      const health = await get(plaza, '/healthz');
      assert.deepEqual([health.status, JSON.parse(health.text)], [200, { status: 'ok' }]);
      assert.equal(health.headers.get('cache-control'), 'no-store');
      const ready = await get(plaza, '/readyz');
      assert.deepEqual([ready.status, JSON.parse(ready.text)], [200, { status: 'ready' }]);
      const post = await fetch(`${plaza.url}/healthz`, { method: 'POST' });
      assert.equal(post.status, 405);
      assert.equal(post.headers.get('allow'), 'GET, HEAD');
    });
  });

  it('turns /readyz to 503 with a reason while history cannot be written, and back once it can', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plaza-readyz-'));
    const squatted = ['00000001.log', '00000002.log', '00000003.log'];
    try {
      await withPlaza({ dataDir: dir, apiKey: KEY }, async (plaza) => {
        const publish = async (data: string) => {
          const response = await fetch(`${plaza.url}/api/publish`, {
            method: 'POST',
            headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
            body: JSON.stringify({ room: 'durable', data }),
          });
          assert.equal(response.status, 200, 'publishing goes on from memory whatever the disk does');
        };
        assert.equal((await get(plaza, '/readyz')).status, 200);
        // Break the disk: directories squat on the names of the segments the journal will create.
        for (const name of squatted) mkdirSync(join(dir, name));
        await publish('first');
        const broken = await get(plaza, '/readyz', { authorization: `Bearer ${KEY}` });
        assert.equal(broken.status, 503);
        const body = JSON.parse(broken.text);
        assert.equal(body.status, 'not ready');
        assert.deepEqual(body.reasons, ['data_dir_unwritable']);
        assert.match(body.details[0], /^history files in .* cannot be written: EEXIST/);
        assert.equal((await get(plaza, '/healthz')).status, 200, 'liveness is not readiness');
        assert.match((await get(plaza, '/metrics', { authorization: `Bearer ${KEY}` })).text, /^plaza_ready 0$/m);
        await publish('second');
        assert.equal((await get(plaza, '/readyz')).status, 503);

        for (const name of squatted) rmSync(join(dir, name), { recursive: true });
        await publish('healed');
        assert.equal((await get(plaza, '/readyz')).status, 200, 'ready again once a write succeeds');
        // The API wrote history before it answered, nothing held through the outage was lost.
        const files = readdirSync(dir).filter((name) => name.endsWith('.log'));
        assert.equal(files.length, 1);
        const records = readFileSync(join(dir, files[0]!), 'utf8').trim().split('\n').map((line) => JSON.parse(JSON.parse(line).data).data);
        assert.deepEqual(records, ['first', 'second', 'healed']);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('GET /status', () => {
  it('is 404 unless --status or --api-key', async () => {
    await withPlaza({ publicDir: PUBLIC_DIR }, async (plaza) => {
      for (const path of ['/status', '/status.html', `/status?key=${KEY}`]) assert.equal((await get(plaza, path)).status, 404, path);
    });
  });

  it('is served to anyone with --status, with the page CSP', async () => {
    await withPlaza({ publicDir: PUBLIC_DIR, status: true }, async (plaza) => {
      const page = await get(plaza, '/status');
      assert.equal(page.status, 200);
      assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
      assert.match(page.text, /<script src="status.js" defer><\/script>/);
      assert.equal((await get(plaza, '/status.js')).status, 200);
      assert.equal((await get(plaza, '/status.css')).status, 200);
    });
  });

  describe('with an API key', () => {
    let plaza: Plaza;
    before(async () => {
      plaza = await startPlaza({ publicDir: PUBLIC_DIR, apiKey: KEY });
    });
    after(() => plaza.close());

    it('asks for the key, under every spelling of the path', async () => {
      for (const path of ['/status', '/status.html', '/status%2Ehtml', '/status?key=wrong']) {
        const page = await get(plaza, path);
        assert.equal(page.status, 401, path);
        assert.match(page.headers.get('www-authenticate') ?? '', /^Bearer realm="plaza"/);
        assert.equal(page.headers.get('content-type'), 'text/plain; charset=utf-8');
        assert.doesNotMatch(page.text, /<html/);
      }
    });

    it('serves the page with ?key= or a Bearer header', async () => {
      assert.equal((await get(plaza, `/status?key=${encodeURIComponent(KEY)}`)).status, 200);
      assert.equal((await get(plaza, '/status', { authorization: `Bearer ${KEY}` })).status, 200);
      // The page may be embedded nowhere and leaks no referrer (the key is in its URL).
      const page = await get(plaza, `/status?key=${KEY}`);
      assert.equal(page.headers.get('referrer-policy'), 'no-referrer');
      assert.equal(page.headers.get('x-frame-options'), 'DENY');
    });
  });

  it('is 404 when no static files are served', async () => {
    await withPlaza({ status: true }, async (plaza) => {
      assert.equal((await get(plaza, '/status')).status, 404);
    });
  });
});

describe('status feed over WebSocket', () => {
  async function firstSnapshot(client: V1Client): Promise<Envelope> {
    return client.waitFor((e) => e.type === 'message' && e.room === 'plaza:status', 4000);
  }

  it('sends operators a snapshot a second in plaza:status', async () => {
    await withPlaza({ apiKey: KEY }, async (plaza) => {
      const watcher = await V1Client.open(wsUrl(plaza, `/?key=${KEY}`));
      const others = await Promise.all([1, 2].map(() => V1Client.open(wsUrl(plaza))));
      try {
        for (const other of others) await other.request({ type: 'join', room: 'watched-room' });
        const joined = await watcher.request({ type: 'join', room: 'plaza:status' });
        assert.equal(joined.type, 'joined');
        const message = await firstSnapshot(watcher);
        assert.deepEqual(message.from, { session: 'plaza', name: 'status' });
        const snapshot = message.data;
        assert.equal(snapshot.v, 1);
        assert.deepEqual(snapshot.connections, { total: 3, plain: 0, v1: 3, sse: 0 });
        assert.deepEqual(snapshot.busiest, [{ room: 'watched-room', members: 2 }]);
        assert.equal(snapshot.rooms, 1, 'watched-room; plaza:status, the watcher\'s own, is left out');
        assert.ok(snapshot.memory.rss > 0);
        const second = await watcher.waitFor((e) => e.type === 'message' && e.offset === message.offset + 1, 3000);
        assert.ok(second.data.time - snapshot.time >= 900 && second.data.time - snapshot.time <= 1500, `${second.data.time - snapshot.time} ms apart`);
      } finally {
        await Promise.all([watcher.close(), ...others.map((o) => o.close())]);
      }
    });
  });

  it('refuses plaza:status to connections without the key, and the upgrade with a wrong one', async () => {
    await withPlaza({ apiKey: KEY }, async (plaza) => {
      const client = await V1Client.open(wsUrl(plaza));
      try {
        const reply = await client.request({ type: 'join', room: 'plaza:status' });
        assert.deepEqual([reply.type, reply.code], ['error', 'forbidden']);
        assert.equal((await client.request({ type: 'join', room: 'anything-else' })).type, 'joined');
      } finally {
        await client.close();
      }
      // A wrong key is not a free yes/no answer: it is refused (and counted) at the door, a
      // plaza.v1 client with 4003 before any request is read.
      const guesser = await V1Client.open(wsUrl(plaza, '/?key=wrong'));
      guesser.send({ type: 'join', id: 1, room: 'plaza:status' });
      assert.equal(await guesser.client.closed, 4003);
      assert.deepEqual(guesser.envelopes, []);
    });
  });

  it('lets anyone watch with --status', async () => {
    await withPlaza({ status: true }, async (plaza) => {
      const client = await V1Client.open(wsUrl(plaza));
      try {
        assert.equal((await client.request({ type: 'join', room: 'plaza:status' })).type, 'joined');
        assert.equal((await firstSnapshot(client)).data.connections.total, 1);
      } finally {
        await client.close();
      }
    });
  });
});

describe('other paths', () => {
  it('answers 404 in plain text when there are no static files', async () => {
    await withPlaza({}, async (plaza) => {
      const answer = await get(plaza, '/index.html');
      assert.equal(answer.status, 404);
      assert.equal(answer.headers.get('content-type'), 'text/plain; charset=utf-8');
    });
  });

  it('hands everything else to the static files', async () => {
    await withPlaza({ publicDir: PUBLIC_DIR }, async (plaza) => {
      assert.equal((await get(plaza, '/')).status, 200);
      assert.equal((await get(plaza, '/chat.js')).status, 200);
      assert.equal((await get(plaza, '/nope')).status, 404);
    });
  });

  it('answers a target it cannot decode without crashing', async () => {
    await withPlaza({ apiKey: KEY }, async (plaza) => {
      const answer = await sendRaw(plaza.port, rawGet('/api/rooms/%E0%A4%A/presence', { Authorization: `Bearer ${KEY}` }));
      assert.equal(answer.status, 404);
      assert.equal((await get(plaza, '/healthz')).status, 200);
    });
  });
});
