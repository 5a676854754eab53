/**
 * `node bench/capacity-medians.mjs RUN.json RUN.json RUN.json`: the capacity model fitted on the
 * medians of several `npm run bench:capacity -- --repeats 1 --json RUN.json` runs, and checked
 * against the medians of their validation clusters. On a shared machine one run's readings swing
 * by up to half, and the model is fitted from differences between readings, which swing more:
 * the median of each reading over runs is steadier than either run. The fit is capacity.mjs's
 * own (calibration c1, c2, c3; the shards' cost by their rate from the sweep).
 */
import { readFileSync } from 'node:fs';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node bench/capacity-medians.mjs RUN.json [RUN.json …] (from npm run bench:capacity -- --repeats 1 --json RUN.json)');
  process.exit(2);
}
const runs = files.map((file) => JSON.parse(readFileSync(file, 'utf8')));
const median = (list) => {
  const sorted = [...list].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const fmt = (n, digits = 1) => (Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(digits));
const pct = (predicted, measured) => `${predicted >= measured ? '+' : ''}${Math.round(((predicted - measured) / measured) * 100)} %`;

/** One reading, each figure the median over the runs. */
function medianOf(pick) {
  const all = runs.map(pick);
  const first = all[0];
  return {
    ...first,
    published: median(all.map((r) => r.published)),
    delivered: median(all.map((r) => r.delivered)),
    nodeLoadUs: median(all.map((r) => r.nodeLoadUs)),
    shardLoadUs: first.shardLoadUs.map((_, k) => median(all.map((r) => r.shardLoadUs[k]))),
    callsPerPublish: first.redis.map((_, k) => median(all.map((r) => (r.redis[k].calls.evalsha ?? 0) / (r.publishesByShard?.[k] ?? r.published)))),
  };
}

const c1 = medianOf((r) => r.readings.oneFollower);
const c2 = medianOf((r) => r.readings.twoFollowers);
const c3 = medianOf((r) => r.readings.manyMembers);
const sweep = runs[0].readings.sweep.map((_, i) => medianOf((r) => r.readings.sweep[i]));

// capacity.mjs's fit: node CPU = P·a + P·F·b + D·d ; Redis CPU (one shard) = P·r0 + P·F·r1.
const deliveryUs = (c3.nodeLoadUs - c2.nodeLoadUs * (c3.published / c2.published)) / (c3.delivered - c2.delivered * (c3.published / c2.published));
const perPublish = (r) => (r.nodeLoadUs - r.delivered * deliveryUs) / r.published;
const followerUs = perPublish(c2) - perPublish(c1);
const publisherUs = perPublish(c1) - followerUs;
const redisFollowerUs = c2.shardLoadUs[0] / c2.published - c1.shardLoadUs[0] / c1.published;
const redisSweep = sweep.map((r) => ({ rate: r.rate, usPerPublish: r.shardLoadUs[0] / r.published }));
function atRate(rate) {
  const sorted = [...redisSweep].sort((a, b) => a.rate - b.rate);
  if (rate <= sorted[0].rate) return sorted[0].usPerPublish;
  for (let i = 1; i < sorted.length; i++) {
    if (rate <= sorted[i].rate) {
      const t = Math.log(rate / sorted[i - 1].rate) / Math.log(sorted[i].rate / sorted[i - 1].rate);
      return sorted[i - 1].usPerPublish + t * (sorted[i].usPerPublish - sorted[i - 1].usPerPublish);
    }
  }
  return sorted[sorted.length - 1].usPerPublish;
}

console.log(`medians of ${runs.length} capacity run(s): ${files.join(', ')}`);
console.log(`  node:  ${fmt(publisherUs)} µs per publish at the publisher's node + ${fmt(followerUs)} µs per publish per following node + ${fmt(deliveryUs, 2)} µs per delivery`);
console.log(`  runs one by one (their own fits): publisher ${runs.map((r) => fmt(r.model.publisherUs)).join(' / ')}, following ${runs.map((r) => fmt(r.model.followerUs)).join(' / ')}, delivery ${runs.map((r) => fmt(r.model.deliveryUs, 2)).join(' / ')} µs`);
console.log(`  Redis: ${fmt(redisFollowerUs)} µs per further following node; per publish with two following nodes by the shard's rate: ${redisSweep.map((p) => `${p.rate}/s ${fmt(p.usPerPublish)} µs`).join(', ')}`);
console.log(`  nodes per publish in the sweep (2 following nodes): ${sweep.map((r) => `${r.rate}/s ${fmt(r.nodeLoadUs / r.published)} µs`).join(', ')}`);
console.log(`  script calls per publish: calibration ${[c1, c2, c3].map((r) => r.callsPerPublish[0].toFixed(2)).join(' / ')}, sweep ${sweep.map((r) => r.callsPerPublish[0].toFixed(2)).join(' / ')}`);
const commands = {};
for (const r of runs) for (const [name, n] of Object.entries(r.model.redisCommandsPerPublish)) (commands[name] ??= []).push(n);
console.log(`  Redis commands per publish: ${Object.entries(commands).map(([name, list]) => `${name} ${median(list).toFixed(2)}`).join(', ')}`);
console.log(`  Redis bytes: ${fmt(median(runs.map((r) => r.model.redisInBytesPerPublish)))} B in per publish, ${fmt(median(runs.map((r) => r.model.redisOutBytesPerPublish.oneFollower)))} B out with one following node, ${fmt(median(runs.map((r) => r.model.redisOutBytesPerPublish.twoFollowers)))} with two`);
console.log(`  memory: ${fmt(median(runs.map((r) => r.model.idleKiBPerConnection)))} KiB per idle plaza.v1 member`);

// What a shard's CPU follows: Redis CPU = calls × x + publishes × y + publishes × (F − 1) × z,
// least squares over every calibration reading of every run (normal equations, 3 × 3).
{
  const rows = [];
  for (const r of runs) {
    for (const one of [r.readings.oneFollower, r.readings.twoFollowers, r.readings.manyMembers, ...r.readings.sweep]) {
      rows.push({ x: [one.redis[0].calls.evalsha ?? 0, one.published, one.published * (one.followersMean - 1)], y: one.shardLoadUs[0] });
    }
  }
  const a = [0, 1, 2].map((i) => [0, 1, 2].map((j) => rows.reduce((s, row) => s + row.x[i] * row.x[j], 0)));
  const b = [0, 1, 2].map((i) => rows.reduce((s, row) => s + row.x[i] * row.y, 0));
  // Gaussian elimination with partial pivoting.
  for (let c = 0; c < 3; c++) {
    const pivot = [c, 1, 2].filter((r) => r >= c).reduce((best, r) => (Math.abs(a[r][c]) > Math.abs(a[best][c]) ? r : best), c);
    [a[c], a[pivot]] = [a[pivot], a[c]];
    [b[c], b[pivot]] = [b[pivot], b[c]];
    for (let r = c + 1; r < 3; r++) {
      const f = a[r][c] / a[c][c];
      for (let k = c; k < 3; k++) a[r][k] -= f * a[c][k];
      b[r] -= f * b[c];
    }
  }
  const x = [0, 0, 0];
  for (let r = 2; r >= 0; r--) x[r] = (b[r] - [0, 1, 2].filter((k) => k > r).reduce((s, k) => s + a[r][k] * x[k], 0)) / a[r][r];
  console.log(`  Redis CPU by script calls, least squares over ${rows.length} calibration readings: ${fmt(x[0])} µs per call + ${fmt(x[1])} µs per publish + ${fmt(x[2])} µs per publish per further following node`);
}

console.log('\nvalidation (medians; the load\'s CPU, idle baseline taken off)');
const seconds = runs[0].config.seconds;
for (let i = 0; i < runs[0].readings.validation.length; i++) {
  const v = medianOf((r) => r.readings.validation[i]);
  const predictedNode = v.published * publisherUs + v.published * v.followersMean * followerUs + v.delivered * deliveryUs;
  const perRun = runs.map((r) => {
    const one = r.readings.validation[i];
    return pct(one.predicted.nodeLoadUs, one.nodeLoadUs);
  });
  console.log(`  ${v.label}: nodes ${fmt(v.nodeLoadUs / 1e3)} ms measured, ${fmt(predictedNode / 1e3)} ms predicted (${pct(predictedNode, v.nodeLoadUs)}; each run by its own fit: ${perRun.join(', ')})`);
  v.shardLoadUs.forEach((measured, k) => {
    const p = v.publishesByShard[k];
    const predicted = p * (atRate(p / seconds) + (v.followerPublishesByShard[k] / Math.max(1, p) - 2) * redisFollowerUs);
    console.log(`    shard ${k} (${Math.round(p)} publishes, ${v.callsPerPublish[k].toFixed(2)} script calls per publish): ${fmt(measured / 1e3)} ms measured, ${fmt(predicted / 1e3)} ms predicted (${pct(predicted, measured)})`);
  });
}
