/**
 * Plaza behind Redis Sentinel (`--redis redis+sentinel://…/<master>`): one master, two replicas,
 * three Sentinels, all behind passwords, and three Plaza nodes, started once for the file.
 * Through Plaza's own client (dist/public/plaza.mjs, by helpers/workload.ts): the delivery promise (each message once, in one order, or a
 * `reset`) holds while the Sentinels move the master away from a live one, and again when a
 * master dies with writes no replica got; the passwords never reach a log line.
 *
 * Seeded like test/delivery.test.ts: replay a failure with PLAZA_SEED=<seed>.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { skipWithoutRedis, startNode, stopNode, type Node } from './helpers/cluster.js';
import { SentinelSet } from './helpers/redis-sentinel.js';
import { seedFromEnv, sleep, Workload } from './helpers/workload.js';
import { untilReady } from './helpers/processes.mjs';

const API_KEY = 'k'.repeat(32);

describe('Plaza behind Redis Sentinel (a master, 2 replicas, 3 Sentinels, 3 nodes)', { skip: skipWithoutRedis() }, () => {
  let set: SentinelSet;
  let nodes: Node[] = [];

  before(async () => {
    set = await SentinelSet.start({ replicas: 2, sentinels: 3 });
    nodes = await Promise.all([0, 1, 2].map(() => startNode(set.url, ['--api-key', API_KEY])));
    await Promise.all(nodes.map((n) => untilReady(n.http, 200)));
  });

  after(async () => {
    await Promise.all(nodes.map((n) => stopNode(n)));
    await set?.destroy();
  });

  it('keeps the delivery promise through a Sentinel failover and a master killed with writes no replica got', { timeout: 120_000 }, async (t) => {
    const seed = seedFromEnv();
    const rooms = [`s-alpha-${seed}`, `s-beta-${seed}`];
    const ports = nodes.map((n) => Number(new URL(n.http).port));
    const workload = new Workload({ seed, ports, members: 6, rooms, publishEvery: 20 });
    const log: string[] = [];
    let lost = 0;
    const offsetKey = `plaza:{${rooms[0]}}:offset`;
    const epochKey = `plaza:{${rooms[0]}}:epoch`;
    const churn = (ms: number) => workload.churn(ms, 100, 300, log);
    try {
      await workload.start();
      workload.run();
      try {
        await churn(1000);
        // 1. The Sentinels promote a replica; the old master lives on (as a master, for a while).
        log.push(`SENTINEL FAILOVER to ${await set.failover()}`);
        await churn(1500);
        // 2. The replicas are cut off, the master takes more writes (acknowledged, delivered),
        //    then dies: the replica promoted in its place never had them.
        const master = await set.master();
        const replicas = await set.cutReplicas();
        await sleep(400);
        // Whichever server is promoted lacks at least this many: the master's offset beyond the best copy of its epoch.
        const positionOn = async (port: number) => ({ epoch: await set.admin(port).get(epochKey), offset: Number(await set.admin(port).get(offsetKey)) });
        const here = await positionOn(master);
        const copies = await Promise.all(replicas.map(positionOn));
        lost = here.offset - Math.max(0, ...copies.filter((c) => c.epoch === here.epoch).map((c) => c.offset));
        log.push(`replicas cut off, master ${master} killed ${lost} writes ahead`);
        log.push(`promoted ${await set.killMaster()}`);
        await set.restoreReplicas(replicas);
        await churn(1500);
      } finally {
        await workload.stop();
      }
      await workload.settle(nodes[0]!.ws, 30_000);
      workload.checker.assertClean(seed);
      assert.ok(lost > 0, `seed ${seed}: the master was ${lost} writes ahead of its replicas (the test must lose some to prove anything)`);
      assert.ok(workload.checker.resets > 0, 'members were told their view had a gap');
      assert.ok(workload.acked > 100, `seed ${seed}: only ${workload.acked} of ${workload.published} publishes were acked`);
      t.diagnostic(`seed ${seed}: ${workload.published} published, ${workload.acked} acked, ${workload.checker.deliveries} deliveries, ${workload.checker.resets} resets, ${lost} acknowledged writes lost by the failover`);
    } catch (error) {
      throw new Error(`${(error as Error).message}\nfaults: ${log.join(', ')}`);
    } finally {
      await workload.close();
    }
  });

  it('never writes the data nodes\' or the Sentinels\' password to a log line', () => {
    const lines = nodes.flatMap((n) => n.lines);
    assert.ok(lines.some((l) => l.includes('redis+sentinel://:***@')), 'the nodes named their Redis (redacted) at least once');
    for (const secret of [set.password, encodeURIComponent(set.password), set.sentinelPassword]) {
      assert.equal(lines.filter((l) => l.includes(secret)).length, 0, `no log line holds ${secret}`);
    }
  });
});
