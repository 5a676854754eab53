/**
 * `npm run bench:placement [-- options]`: what placement saves (docs/scaling.md, "Placement").
 *
 * One cluster: N Plaza nodes on one redis-server, behind a real HAProxy running
 * docs/placement/haproxy.cfg (its `bind` and `server` lines replaced, as in the test). The same
 * load runs through it in two modes:
 *
 *   spread   clients name no room in the URL: HAProxy spreads them round robin, as any load
 *            balancer that does not place rooms would
 *   placed   clients connect with ?placement=<room>: a room's members meet on one node
 *
 * For each: F (nodes following a room on average, from each node's plaza_backplane_rooms), the
 * nodes' CPU per publish (all nodes together, and the busiest one), Redis' and HAProxy's CPU per
 * publish, and the CPU other processes on the machine used meanwhile. After a warm-up run of
 * each mode (not counted: fresh processes cost more at first), a round runs both modes, the
 * first of them alternating from round to round; the report gives each figure's median over the
 * rounds and the median of the per-round ratios spread ÷ placed.
 *
 *   --rounds N      rounds (default 3)
 *   --quick         1 round, 4 s runs
 *   --nodes N       Plaza nodes (default 3)
 *   --rooms R       rooms (default 30)
 *   --members M     members per room besides its publisher (default 12)
 *   --rate P        publishes per second in all (default 1500)
 *   --seconds S     length of each run (default 8)
 *   --json FILE     also write every reading as JSON
 *
 * CPU is read from /proc per process (proc.mjs); the load generator runs in a child of its own
 * (capacity-load.mjs). Needs redis-server and haproxy; everything binds 127.0.0.1.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { forkLoad } from './load-child.mjs';
import { machineBusyUs, readCpu } from './proc.mjs';
import { killAll, startProcess, stopProcess, track } from './servers.mjs';
import { PLACEMENT_CONFIG, placementConfig, startHaproxy } from '../test/helpers/haproxy.mjs';
import { metrics } from '../test/helpers/metrics.mjs';
import { startRedis, untilReady } from '../test/helpers/processes.mjs';
import { sleep, until } from '../test/helpers/wait.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(`${readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0].replace(/^\/\*\*|^ \* ?/gm, '')}\n`);
  process.exit(0);
}
const option = (name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const quick = args.includes('--quick');
const CFG = {
  rounds: option('--rounds', quick ? 1 : 3),
  nodes: option('--nodes', 3),
  rooms: option('--rooms', 30),
  members: option('--members', 12),
  rate: option('--rate', 1500),
  seconds: option('--seconds', quick ? 4 : 8),
  size: 64,
};
const jsonFile = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
const BASELINE_MS = 2000;

const sum = (list) => list.reduce((a, b) => a + b, 0);
const median = (list) => {
  const sorted = [...list].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const fmt = (n, digits = 1) => (Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(digits));

/** What each node holds now: rooms it follows and open connections. */
async function holdings(nodes) {
  return Promise.all(nodes.map(async (node) => {
    const samples = await metrics(`http://127.0.0.1:${node.port}`);
    let connections = 0;
    for (const [key, value] of samples) if (key.startsWith('plaza_connections{')) connections += value;
    return { followed: samples.get('plaza_backplane_rooms') ?? 0, connections };
  }));
}

/** One run of `mode` in a fresh set of rooms; every CPU figure is the run's less the idle baseline. */
async function measure(mode, label, { nodes, redis, lb, load }) {
  const rooms = Array.from({ length: CFG.rooms }, (_, i) => `${label}-${i}`);
  await load.call('connect', { ports: [lb.port], rooms, perRoom: CFG.members, placement: mode === 'placed' });
  await sleep(1000); // joins, presence and their writes are done
  const held = await holdings(nodes);
  const followers = sum(held.map((h) => h.followed)) / CFG.rooms;
  const pids = { nodes: nodes.map((n) => n.pid), redis: redis.pid, lb: lb.child.pid, load: load.pid };
  const cpu = () => ({ nodes: pids.nodes.map((pid) => readCpu(pid).us), redis: readCpu(pids.redis).us, lb: readCpu(pids.lb).us, load: readCpu(pids.load).us, machine: machineBusyUs(), at: Date.now() });
  const rates = (a, b) => {
    const s = (b.at - a.at) / 1000;
    return { nodes: b.nodes.map((u, i) => (u - a.nodes[i]) / s), redis: (b.redis - a.redis) / s, lb: (b.lb - a.lb) / s };
  };
  const idle0 = cpu();
  await sleep(BASELINE_MS);
  const base = rates(idle0, cpu());
  const before = cpu();
  const result = await load.call('run', { rate: CFG.rate, seconds: CFG.seconds, size: CFG.size });
  const after = cpu();
  const wallS = (after.at - before.at) / 1000;
  await load.call('closeAll');
  // The next run starts from nodes that follow nothing and hold no one.
  await until(async () => (await holdings(nodes)).every((h) => h.followed === 0 && h.connections === 0), 30_000, 'the nodes to let go of the run\'s rooms');
  const nodeUs = after.nodes.map((u, i) => u - before.nodes[i] - base.nodes[i] * wallS);
  const ours = sum(after.nodes) - sum(before.nodes) + (after.redis - before.redis) + (after.lb - before.lb) + (after.load - before.load);
  const reading = {
    mode, label, published: result.sent, delivered: result.delivered, expected: result.expected, wallS,
    followers,
    connectionsPerNode: held.map((h) => h.connections),
    nodeUsPerPublish: sum(nodeUs) / result.sent,
    busiestNodeUsPerPublish: Math.max(...nodeUs) / result.sent,
    redisUsPerPublish: (after.redis - before.redis - base.redis * wallS) / result.sent,
    haproxyUsPerPublish: (after.lb - before.lb - base.lb * wallS) / result.sent,
    loadUsPerPublish: (after.load - before.load) / result.sent,
    /** Cores the rest of the machine (other jobs) used during the run. */
    otherCores: Math.max(0, (after.machine - before.machine - ours) / 1e6 / wallS),
  };
  console.log(`  ${label} ${mode.padEnd(6)}: F ${fmt(followers, 2)}, connections per node ${reading.connectionsPerNode.join('/')}; ` +
    `${result.sent} published, ${result.delivered} of ${Math.round(result.expected)} delivered; per publish: nodes ${fmt(reading.nodeUsPerPublish)} µs ` +
    `(busiest ${fmt(reading.busiestNodeUsPerPublish)}), Redis ${fmt(reading.redisUsPerPublish)} µs, HAProxy ${fmt(reading.haproxyUsPerPublish)} µs; ` +
    `other jobs ${fmt(reading.otherCores, 2)} cores`);
  if (result.delivered < result.expected * 0.99) console.log(`  ! ${label}: ${Math.round(result.expected - result.delivered)} deliveries missing after the drain; the machine is overloaded`);
  return reading;
}

