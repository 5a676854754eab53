/**
 * The publishing promise (issue #22), end to end through Plaza's own client
 * (dist/public/plaza.mjs): each publish the application makes appears once in every member's
 * stream, and its promise settles definitely. The publisher reaches the server through a TCP
 * proxy that, at random publishes, lets the publish through, drops the server's answer (the
 * ack), then cuts the link: the client must send it again, and the server must answer the
 * repeat with the first ack. In each mode: one server, --data-dir with SIGKILL restarts between
 * the publish and its retry, and two cluster nodes on Redis where the retry lands on the other
 * node. The checker is helpers/exactly-once-checker.ts; a server without the window (0) must
 * fail it, which the first test proves.
 *
 * Seeded: the seed is printed on failure; replay with PLAZA_SEED=<seed>.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { REDIS_URL, skipWithoutRedis, spawnPlaza, startNode, stopNode, type Node } from './helpers/cluster.js';
import { ExactlyOnceChecker } from './helpers/exactly-once-checker.js';
import { startPlaza } from './helpers/plaza.js';
import { clientPool } from './helpers/plaza-client.js';
import { TcpProxy } from './helpers/tcp-proxy.js';
import { seeded, seedFromEnv, sleep } from './helpers/workload.js';
import { until } from './helpers/wait.mjs';

const ROUNDS = 24;

interface Scenario {
  seed: number;
  /** The server the publisher's proxy forwards to at first. */
  port: number;
  /** Where the other members connect, directly. */
  memberUrls: string[];
  /** Runs while the publisher's link is mute, before it is cut (a kill, a move to another node). */
  betweenPublishAndRetry?: (round: number, proxy: TcpProxy) => Promise<void>;
}

/** Runs the rounds and returns the checker, with every member caught up. */
async function run(t: TestContext, scenario: Scenario): Promise<ExactlyOnceChecker> {
  const random = seeded(scenario.seed);
  const checker = new ExactlyOnceChecker();
  const proxy = await TcpProxy.start(scenario.port);
  const pool = clientPool({ minDelay: 20, maxDelay: 200 });
  const room = `exactly-once-${scenario.seed}-${Math.random().toString(36).slice(2)}`;
  try {
    const urls = [proxy.url, ...scenario.memberUrls];
    const rooms = [];
    for (const [i, url] of urls.entries()) {
      const member = i === 0 ? 'publisher' : `member-${i}`;
      const client = await pool.connect(url);
      const joined = client.join(room);
      joined.on('message', (data, meta) => checker.delivered(member, String(data), meta.epoch, meta.offset));
      joined.on('reset', ({ reason }) => assert.fail(`${member}: reset (${reason}); this test expects none`));
      await new Promise<void>((resolve) => joined.on('joined', () => resolve()));
      rooms.push(joined);
    }
    const publisher = rooms[0]!;
    let cuts = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const data = `m${round}`;
      const cut = random() < 0.4;
      checker.published(data);
      if (cut) proxy.muteReplies();
      const outcome = publisher.publish(data).then(
        (ack) => checker.settled(data, { ack }),
        (error: { code: string }) => checker.settled(data, { rejected: error.code }),
      );
      if (cut) {
        cuts++;
        // Long enough for the server to take the publish and answer it (the answer is dropped).
        await sleep(60 + random() * 60);
        await scenario.betweenPublishAndRetry?.(round, proxy);
        proxy.cut();
      }
      await outcome;
    }
    // What is still missing after this shows as `missing` in the checker.
    await until(() => caughtUp(checker, urls.length), 10_000, 'every member has every acked message').catch(() => undefined);
    t.diagnostic(`seed ${scenario.seed}: ${ROUNDS} publishes, ${cuts} cut between the publish and its ack, ${checker.acked} acked, ${checker.deliveries} deliveries`);
    return checker;
  } finally {
    pool.closeAll();
    await proxy.close();
  }
}

/** Every member has at least as many deliveries as there are acks (duplicates show as violations). */
function caughtUp(checker: ExactlyOnceChecker, members: number): boolean {
  return checker.deliveries >= checker.acked * members;
}

describe('publishing once through Plaza\'s own client (issue #22)', { timeout: 120_000 }, () => {
  it('the checker catches a server that forgets publish ids (--publish-id-window 0)', async (t) => {
    const seed = seedFromEnv();
    const plaza = await startPlaza({ rateLimit: 0, publishIdWindow: 0 });
    try {
      const checker = await run(t, { seed, port: plaza.port, memberUrls: [`ws://127.0.0.1:${plaza.port}/`] });
      const found = checker.violations();
      assert.ok(found.some((v) => v.kind === 'twice'), `seed ${seed}: expected the checker to see a publish twice, it saw ${JSON.stringify(found.slice(0, 3))}`);
      t.diagnostic(`caught: ${found.slice(0, 3).map((v) => `${v.kind}: ${v.detail}`).join('; ')}`);
    } finally {
      await plaza.close();
    }
  });

  it('one server: links cut between each such publish and its ack', async (t) => {
    const seed = seedFromEnv();
    const plaza = await startPlaza({ rateLimit: 0 });
    try {
      const checker = await run(t, { seed, port: plaza.port, memberUrls: [`ws://127.0.0.1:${plaza.port}/`, `ws://127.0.0.1:${plaza.port}/`] });
      checker.assertClean(seed);
      assert.equal(checker.acked, ROUNDS);
    } finally {
      await plaza.close();
    }
  });

  it('--data-dir: the server killed with SIGKILL between a publish and its retry, and restarted', async (t) => {
    const seed = seedFromEnv();
    const dir = await mkdtemp(join(tmpdir(), 'plaza-once-'));
    // Port 0 first (the free-port rule, helpers/processes.mjs); a restart binds the port it had.
    let node: Node = await spawnPlaza(['--data-dir', dir]);
    const port = Number(new URL(node.http).port);
    const args = ['--port', String(port), '--data-dir', dir];
    try {
      let kills = 0;
      const checker = await run(t, {
        seed,
        port,
        memberUrls: [node.ws],
        betweenPublishAndRetry: async () => {
          // Every other cut: the window must come back from the journal.
          if (kills++ % 2 === 1) return;
          await stopNode(node, 'SIGKILL');
          node = await spawnPlaza(args);
        },
      });
      checker.assertClean(seed);
      assert.equal(checker.acked, ROUNDS);
    } finally {
      await stopNode(node);
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe('two cluster nodes on Redis', { skip: skipWithoutRedis() }, () => {
    it('the retry lands on the other node', async (t) => {
      const seed = seedFromEnv();
      const nodes = [await startNode(REDIS_URL), await startNode(REDIS_URL)];
      const portOf = (node: Node) => Number(new URL(node.http).port);
      try {
        const checker = await run(t, {
          seed,
          port: portOf(nodes[0]!),
          memberUrls: nodes.map((node) => node.ws),
          betweenPublishAndRetry: async (_round, proxy) => {
            proxy.targetPort = proxy.targetPort === portOf(nodes[0]!) ? portOf(nodes[1]!) : portOf(nodes[0]!);
          },
        });
        checker.assertClean(seed);
        assert.equal(checker.acked, ROUNDS);
      } finally {
        await Promise.all(nodes.map((node) => stopNode(node)));
      }
    });
  });
});
