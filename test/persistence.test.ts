/** History that survives restarts with --data-dir: clean ones, and a SIGKILL mid-stream. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { ROOT, startPlaza, wsUrl } from './helpers/plaza.js';
import { V1Client } from './helpers/v1.js';

const SERVER_JS = join(ROOT, 'dist/server.js');

describe('persistence (--data-dir)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'plaza-data-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('keeps epochs, offsets and history across a restart, and resumes gap-free', async () => {
    const dataDir = join(dir, 'clean');
    const first = await startPlaza({ dataDir });
    const writer = await V1Client.open(wsUrl(first));
    const joined = await writer.request({ type: 'join', room: 'kept' });
    for (let i = 1; i <= 5; i++) await writer.request({ type: 'publish', room: 'kept', data: { i, text: `line\n${i} ✓` } });
    await writer.close();
    await first.close();

    const second = await startPlaza({ dataDir });
    try {
      const reader = await V1Client.open(wsUrl(second));
      const resumed = await reader.request({ type: 'join', room: 'kept', since: { epoch: joined.epoch, offset: 2 } });
      assert.equal(resumed.recovered, true);
      assert.equal(resumed.epoch, joined.epoch);
      assert.deepEqual(resumed.messages.map((m: { data: { i: number } }) => m.data.i), [3, 4, 5]);
      assert.equal(resumed.messages[0].data.text, 'line\n3 ✓');
      const ack = await reader.request({ type: 'publish', room: 'kept', data: 6 });
      assert.equal(ack.offset, 6, 'offsets continue where they stopped');
      await reader.close();
    } finally {
      await second.close();
    }
  });

  it('without --data-dir a restart changes the epoch and says so', async () => {
    const first = await startPlaza();
    const a = await V1Client.open(wsUrl(first));
    const joined = await a.request({ type: 'join', room: 'm' });
    await a.request({ type: 'publish', room: 'm', data: 1 });
    await a.close();
    await first.close();
    const second = await startPlaza();
    try {
      const b = await V1Client.open(wsUrl(second));
      const reply = await b.request({ type: 'join', room: 'm', since: { epoch: joined.epoch, offset: 1 } });
      assert.equal(reply.recovered, false);
      assert.equal(reply.reason, 'epoch_changed');
      await b.close();
    } finally {
      await second.close();
    }
  });

  it('skips a torn last record instead of refusing to start', async () => {
    const dataDir = join(dir, 'torn');
    const first = await startPlaza({ dataDir });
    const w = await V1Client.open(wsUrl(first));
    await w.request({ type: 'join', room: 't' });
    for (let i = 1; i <= 3; i++) await w.request({ type: 'publish', room: 't', data: i });
    await w.close();
    await first.close();
    const segments = (await readdir(dataDir)).filter((name) => name.endsWith('.log')).sort();
    await appendFile(join(dataDir, segments[segments.length - 1]!), '{"room":"t","epoch":"x","off');

    const second = await startPlaza({ dataDir });
    try {
      const r = await V1Client.open(wsUrl(second));
      const joined = await r.request({ type: 'join', room: 't', history: 10 });
      assert.deepEqual(joined.messages.map((m: { data: number }) => m.data), [1, 2, 3]);
      assert.equal((await r.request({ type: 'publish', room: 't', data: 4 })).offset, 4);
      await r.close();
    } finally {
      await second.close();
    }
  });

  it('loses nothing a client saw when the process is killed with SIGKILL mid-stream', async () => {
    const dataDir = join(dir, 'killed');
    const start = async () => {
      // Only PATH from the environment: an exported REDIS_URL (as in CI) would make this a cluster node.
      const child = spawn(process.execPath, [SERVER_JS, '--port', '0', '--host', '127.0.0.1', '--log-format', 'json', '--data-dir', dataDir, '--history-size', '1000'], { env: { PATH: process.env.PATH } });
      const url = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).on('line', (line) => {
          const entry = JSON.parse(line) as { msg: string; url?: string };
          if (entry.msg === 'Plaza is serving') resolve(entry.url!.replace('http:', 'ws:'));
        });
        child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
      });
      return { child, url };
    };
    const first = await start();
    const watcher = await V1Client.open(first.url);
    const joined = await watcher.request({ type: 'join', room: 'k' });
    const writer = await V1Client.open(first.url);
    await writer.request({ type: 'join', room: 'k' });
    for (let i = 1; i <= 200; i++) writer.send({ type: 'publish', room: 'k', data: i });
    await watcher.waitForMessages(50, 'k');
    first.child.kill('SIGKILL');
    await watcher.client.closed;
    const seen = watcher.messages('k').map((m) => m.data as number);

    const second = await start();
    try {
      const back = await V1Client.open(second.url);
      const reply = await back.request({ type: 'join', room: 'k', since: { epoch: joined.epoch, offset: 0 }, history: 1000 });
      assert.equal(reply.recovered, true, JSON.stringify({ ...reply, messages: reply.messages.length }));
      const kept = reply.messages.map((m: { data: number }) => m.data);
      assert.deepEqual(kept.slice(0, seen.length), seen, 'everything a client saw was on disk');
      assert.deepEqual(kept, Array.from({ length: kept.length }, (_, i) => i + 1));
      await back.close();
    } finally {
      second.child.kill('SIGKILL');
    }
  });
});
