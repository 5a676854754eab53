/**
 * The free-port rule the tests and the bench share (helpers/processes.mjs): a server that cannot
 * pick its own port binds a drawn one itself, and a port someone else holds is reported as taken
 * and another is drawn; nothing reserves a port and releases it for later.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { skipWithoutRedis } from './helpers/cluster.js';
import { onFreePort, PORT_RANGE, PORT_TAKEN, startRedis, startRedisProcess } from './helpers/processes.mjs';
import { until } from './helpers/wait.mjs';

describe('the free-port rule', () => {
  it('draws another port when the one drawn is taken, and gives up after the attempts with the last error', async () => {
    const tried: number[] = [];
    const port = await onFreePort(async (candidate) => {
      tried.push(candidate);
      if (tried.length < 3) throw Object.assign(new Error('taken'), { code: PORT_TAKEN });
      return candidate;
    });
    assert.equal(tried.length, 3);
    assert.equal(port, tried[2]);
    assert.ok(tried.every((p) => p >= PORT_RANGE.from && p <= PORT_RANGE.to), `${tried.join(', ')} in ${PORT_RANGE.from}-${PORT_RANGE.to}`);
    await assert.rejects(onFreePort(async () => { throw Object.assign(new Error('always taken'), { code: PORT_TAKEN }); }, 4), /always taken/);
    await assert.rejects(onFreePort(async () => { throw new Error('something else'); }), /something else/, 'only a taken port is retried');
  });

  it('reports a redis-server whose port is held by someone else as taken, not as started', { skip: skipWithoutRedis() }, async () => {
    const holder = createServer().listen(0, '127.0.0.1');
    await once(holder, 'listening');
    const { port } = holder.address() as { port: number };
    try {
      await assert.rejects(startRedisProcess(['--port', String(port), '--bind', '127.0.0.1', '--save', '']), (error: Error & { code?: string }) => error.code === PORT_TAKEN);
    } finally {
      holder.close();
    }
    const redis = await startRedis(['--save', '']);
    try {
      assert.ok(redis.port >= PORT_RANGE.from && redis.port <= PORT_RANGE.to);
      assert.equal(redis.child.exitCode, null, 'it serves');
    } finally {
      redis.child.kill('SIGKILL');
    }
  });
});

describe('until', () => {
  it('resolves with the first value that is not undefined, null or false, and names what never came', async () => {
    let n = 0;
    assert.equal(await until(() => (++n === 3 ? 'third' : undefined), 1000), 'third');
    assert.equal(await until(async () => (++n === 6 ? 6 : false), 1000), 6);
    await assert.rejects(until(() => { throw new Error('not yet: 7'); }, 50, 'the seventh'), /timed out after 50 ms waiting for the seventh \(last error: not yet: 7\)/);
  });
});
