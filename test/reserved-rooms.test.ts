/**
 * The server's own rooms (`plaza:…`) skip the application's hooks, so no client may use them:
 * through Plaza's own client against a library host whose onJoin and onPublish refuse
 * everything, in each mode (one node, --data-dir, a Redis cluster). Only the status feed may be
 * joined, with the API key or --status, and even then nobody but the server publishes there.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { reject } from '../src/server/hooks/types.js';
import type { Plaza, PlazaConfig } from '../src/server/plaza.js';
import { ConfigError, resolveOptions } from '../src/server/config.js';
import { REDIS_URL, skipWithoutRedis } from './helpers/cluster.js';
import { joined, listening, rejection, roomsClient } from './helpers/library.js';
import { wsUrl } from './helpers/plaza.js';
import { until } from './helpers/wait.mjs';

const open: Array<{ close(): unknown }> = [];
function track<T extends { close(): unknown }>(thing: T): T {
  open.push(thing);
  return thing;
}
after(async () => {
  for (const thing of open.reverse()) await thing.close();
});

const API_KEY = 'reserved-rooms-test-key';

/** A host whose hooks refuse everything: every room a client reaches must go through them. */
function refusingHost(config: PlazaConfig, asked: string[]): Promise<Plaza> {
  return listening({
    apiKey: API_KEY,
    ...config,
    onJoin: ({ room }) => {
      asked.push(`join ${room}`);
      return reject('closed_room', 'nobody joins here');
    },
    onPublish: ({ room }) => {
      asked.push(`publish ${room}`);
      return reject('moderated', 'nobody speaks here');
    },
  });
}

const modes: Array<{ name: string; config: () => Promise<PlazaConfig>; skip?: string | false }> = [
  { name: 'one node', config: async () => ({}) },
  {
    name: '--data-dir',
    config: async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'plaza-reserved-'));
      open.push({ close: () => rm(dataDir, { recursive: true, force: true }) });
      return { dataDir };
    },
  },
  { name: 'Redis', config: async () => ({ redis: REDIS_URL }), skip: skipWithoutRedis() },
];

for (const mode of modes) {
  describe(`reserved rooms (${mode.name})`, { skip: mode.skip }, () => {
    it('refuses any plaza: room to a client with forbidden, and asks no hook about it', async () => {
      const asked: string[] = [];
      const plaza = track(await refusingHost(await mode.config(), asked));
      const ada = track(roomsClient(wsUrl(plaza), { name: 'ada' }));
      const bob = track(roomsClient(wsUrl(plaza), { name: 'bob' }));
      for (const name of ['plaza:x', 'plaza:', 'plaza:status', 'plaza:status:2']) {
        assert.equal(await rejection(joined(ada.join(name))), 'forbidden', name);
        assert.equal(await rejection(joined(bob.join(name))), 'forbidden', name);
      }
      // The hooks still decide everything else, and the connection is fine.
      assert.equal(await rejection(joined(ada.join('team'))), 'closed_room');
      assert.deepEqual(asked, ['join team']);
    });

    it('lets the key holder watch plaza:status, but not speak there', async () => {
      const asked: string[] = [];
      const plaza = track(await refusingHost(await mode.config(), asked));
      const operator = track(roomsClient(`${wsUrl(plaza)}?key=${API_KEY}`));
      const status = operator.join('plaza:status');
      await joined(status);
      assert.equal(await rejection(status.publish({ fake: 'snapshot' })), 'forbidden');
      assert.equal(await rejection(joined(operator.join('plaza:x'))), 'forbidden');
      assert.deepEqual(asked, []);
    });

    it('with --status anyone may watch plaza:status, and still not speak there', async () => {
      const plaza = track(await refusingHost({ ...(await mode.config()), status: true }, []));
      const ada = track(roomsClient(wsUrl(plaza)));
      const status = ada.join('plaza:status');
      const snapshots: unknown[] = [];
      status.on('message', (data) => snapshots.push(data));
      await joined(status);
      assert.equal(await rejection(status.publish('hello')), 'forbidden');
      assert.equal(await rejection(joined(ada.join('plaza:other'))), 'forbidden');
      await until(() => snapshots.length > 0, 3000, 'a status snapshot');
    });

    it('refuses the HTTP API a publish to any plaza: room (403 forbidden)', async () => {
      const plaza = track(await refusingHost(await mode.config(), []));
      const post = (path: string, body: unknown) =>
        fetch(`http://127.0.0.1:${plaza.port}${path}`, { method: 'POST', headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      for (const room of ['plaza:x', 'plaza:status']) {
        const reply = await post('/api/publish', { room, data: 1 });
        assert.equal(reply.status, 403, room);
        assert.equal(((await reply.json()) as { error: { code: string } }).error.code, 'forbidden');
      }
      const broadcast = await post('/api/broadcast', { rooms: ['team', 'plaza:x'], data: 1 });
      assert.equal(broadcast.status, 403);
    });
  });
}

describe('--default-room', () => {
  it('refuses a plaza: room, where plain clients would skip the hooks', () => {
    assert.throws(() => resolveOptions({ defaultRoom: 'plaza:lobby' }), (error: unknown) => error instanceof ConfigError && error.option === 'defaultRoom' && /server's own/.test(error.message));
  });
});
