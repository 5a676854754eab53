/**
 * `npm run bench:capacity [-- options]`: the figures docs/scaling.md builds its capacity model
 * on, measured on this machine, and a check of the model against clusters of 2–3 Plaza nodes
 * on 1–3 Redis Cluster shards.
 *
 *   --quick         shorter runs, smaller load (for iterating; the figures are noisier)
 *   --json FILE     also write every reading and the fitted model as JSON
 *   --repeats N     runs of each measurement, the least CPU kept (default 3; quick 1)
 *   --shape N,S,R,M[,RATE]  instead: measure one cluster of N nodes on S shards, R rooms of M
 *                   members (plus a publisher each), RATE publishes/s in all
 *
 * Calibration (one shard): the same publish rate into the same rooms, with each room followed
 * by one node, then by two nodes, then by two nodes with forty members each. Node CPU splits
 * into a cost per publish at the publisher's node, a cost per publish at every node that
 * follows the room, and a cost per delivery; Redis CPU into a cost per publish and one per
 * following node (each gets its own copy on the room's channel). Redis' commandstats and byte
 * counters give commands and bytes per publish. Then idle plaza.v1 members measure memory per
 * connection. Validation: larger rooms, more nodes and 1–3 shards; the model predicts the CPU
 * of the nodes and of each shard, and the report says how far it was off.
 *
 * CPU is read from /proc (the scheduler's ns account), per process; the load generator runs
 * in a child of its own. Everything binds 127.0.0.1. Needs redis-server and redis-cli.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { forkLoad } from './load-child.mjs';
import { readCpu, rssKiB } from './proc.mjs';
import { killAll, startProcess, stopProcess } from './servers.mjs';
import { onFreePort, startRedisProcess, untilReady } from '../test/helpers/processes.mjs';
import { sleep } from '../test/helpers/wait.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(`${(await import('node:fs')).readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0].replace(/^\/\*\*|^ \* ?/gm, '')}\n`);
  process.exit(0);
}
const quick = args.includes('--quick');
const jsonFile = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
const cpuProf = args.find((a) => a.startsWith('--cpu-prof='))?.slice('--cpu-prof='.length);

/**
 * Calibration and validation run at the same total publish rate: a node's cost per publish
 * falls as the rate grows (more messages share each socket write and event-loop turn), so a
 * model fitted at one rate is checked at that rate; the sweep shows how the costs move.
 */
const CFG = quick
  ? { seconds: 4, repeats: 1, rate: 800, calibration: { rooms: 20, members: 30 }, validation: { rooms: 30, perRoom: 20 }, sweep: [400, 2000], idle: 2000 }
  : { seconds: 8, repeats: 3, rate: 1500, calibration: { rooms: 20, members: 40 }, validation: { rooms: 40, perRoom: 30 }, sweep: [500, 1500, 4500], idle: 10_000 };
if (args.includes('--repeats')) CFG.repeats = Number(args[args.indexOf('--repeats') + 1]);
const SIZE = 64;
const BASELINE_MS = 2000;

// ---- processes ---------------------------------------------------------------------------

/** Every redis-server this bench started, killed however it ends. */
const redisChildren = new Set();
function killEverything() {
  for (const child of redisChildren) child.kill('SIGKILL');
  killAll();
}
process.on('exit', killEverything);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    killEverything();
    process.exit(130);
  });
}

const cli = (port, ...command) => execFileSync('redis-cli', ['-p', String(port), ...command], { encoding: 'utf8' }).trim();

/** `n` masters, no replicas, slots split evenly, joined by hand (redis-cli --cluster create wants three). */
async function startShards(n) {
  const dir = mkdtempSync(join(tmpdir(), 'plaza-capacity-'));
  const shards = [];
  for (let i = 0; i < n; i++) {
    // The tests' free-port rule (test/helpers/processes.mjs): a drawn port, its bus port + 10000.
    const shard = await onFreePort(async (port) => {
      const child = await startRedisProcess([
        '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`,
        '--cluster-port', String(port + 10_000), '--cluster-announce-ip', '127.0.0.1', '--save', '', '--appendonly', 'no',
      ]);
      return { port, bus: port + 10_000, child, pid: child.pid };
    });
    redisChildren.add(shard.child);
    shard.child.on('exit', () => redisChildren.delete(shard.child));
    shards.push(shard);
  }
  shards.forEach((shard, i) => cli(shard.port, 'CLUSTER', 'ADDSLOTSRANGE', String(Math.floor((i * 16384) / n)), String(Math.floor(((i + 1) * 16384) / n) - 1)));
  for (const shard of shards.slice(1)) cli(shards[0].port, 'CLUSTER', 'MEET', '127.0.0.1', String(shard.port), String(shard.bus));
  for (let t = 0; ; t++) {
    const ok = shards.every((s) => cli(s.port, 'CLUSTER', 'INFO').includes('cluster_state:ok') && cli(s.port, 'CLUSTER', 'INFO').includes(`cluster_known_nodes:${n}`));
    if (ok) break;
    if (t > 200) throw new Error('the Redis Cluster did not form');
    await sleep(100);
  }
  return { shards, dir, url: `redis+cluster://${shards.map((s) => `127.0.0.1:${s.port}`).join(',')}` };
}

