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
import { describe, it } from 'node:test';
import { REDIS_URL, skipWithoutRedis, startNode, stopNode, type Node } from './helpers/cluster.js';
import { HttpProxy, type UpgradeMode } from './helpers/http-proxy.js';
import { startPlaza } from './helpers/plaza.js';
import { exercise, seedFromEnv, sleep, soakMs, Workload, type Link } from './helpers/workload.js';

/** An HTTP proxy as a member's link in the workload. */
function link(proxy: HttpProxy): Link {
  return {
    url: `${proxy.origin}/`,
    get targetPort() {
      return proxy.targets[0]!;
    },
    set targetPort(port: number) {
      proxy.targets = [port];
    },
    cut: () => proxy.cutAll(),
    close: () => proxy.close(),
  };
}

const ROOMS = ['alpha', 'beta'];


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
    const spread: HttpProxy[] = [];
    const workload = new Workload({
      seed,
      ports,
      members: 5,
      rooms: ROOMS.map((r) => `${r}-${seed}-${Math.random().toString(36).slice(2)}`),
      publishEvery: 20,
      client: () => ({ transports: ['sse'] }),
      // Every request to a node picked at random (from the seed): a POST often reaches the node
      // that does not hold its stream, which must carry it over.
      link: async (_port, member) => {
        const proxy = await HttpProxy.start({ targets: ports, seed: seed + member });
        spread.push(proxy);
        return link(proxy);
      },
    });
    const refused: string[] = [];
    try {
      await exercise(t, workload, seed, nodes[0]!.ws, async () => {
        // A POST the wrong node could not carry over would end the client's link (it reconnects
        // and the promise holds all the same): the relay is proven only if none was refused.
        for (const client of workload.clients) client.on('close', ({ reason }) => reason.startsWith('POST') && refused.push(reason));
        await workload.churn(soakMs(4000), 100, 300);
      });
      assert.deepEqual(refused, [], `seed ${seed}: POSTs refused`);
      for (const port of ports) {
        const requests = spread.reduce((sum, proxy) => sum + (proxy.sent.get(port) ?? 0), 0);
        assert.ok(requests > 10, `seed ${seed}: only ${requests} requests reached port ${port}`);
      }
    } finally {
      await workload.close();
      await Promise.all(nodes.map((n) => stopNode(n)));
    }
  });

  it('members behind proxies that pass WebSockets, then refuse, strip or eat them, move down to SSE and back, round after round, and lose or repeat nothing', async (t) => {
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
      client: () => ({ stallTimeout: 1000, upgradeDelay: 300 }),
      link: async (port) => {
        const proxy = await HttpProxy.start({ targets: [port], upgrades: 'refuse' });
        proxies.push(proxy);
        return link(proxy);
      },
    });
    try {
      await exercise(t, workload, seed, `ws://127.0.0.1:${plaza.port}/`, async () => {
        for (const client of workload.clients) client.on('transport', (name) => moves[name]++);
        const blocked: UpgradeMode[] = ['refuse', 'strip', 'eat'];
        const everyone = async (transport: 'websocket' | 'sse') => {
          // Generous: on a loaded machine a probe may miss stallTimeout a few times.
          const deadline = Date.now() + 20_000;
          while (workload.clients.some((c) => c.transport !== transport || c.status !== 'open')) {
            if (Date.now() > deadline) throw new Error(`seed ${seed}: not all on ${transport}: ${workload.clients.map((c) => `${c.transport}/${c.status}`).join(', ')}`);
            await sleep(50);
          }
        };
        const rounds = Math.max(2, Math.round(soakMs(6000) / 3000));
        for (let round = 0; round < rounds; round++) {
          // WebSockets pass: everyone moves up (the background probe), while links are cut.
          for (const proxy of proxies) proxy.upgrades = 'pass';
          await everyone('websocket');
          await sleep(200 + workload.random() * 300);
          // Each proxy blocks WebSockets its own way; a link already upgraded keeps working, so
          // it is cut: everyone moves down.
          for (const proxy of proxies) {
            proxy.upgrades = workload.pick(blocked);
            proxy.cutAll();
          }
          await everyone('sse');
          // Random cuts on SSE.
          for (let i = 0; i < 4; i++) {
            await sleep(50 + workload.random() * 200);
            workload.pick(proxies).cutAll();
          }
        }
        for (const proxy of proxies) proxy.upgrades = 'pass';
        await everyone('websocket');
      });
      t.diagnostic(`seed ${seed}: ${moves.sse} moves down to SSE, ${moves.websocket} back to WebSocket`);
      // Every member went down and up in every round.
      assert.ok(moves.sse >= 5 * 2 && moves.websocket >= 5 * 2, `seed ${seed}: only ${moves.sse} moves down and ${moves.websocket} up`);
    } finally {
      await workload.close();
      await plaza.close();
    }
  });
});
