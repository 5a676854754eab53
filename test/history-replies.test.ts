/**
 * History of any allowed size reaches the member who asks for it, through Plaza's own client, on
 * one server and with --data-dir (the cluster case is in cluster-promise.test.ts): a join with
 * `history` or a resume whose messages add up to more than --max-buffered is answered in pieces
 * (PROTOCOL.md, "Large replies come in pieces"), never with 1013. And the status feed's
 * snapshots, published every second, never enter history or the journal.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { spawnPlaza, stopNode } from './helpers/cluster.js';
import { startPlaza } from './helpers/plaza.js';
import { clientPool, type Client } from './helpers/plaza-client.js';
import { firstJoin } from './helpers/workload.js';
import { until } from './helpers/wait.mjs';

const pool = clientPool();
const client = pool.connect;
after(pool.closeAll);

/** 25 messages of 60 KB: 1.5 MB, more than the default --max-buffered of 1 MiB. */
async function fill(url: string, room: string): Promise<void> {
  const writer = await client(url);
  const joined = writer.join(room);
  await firstJoin(joined);
  for (let n = 0; n < 25; n++) await joined.publish(`${n}:${'x'.repeat(60_000)}`);
  writer.close();
}

/** Joins with `options` and waits for `count` messages; returns their leading numbers. */
async function read(url: string, room: string, options: Client.JoinOptions, count: number): Promise<{ numbers: string[]; resets: number; client: Client.PlazaClient; room: Client.Room }> {
  const reader = await client(url);
  const joined = reader.join(room, options);
  const numbers: string[] = [];
  let resets = 0;
  joined.on('message', (data) => numbers.push(String(data).split(':')[0]!));
  joined.on('reset', () => resets++);
  await until(() => numbers.length >= count, 10_000, `${count} messages`);
  return { numbers, resets, client: reader, room: joined };
}

const all = Array.from({ length: 25 }, (_, n) => String(n));

describe('history replies larger than --max-buffered', () => {
  it('one server: a late joiner with history 25 and a resume from offset 0 get all 25, then live', async () => {
    const plaza = await startPlaza({ rateLimit: 0 });
    const url = `ws://127.0.0.1:${plaza.port}/`;
    try {
      await fill(url, 'big');
      const late = await read(url, 'big', { history: 25 }, 25);
      assert.deepEqual(late.numbers, all);
      const epoch = late.room.position!.epoch;
      const resumed = await read(url, 'big', { since: { epoch, offset: 0 } }, 25);
      assert.deepEqual(resumed.numbers, all);
      assert.equal(resumed.resets, 0);
      const talker = await client(url);
      const live = talker.join('big');
      await firstJoin(live);
      await live.publish('live:now');
      await until(() => late.numbers.at(-1) === 'live' && resumed.numbers.at(-1) === 'live', 5000, 'the live message');
      assert.equal(late.client.status, 'open');
      assert.equal(resumed.client.status, 'open');
    } finally {
      await plaza.close();
    }
  });

  it('--data-dir: the same after a restart, from the journal', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'plaza-replies-'));
    // Port 0 first (the free-port rule, helpers/processes.mjs); a restart binds the port it had.
    let node = await spawnPlaza(['--data-dir', dir]);
    const args = ['--port', new URL(node.http).port, '--data-dir', dir];
    try {
      await fill(node.ws, 'big');
      await stopNode(node);
      node = await spawnPlaza(args);
      const late = await read(node.ws, 'big', { history: 25 }, 25);
      assert.deepEqual(late.numbers, all);
      assert.equal(late.client.status, 'open');
    } finally {
      await stopNode(node);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the status feed', () => {
  it('never writes its snapshots into history or the journal', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'plaza-status-'));
    const node = await spawnPlaza(['--data-dir', dir, '--status', '--api-key', 'k'.repeat(32)]);
    try {
      const watcher = await client(node.ws);
      const feed = watcher.join('plaza:status');
      let snapshots = 0;
      feed.on('message', () => snapshots++);
      await until(() => snapshots >= 3, 6000, 'three snapshots');
      const history = await fetch(`${node.http}/api/rooms/plaza:status/history`, { headers: { Authorization: `Bearer ${'k'.repeat(32)}` } });
      const body = (await history.json()) as { messages?: unknown[] };
      assert.deepEqual(body.messages ?? [], [], 'nothing kept in history');
      let journal = '';
      for (const file of await readdir(dir)) if (file.endsWith('.log')) journal += await readFile(join(dir, file), 'utf8');
      assert.equal(journal.includes('plaza:status'), false, 'nothing in the journal');
    } finally {
      await stopNode(node);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