async function stopShards({ shards, dir }) {
  for (const s of shards) s.child.kill('SIGKILL');
  await sleep(100);
  rmSync(dir, { recursive: true, force: true });
}

async function startNodes(n, redisUrl) {
  const nodes = [];
  for (let i = 0; i < n; i++) {
    nodes.push(await startProcess({
      label: `plaza node ${i}`,
      script: `${root}dist/server.js`,
      nodeArgs: cpuProf ? ['--cpu-prof', '--cpu-prof-dir', cpuProf] : [],
      args: ['--port', '0', '--host', '127.0.0.1', '--log-level', 'warn', '--log-format', 'json', '--rate-limit', '0', '--max-connections', '200000', '--redis', redisUrl],
    }));
  }
  for (const node of nodes) await untilReady(`http://127.0.0.1:${node.port}`);
  return nodes;
}

// ---- readings ----------------------------------------------------------------------------

function redisReading(port, pid) {
  const info = cli(port, 'INFO', 'everything');
  const calls = {};
  for (const [, name, n] of info.matchAll(/^cmdstat_([\w|]+):calls=(\d+)/gm)) calls[name] = Number(n);
  const stat = (name) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return { cpuUs: readCpu(pid).us, calls, inBytes: stat('total_net_input_bytes'), outBytes: stat('total_net_output_bytes') };
}

function diffRedis(before, after) {
  const calls = {};
  for (const [name, n] of Object.entries(after.calls)) {
    const d = n - (before.calls[name] ?? 0);
    if (d > 0) calls[name] = d;
  }
  return { cpuUs: after.cpuUs - before.cpuUs, calls, inBytes: after.inBytes - before.inBytes, outBytes: after.outBytes - before.outBytes };
}

/** Which shard (index) serves each room, and how many nodes follow it under the load's placement. */
function placement(rooms, perRoom, nodes, shards) {
  return rooms.map((room, r) => {
    const slot = Number(cli(shards[0].port, 'CLUSTER', 'KEYSLOT', `plaza:{${room}}:ch`));
    const shard = Math.min(shards.length - 1, Math.floor((slot * shards.length) / 16384));
    const followers = new Set([r % nodes]);
    for (let j = 1; j <= perRoom; j++) followers.add((r + j) % nodes);
    return { room, shard, followers: followers.size };
  });
}

