/**
 * The delivery promise, end to end, through Plaza's own client (dist/public/plaza.mjs) in every
 * mode: one server, --data-dir, and a three-node cluster on Redis. Members publish and receive
 * while links are cut, the server is killed, Redis restarts (with and without its data) or
 * stalls, and a cluster node dies; the checker (helpers/delivery-checker.ts) then holds every
 * member's view to the promise: per room, each message once and in one order, or a `reset`.
 *
 * Seeded: the seed is printed on failure; replay with PLAZA_SEED=<seed>. PLAZA_SOAK_MS=<ms>
 * stretches the fault phase for a manual soak run.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { PrivateRedis, skipWithoutRedis, spawnPlaza, startNode, stopNode, type Node } from './helpers/cluster.js';
import { startPlaza } from './helpers/plaza.js';
import { exercise as exerciseWorkload, seedFromEnv, sleep, soakMs, Workload } from './helpers/workload.js';
import { untilReady } from './helpers/processes.mjs';

const ROOMS = ['alpha', 'beta'];

/** The shared run (helpers/workload.ts), and ephemeral publishes mixed in reached someone. */
async function exercise(t: TestContext, workload: Workload, seed: number, probeUrl: string, faults: () => Promise<void>): Promise<void> {
  await exerciseWorkload(t, workload, seed, probeUrl, faults);
  assert.ok(workload.checker.ephemerals > 0, `seed ${seed}: no ephemeral publish reached anyone`);
}

describe('the delivery promise through Plaza\'s own client', () => {
  it('one server: links cut at random', async (t) => {
    const seed = seedFromEnv();
    const plaza = await startPlaza({ rateLimit: 0 });
    const workload = new Workload({ seed, ports: [plaza.port], members: 6, rooms: ROOMS, publishEvery: 15 });
    try {
      await exercise(t, workload, seed, `ws://127.0.0.1:${plaza.port}/`, async () => {
        await workload.churn(soakMs(4000), 50, 250);
      });
    } finally {
      await workload.close();
      await plaza.close();
    }
  });

  it('--data-dir: links cut, and the server killed with SIGKILL and restarted, twice', async (t) => {
    const seed = seedFromEnv();
    const dir = await mkdtemp(join(tmpdir(), 'plaza-delivery-'));
    // Port 0 first (the free-port rule, helpers/processes.mjs); a restart binds the port it had.
    let node: Node = await spawnPlaza(['--data-dir', dir]);
    const port = Number(new URL(node.http).port);
    const args = ['--port', String(port), '--data-dir', dir];
    const workload = new Workload({ seed, ports: [port], members: 5, rooms: ROOMS, publishEvery: 20 });
    try {
      await exercise(t, workload, seed, node.ws, async () => {
        const kills = 2;
        const phase = soakMs(6000) / kills;
        for (let k = 0; k < kills; k++) {
          await workload.churn(phase * (0.5 + workload.random() / 2), 100, 300);
          await stopNode(node, 'SIGKILL');
          await sleep(workload.random() * 300);
          node = await spawnPlaza(args);
        }
        await sleep(500);
      });
    } finally {
      await workload.close();
      await stopNode(node);
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe('a cluster of three nodes', { skip: skipWithoutRedis() }, () => {
    it('links cut, Redis paused, restarted with and without its data, and a node killed', async (t) => {
      const seed = seedFromEnv();
      const redis = await PrivateRedis.start({ persistent: true });
      const nodes: Node[] = await Promise.all([0, 1, 2].map(() => startNode(redis.url)));
      await Promise.all(nodes.map((n) => untilReady(n.http, 200)));
      const ports = nodes.map((n) => Number(new URL(n.http).port));
      const workload = new Workload({ seed, ports, members: 6, rooms: ROOMS, publishEvery: 20 });
      const log: string[] = [];
      try {
        await exercise(t, workload, seed, nodes[0]!.ws, async () => {
          const step = soakMs(12_000) / 6;
          const churn = (ms: number) => workload.churn(ms, 80, 300, log);
          await churn(step);
          log.push('redis paused');
          redis.pause();
          await sleep(800 + workload.random() * 1200);
          redis.resume();
          await churn(step);
          log.push('redis restarted with its data');
          await redis.stop();
          await sleep(workload.random() * 500);
          await redis.restart();
          await churn(step);
          log.push('redis restarted without its data');
          await redis.stop();
          await sleep(workload.random() * 500);
          await redis.restart({ wipe: true });
          await churn(step);
          const victim = 1 + Math.floor(workload.random() * 2);
          log.push(`node ${victim} killed`);
          await stopNode(nodes[victim]!, 'SIGKILL');
          workload.move(ports[victim]!, ports[0]!);
          workload.cutAll();
          await churn(step);
          await Promise.all(nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null).map((n) => untilReady(n.http, 200, 15_000)));
        });
      } catch (error) {
        throw new Error(`${(error as Error).message}\nfaults: ${log.join(', ')}`);
      } finally {
        await workload.close();
        await Promise.all(nodes.map((n) => stopNode(n)));
        await redis.destroy();
      }
    });
  });
});