async function main() {
  console.log(`placement bench: ${CFG.nodes} nodes on one redis-server behind HAProxy (${PLACEMENT_CONFIG}); ` +
    `${CFG.rooms} rooms × ${CFG.members + 1} members, ${CFG.rate} publishes/s of ${CFG.size} B for ${CFG.seconds} s; ${CFG.rounds} round(s)`);
  const redis = await startRedis(['--save', '', '--appendonly', 'no']);
  track(redis.child);
  const redisPid = redis.child.pid;
  const nodes = [];
  for (let i = 0; i < CFG.nodes; i++) {
    nodes.push(await startProcess({
      label: `plaza node ${i}`,
      script: `${root}dist/server.js`,
      args: ['--port', '0', '--host', '127.0.0.1', '--log-level', 'warn', '--log-format', 'json', '--rate-limit', '0', '--max-connections', '200000', '--redis', `redis://127.0.0.1:${redis.port}`],
    }));
  }
  for (const node of nodes) await untilReady(`http://127.0.0.1:${node.port}`);
  const doc = readFileSync(`${root}${PLACEMENT_CONFIG}`, 'utf8');
  const lb = await startHaproxy((port) => placementConfig(doc, { port, servers: nodes.map((n) => `127.0.0.1:${n.port}`) }));
  track(lb.child);
  const load = forkLoad();
  const readings = [];
  try {
    // Both modes once, unreported: the first runs of fresh processes cost more (the JIT, caches),
    // which would count against whichever mode went first.
    console.log('  warm-up (not counted):');
    for (const mode of ['spread', 'placed']) await measure(mode, `warm${mode}`, { nodes, redis: { pid: redisPid }, lb, load });
    for (let round = 0; round < CFG.rounds; round++) {
      const modes = round % 2 === 0 ? ['spread', 'placed'] : ['placed', 'spread'];
      for (const mode of modes) readings.push({ round, ...(await measure(mode, `r${round}${mode}`, { nodes, redis: { pid: redisPid }, lb, load })) });
    }
  } finally {
    load.exit();
    await lb.stop();
    await Promise.all(nodes.map((n) => stopProcess(n)));
    redis.child.kill('SIGKILL');
  }

  const of = (mode, key) => median(readings.filter((r) => r.mode === mode).map((r) => r[key]));
  const ratio = (key) => median(Array.from({ length: CFG.rounds }, (_, round) => {
    const pick = (mode) => readings.find((r) => r.round === round && r.mode === mode)[key];
    return pick('spread') / pick('placed');
  }));
  const rows = [
    ['F (nodes following a room)', 'followers', 2],
    ['nodes\' CPU per publish, all nodes (µs)', 'nodeUsPerPublish', 1],
    ['the busiest node\'s CPU per publish (µs)', 'busiestNodeUsPerPublish', 1],
    ['Redis CPU per publish (µs)', 'redisUsPerPublish', 1],
    ['HAProxy CPU per publish (µs)', 'haproxyUsPerPublish', 1],
    ['other jobs on the machine (cores)', 'otherCores', 2],
  ];
  console.log(`\nmedians of ${CFG.rounds} round(s); ratio: the median of each round's spread ÷ placed`);
  console.log('| | spread | placed | ratio |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const [name, key, digits] of rows) {
    const r = key === 'otherCores' ? '' : `${fmt(ratio(key), 2)}×`;
    console.log(`| ${name} | ${fmt(of('spread', key), digits)} | ${fmt(of('placed', key), digits)} | ${r} |`);
  }
  if (jsonFile) writeFileSync(jsonFile, `${JSON.stringify({ config: CFG, readings }, null, 2)}\n`);
}

main().catch((error) => {
  console.error(error);
  killAll();
  process.exit(1);
});