/** One measured run: `rate` publishes/s for CFG.seconds into `rooms` rooms of `perRoom` members (plus the publisher). */
async function measure(label, { nodes, cluster, load, rooms: count, perRoom, rate }) {
  const rooms = Array.from({ length: count }, (_, i) => `${label}-${i}`);
  await load.call('connect', { ports: nodes.map((n) => n.port), rooms, perRoom });
  await sleep(1000); // joins, presence and their writes are done
  // The idle baseline (timers, presence refreshes, slot map refreshes) over BASELINE_MS, so the
  // load's own cost can be told apart from what the processes spend anyway.
  const idle0 = { nodes: nodes.map((n) => readCpu(n.pid).us), shards: cluster.shards.map((s) => readCpu(s.pid).us), at: Date.now() };
  await sleep(BASELINE_MS);
  const idleS = (Date.now() - idle0.at) / 1000;
  const baseline = {
    nodeUsPerS: nodes.map((n, i) => (readCpu(n.pid).us - idle0.nodes[i]) / idleS),
    shardUsPerS: cluster.shards.map((s, i) => (readCpu(s.pid).us - idle0.shards[i]) / idleS),
  };
  const nodeBefore = nodes.map((n) => readCpu(n.pid).us);
  const redisBefore = cluster.shards.map((s) => redisReading(s.port, s.pid));
  const loadBefore = readCpu(load.pid).us;
  const machineBefore = Date.now();
  const result = await load.call('run', { rate, seconds: CFG.seconds, size: SIZE });
  const wallS = (Date.now() - machineBefore) / 1000;
  const nodeCpu = nodes.map((n, i) => readCpu(n.pid).us - nodeBefore[i]);
  const redis = cluster.shards.map((s, i) => diffRedis(redisBefore[i], redisReading(s.port, s.pid)));
  const loadCpu = readCpu(load.pid).us - loadBefore;
  await load.call('closeAll');
  const placed = placement(rooms, perRoom, nodes.length, cluster.shards);
  const reading = {
    label, nodes: nodes.length, shards: cluster.shards.length, rooms: count, perRoom, rate,
    published: result.sent, delivered: result.delivered, expected: result.expected, wallS,
    nodeCpuUs: nodeCpu, redis, loadCpuUs: loadCpu, baseline,
    // The load's own CPU: the run's, less the idle baseline over the same time.
    nodeLoadUs: sum(nodeCpu) - sum(baseline.nodeUsPerS) * wallS,
    shardLoadUs: redis.map((r, k) => r.cpuUs - baseline.shardUsPerS[k] * wallS),
    followersMean: placed.reduce((s, p) => s + p.followers, 0) / placed.length,
    publishesByShard: cluster.shards.map((_, k) => (result.sent * placed.filter((p) => p.shard === k).length) / placed.length),
    followerPublishesByShard: cluster.shards.map((_, k) => (result.sent / placed.length) * placed.filter((p) => p.shard === k).reduce((s, p) => s + p.followers, 0)),
  };
  console.log(`  ${label}: ${nodes.length} node(s), ${cluster.shards.length} shard(s), ${count} rooms × ${perRoom + 1} members, ${rate}/s: ` +
    `${result.sent} published, ${result.delivered} of ${Math.round(result.expected)} delivered; node CPU ${fmt(sum(nodeCpu) / 1e3)} ms, ` +
    `Redis CPU ${cluster.shards.map((_, i) => fmt(redis[i].cpuUs / 1e3)).join(' + ')} ms, load generator ${fmt(loadCpu / 1e3)} ms`);
  if (result.delivered < result.expected * 0.99) console.log(`  ! ${label}: ${Math.round(result.expected - result.delivered)} deliveries missing after the drain; the machine is overloaded`);
  return reading;
}

/**
 * `CFG.repeats` runs of the same measurement; the CPU figures of the result are the least of
 * them: the machine is shared, and other processes only ever add to the CPU time a piece of
 * work takes (caches, memory bandwidth), never take from it.
 */
async function measureLeast(label, options) {
  const runs = [];
  for (let i = 0; i < CFG.repeats; i++) runs.push(await measure(label, options));
  const least = (pick) => Math.min(...runs.map(pick));
  const first = runs[0];
  return {
    ...first,
    published: least((r) => r.published),
    delivered: least((r) => r.delivered),
    nodeLoadUs: least((r) => r.nodeLoadUs),
    nodeCpuUs: first.nodeCpuUs.map((_, i) => least((r) => r.nodeCpuUs[i])),
    shardLoadUs: first.shardLoadUs.map((_, k) => least((r) => r.shardLoadUs[k])),
    redis: first.redis.map((shard, k) => ({ ...shard, cpuUs: least((r) => r.redis[k].cpuUs) })),
    loadCpuUs: least((r) => r.loadCpuUs),
    runs: runs.length,
  };
}

const sum = (list) => list.reduce((a, b) => a + b, 0);

/** Cost per publish at `rate`, interpolated on log(rate) between the sweep's points, flat past either end. */
function atRate(points, rate) {
  const sorted = [...points].sort((a, b) => a.rate - b.rate);
  if (rate <= sorted[0].rate) return sorted[0].usPerPublish;
  for (let i = 1; i < sorted.length; i++) {
    if (rate <= sorted[i].rate) {
      const t = Math.log(rate / sorted[i - 1].rate) / Math.log(sorted[i].rate / sorted[i - 1].rate);
      return sorted[i - 1].usPerPublish + t * (sorted[i].usPerPublish - sorted[i - 1].usPerPublish);
    }
  }
  return sorted[sorted.length - 1].usPerPublish;
}
const fmt = (n, digits = 1) => (Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(digits));

// ---- the bench ----------------------------------------------------------------------------

