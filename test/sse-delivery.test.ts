/**
 * The delivery promise over server-sent events (issue #21), end to end through Plaza's own
 * client (dist/public/plaza.mjs): members on the SSE transport publish and receive while their
 * links are cut, on one server and on two cluster nodes joined through Redis; and members behind
 * real HTTP proxies that refuse WebSockets, accept them and eat every frame, or pass them (the
 * mode changing at random) move down to SSE and back up to WebSocket over and over while they
 * chat. The checker (helpers/delivery-checker.ts) then holds every member's view to the
 * promise: per room, each message once and in one order, each publish in one place, or a
 * `reset` — so nothing is lost or repeated across a transport switch either.
 *
 * Seeded: the seed is printed on failure; replay with PLAZA_SEED=<seed>. PLAZA_SOAK_MS=<ms>
 * stretches the fault phase for a manual soak run.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { REDIS_URL, skipWithoutRedis, startNode, stopNode, type Node } from './helpers/cluster.js';
import { HttpProxy, type UpgradeMode } from './helpers/http-proxy.js';
import { startPlaza } from './helpers/plaza.js';
import { seeded, seedFromEnv, sleep, soakMs, Workload } from './helpers/workload.js';

const ROOMS = ['alpha', 'beta'];

/** Runs `faults` while the workload publishes, then settles and checks; prints the seed on failure. */
async function exercise(t: TestContext, workload: Workload, seed: number, probeUrl: string, faults: () => Promise<void>): Promise<void> {
  await workload.start();
  workload.run();
  try {
    await faults();
  } finally {
    await workload.stop();
  }
  await workload.settle(probeUrl);
  workload.checker.assertClean(seed);
  assert.ok(workload.acked > 50, `seed ${seed}: only ${workload.acked} of ${workload.published} publishes were acked`);
  assert.ok(workload.checker.deliveries > workload.acked, `seed ${seed}: ${workload.checker.deliveries} deliveries`);
  t.diagnostic(`seed ${seed}: ${workload.published} published, ${workload.acked} acked, ${workload.checker.deliveries} deliveries, ${workload.checker.resets} resets`);
}

describe('the delivery promise over server-sent events, through Plaza\'s own client', { timeout: 120_000 }, () => {
  it('one server: every member on SSE, links cut at random', async (t) => {
    const seed = seedFromEnv();
    const plaza = await startPlaza({ rateLimit: 0 });
    const workload = new Workload({ seed, ports: [plaza.port], members: 6, rooms: ROOMS, publishEvery: 15, client: () => ({ transports: ['sse'] }) });
    try {
      await exercise(t, workload, seed, `ws://127.0.0.1:${plaza.port}/`, async () => {
        await workload.churn(soakMs(4000), 50, 250);
      });
      assert.deepEqual(new Set(workload.clients.map((c) => c.transport)), new Set(['sse']));
    } finally {
      await workload.close();
      await plaza.close();
    }
  });

  it('two nodes on Redis: SSE members (and a WebSocket one) on both nodes, links cut at random', { skip: skipWithoutRedis() }, async (t) => {
    const seed = seedFromEnv();
    const nodes: Node[] = [await startNode(REDIS_URL), await startNode(REDIS_URL)];
    const ports = nodes.map((n) => Number(new URL(n.http).port));
    const workload = new Workload({
      seed,
      ports,
      members: 6,
      rooms: ROOMS.map((r) => `${r}-${seed}-${Math.random().toString(36).slice(2)}`),
      publishEvery: 20,
      client: (i) => ({ transports: i === 5 ? ['websocket'] : ['sse'] }),
    });
    try {
      await exercise(t, workload, seed, nodes[1]!.ws, async () => {
        await workload.churn(soakMs(5000), 50, 250);
      });
    } finally {
      await workload.close();
      await Promise.all(nodes.map((n) => stopNode(n)));
    }
  });

  it('two nodes on Redis behind a load balancer without sticky sessions: each stream and POST lands on either node', { skip: skipWithoutRedis() }, async (t) => {
    const seed = seedFromEnv();
    const nodes: Node[] = [await startNode(REDIS_URL), await startNode(REDIS_URL)];
    const ports = nodes.map((n) => Number(new URL(n.http).port));
    const workload = new Workload({
      seed,
      ports,
      members: 5,
      rooms: ROOMS.map((r) => `${r}-${seed}-${Math.random().toString(36).slice(2)}`),
      publishEvery: 20,
      client: () => ({ transports: ['sse'] }),
      // Every request to a node picked at random (from the seed): a POST often reaches the node
      // that does not hold its stream, which must carry it over.
      link: (_port, member) => HttpProxy.start(ports, { random: seeded(seed + member) }),
    });
    try {
      await exercise(t, workload, seed, nodes[0]!.ws, async () => {
        await workload.churn(soakMs(4000), 100, 300);
      });
    } finally {
      await workload.close();
      await Promise.all(nodes.map((n) => stopNode(n)));
    }
  });

  it('members behind proxies that refuse, eat or pass WebSockets at random move down to SSE and back, and lose or repeat nothing', async (t) => {
    const seed = seedFromEnv();
    const plaza = await startPlaza({ rateLimit: 0 });
    const proxies: HttpProxy[] = [];
    const moves = { websocket: 0, sse: 0 };
    const workload = new Workload({
      seed,
      ports: [plaza.port],
      members: 5,
      rooms: ROOMS,
      publishEvery: 15,
      // Short waits, so a member goes down and up many times within the run.
      client: () => ({ stallTimeout: 400, upgradeDelay: 300 }),
      link: async (port) => {
        const proxy = await HttpProxy.start(port, { upgrades: 'refuse' });
        proxies.push(proxy);
        return proxy;
      },
    });
    try {
      await exercise(t, workload, seed, `ws://127.0.0.1:${plaza.port}/`, async () => {
        for (const client of workload.clients) client.on('transport', (name) => moves[name]++);
        const modes: UpgradeMode[] = ['pass', 'refuse', 'eat'];
        const until = Date.now() + soakMs(6000);
        while (Date.now() < until) {
          await sleep(100 + workload.random() * 300);
          const proxy = workload.pick(proxies);
          proxy.upgrades = workload.pick(modes);
          // A link already upgraded keeps working: cut it sometimes, so the new mode bites.
          if (workload.random() < 0.5) proxy.cut();
        }
        // Let WebSockets through at the end: every member must come back to one.
        for (const proxy of proxies) proxy.upgrades = 'pass';
        const deadline = Date.now() + 10_000;
        while (workload.clients.some((c) => c.transport !== 'websocket' || c.status !== 'open')) {
          if (Date.now() > deadline) throw new Error(`seed ${seed}: not all back on WebSocket: ${workload.clients.map((c) => `${c.transport}/${c.status}`).join(', ')}`);
          await sleep(50);
        }
      });
      t.diagnostic(`seed ${seed}: ${moves.sse} moves down to SSE, ${moves.websocket} back to WebSocket`);
      assert.ok(moves.sse >= 3 && moves.websocket >= 3, `seed ${seed}: only ${moves.sse} moves down and ${moves.websocket} up`);
    } finally {
      await workload.close();
      await plaza.close();
    }
  });
});