/** --shape: one measurement of one cluster, printed. */
async function shape(spec) {
  const [nodeCount, shardCount, rooms, perRoom, rate = CFG.rate] = spec.split(',').map(Number);
  const load = forkLoad();
  const cluster = await startShards(shardCount);
  try {
    const nodes = await startNodes(nodeCount, cluster.url);
    const r = await measureLeast(`shape${nodeCount}x${shardCount}`, { nodes, cluster, load, rooms, perRoom, rate });
    console.log(`  nodes: ${fmt(r.nodeLoadUs / r.published)} µs of load CPU per publish, ${fmt(r.nodeLoadUs / 1e3)} ms in all (baseline ${r.baseline.nodeUsPerS.map((u) => fmt(u / 1e3)).join(', ')} ms/s); ` +
      `shards: ${r.shardLoadUs.map((u, k) => `${fmt(u / Math.max(1, r.publishesByShard[k]))} µs per publish`).join(', ')}`);
    await Promise.all(nodes.map((n) => stopProcess(n)));
  } finally {
    load.exit();
    await stopShards(cluster);
    killAll();
  }
}

async function main() {
  const shapeArg = args.includes('--shape') ? args[args.indexOf('--shape') + 1] : undefined;
  if (shapeArg) return shape(shapeArg);
  const load = forkLoad();
  const readings = {};
  const model = {};
  try {
    console.log(`capacity bench (${quick ? 'quick' : 'full'}): ${CFG.seconds} s per run, ${SIZE} B payloads`);
    console.log('calibration on one shard');
    const cal = CFG.calibration;
    {
      const cluster = await startShards(1);
      try {
        const one = await startNodes(1, cluster.url);
        readings.oneFollower = await measureLeast('cal1', { nodes: one, cluster, load, rooms: cal.rooms, perRoom: 1, rate: CFG.rate });
        await Promise.all(one.map((n) => stopProcess(n)));
        const two = await startNodes(2, cluster.url);
        readings.twoFollowers = await measureLeast('cal2', { nodes: two, cluster, load, rooms: cal.rooms, perRoom: 1, rate: CFG.rate });
        readings.manyMembers = await measureLeast('cal3', { nodes: two, cluster, load, rooms: cal.rooms, perRoom: cal.members, rate: CFG.rate });
        readings.sweep = [];
        for (const rate of CFG.sweep) readings.sweep.push(await measure(`sweep${rate}`, { nodes: two, cluster, load, rooms: cal.rooms, perRoom: 1, rate }));
        await Promise.all(two.map((n) => stopProcess(n)));
        // Memory: idle plaza.v1 members in 100 rooms on a fresh node (a used one may give garbage back meanwhile).
        const [fresh] = await startNodes(1, cluster.url);
        await sleep(1000);
        const rssBefore = rssKiB(fresh.pid);
        const idleRooms = Array.from({ length: 100 }, (_, i) => `idle-${i}`);
        const { connections } = await load.call('connect', { ports: [fresh.port], rooms: idleRooms, perRoom: CFG.idle / 100 - 1 });
        await sleep(3000);
        readings.idle = { connections, rssBeforeKiB: rssBefore, rssAfterKiB: rssKiB(fresh.pid) };
        await load.call('closeAll');
        await stopProcess(fresh);
      } finally {
        await stopShards(cluster);
      }
    }

    // Fit: node CPU = P·a + P·F·b + D·c ; Redis CPU (one shard) = P·r0 + P·F·r1.
    const { oneFollower: c1, twoFollowers: c2, manyMembers: c3 } = readings;
    const nodeUs = (r) => r.nodeLoadUs;
    model.deliveryUs = (nodeUs(c3) - nodeUs(c2) * (c3.published / c2.published)) / (c3.delivered - c2.delivered * (c3.published / c2.published));
    const perPublish = (r) => (nodeUs(r) - r.delivered * model.deliveryUs) / r.published;
    model.followerUs = perPublish(c2) - perPublish(c1);
    model.publisherUs = perPublish(c1) - model.followerUs;
    const redisPerPublish = (r) => r.shardLoadUs[0] / r.published;
    model.redisFollowerUs = redisPerPublish(c2) - redisPerPublish(c1);
    model.redisPublishUs = redisPerPublish(c1) - model.redisFollowerUs;
    model.redisCommandsPerPublish = Object.fromEntries(Object.entries(c2.redis[0].calls).map(([name, n]) => [name, n / c2.published]).filter(([, n]) => n >= 0.01));
    model.redisInBytesPerPublish = c2.redis[0].inBytes / c2.published;
    model.redisOutBytesPerPublish = { oneFollower: c1.redis[0].outBytes / c1.published, twoFollowers: c2.redis[0].outBytes / c2.published };
    model.idleKiBPerConnection = (readings.idle.rssAfterKiB - readings.idle.rssBeforeKiB) / readings.idle.connections;
    model.loadUsPerDelivery = c3.loadCpuUs / c3.delivered;
    model.baseline = { nodeUsPerS: c2.baseline.nodeUsPerS, shardUsPerS: c2.baseline.shardUsPerS[0] };
    // Redis' cost per publish falls as a shard gets busier (more messages share each write to a
    // subscriber): the sweep measures it at a few rates, with two following nodes.
    model.redisSweep = readings.sweep.map((r) => ({ rate: r.rate, usPerPublish: r.shardLoadUs[0] / r.published }));

    console.log('\nmodel (per publish P, per following node F, per delivery D):');
    console.log(`  node:  ${fmt(model.publisherUs)} µs per publish at the publisher's node + ${fmt(model.followerUs)} µs per publish per following node + ${fmt(model.deliveryUs, 2)} µs per delivery`);
    console.log(`  Redis: ${fmt(model.redisPublishUs)} µs per publish + ${fmt(model.redisFollowerUs)} µs per following node; ` +
      `${fmt(model.redisInBytesPerPublish)} B in per publish, ${fmt(model.redisOutBytesPerPublish.oneFollower)} B out with one following node, ${fmt(model.redisOutBytesPerPublish.twoFollowers)} with two`);
    console.log(`  Redis commands per publish: ${Object.entries(model.redisCommandsPerPublish).map(([n, c]) => `${n} ${c.toFixed(2)}`).join(', ')}`);
    console.log(`  memory: ${fmt(model.idleKiBPerConnection)} KiB per idle plaza.v1 member (${readings.idle.connections} on one node)`);
    console.log('  rate sweep (2 nodes following each room, 1 member each, one shard): ' + readings.sweep.map((r) => `${r.rate}/s: nodes ${fmt(r.nodeLoadUs / r.published)} µs, Redis ${fmt(r.shardLoadUs[0] / r.published)} µs, ${fmt((r.redis[0].calls.evalsha ?? 0) / r.published, 2)} script calls per publish`).join('; '));
    console.log(`  idle baseline: ${model.baseline.nodeUsPerS.map((u) => fmt(u / 1e3)).join(', ')} ms/s per node, ${fmt(model.baseline.shardUsPerS / 1e3)} ms/s for the shard`);

    console.log('\nvalidation');
    const v = CFG.validation;
    readings.validation = [];
    for (const [nodeCount, shardCount] of [[3, 1], [3, 3], [2, 2]]) {
      const cluster = await startShards(shardCount);
      try {
        const nodes = await startNodes(nodeCount, cluster.url);
        const r = await measureLeast(`v${nodeCount}x${shardCount}`, { nodes, cluster, load, rooms: v.rooms, perRoom: v.perRoom, rate: CFG.rate });
        await Promise.all(nodes.map((n) => stopProcess(n)));
        const predictedNodeUs = r.published * model.publisherUs + r.published * r.followersMean * model.followerUs + r.delivered * model.deliveryUs;
        // Each shard at its own rate: the sweep's cost at that rate, with the followers it has beyond the sweep's two.
        const predictedShardUs = r.publishesByShard.map((p, k) => p * (atRate(model.redisSweep, p / CFG.seconds) + (r.followerPublishesByShard[k] / Math.max(1, p) - 2) * model.redisFollowerUs));
        r.predicted = { nodeLoadUs: predictedNodeUs, shardLoadUs: predictedShardUs };
        readings.validation.push(r);
        const off = (measured, predicted) => `${fmt(measured / 1e3)} ms measured, ${fmt(predicted / 1e3)} ms predicted (${predicted >= measured ? '+' : ''}${fmt(((predicted - measured) / measured) * 100, 0)} %)`;
        console.log(`    nodes, the load's CPU: ${off(r.nodeLoadUs, predictedNodeUs)}; with the idle baseline: ${off(sum(r.nodeCpuUs), predictedNodeUs + sum(r.baseline.nodeUsPerS) * r.wallS)}`);
        r.redis.forEach((shard, k) => console.log(`    shard ${k} (${Math.round(r.publishesByShard[k])} publishes), the load's CPU: ${off(r.shardLoadUs[k], predictedShardUs[k])}; with the idle baseline: ${off(shard.cpuUs, predictedShardUs[k] + r.baseline.shardUsPerS[k] * r.wallS)}`));
      } finally {
        await stopShards(cluster);
      }
    }
  } finally {
    load.exit();
    killAll();
  }
  if (jsonFile) writeFileSync(jsonFile, `${JSON.stringify({ config: CFG, model, readings }, null, 2)}\n`);
}

main().catch((error) => {
  console.error(error);
  killAll();
  process.exit(1);
});
