/**
 * Self time per function in a V8 .cpuprofile (what `node --cpu-prof` writes).
 *   node bench/profile.mjs /tmp/prof/CPU.<...>.cpuprofile [top]
 * (run.mjs --cpu-prof calls it on the newest profile it produced.)
 * Time is attributed from the sample deltas, so it is exact to the sampling interval (~1 ms).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Self time per function. With `windows` ([{ startUs, endUs }] on CLOCK_MONOTONIC, the clock of
 * both V8's profile timestamps and process.hrtime), only samples inside them count: that is how
 * the harness attributes time to its measured phases and not to the handshakes before them.
 */
export function selfTimes(profile, windows) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map();
  let total = 0;
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    at += us;
    if (windows && !windows.some((w) => at >= w.startUs && at <= w.endUs)) return;
    total += us;
    self.set(id, (self.get(id) ?? 0) + us);
  });
  const byFunction = new Map();
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    const file = url ? url.replace(/^.*\//, '') : '';
    const name = `${functionName || '(anonymous)'}${file ? ` ${file}:${lineNumber + 1}` : ''}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
  }
  const idle = byFunction.get('(idle)') ?? 0;
  const rows = [...byFunction].map(([name, us]) => ({ name, ms: us / 1000 })).sort((a, b) => b.ms - a.ms);
  return { totalMs: total / 1000, busyMs: (total - idle) / 1000, rows };
}

/** Adds up selfTimes() results (several processes' profiles over the same phases). */
export function mergeSelfTimes(list) {
  const byName = new Map();
  for (const { rows } of list) for (const { name, ms } of rows) byName.set(name, (byName.get(name) ?? 0) + ms);
  return {
    totalMs: list.reduce((sum, r) => sum + r.totalMs, 0),
    busyMs: list.reduce((sum, r) => sum + r.busyMs, 0),
    rows: [...byName].map(([name, ms]) => ({ name, ms })).sort((a, b) => b.ms - a.ms),
  };
}

export function formatSelfTimes({ totalMs, busyMs, rows }, top = 20) {
  const lines = [`profile: ${totalMs.toFixed(0)} ms sampled, ${busyMs.toFixed(0)} ms not idle`, '| self ms | % of busy | function |', '|---:|---:|---|'];
  for (const row of rows.filter((r) => r.name !== '(idle)').slice(0, top)) {
    lines.push(`| ${row.ms.toFixed(1)} | ${((100 * row.ms) / busyMs).toFixed(1)}% | ${row.name} |`);
  }
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: node bench/profile.mjs <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  process.stdout.write(`${formatSelfTimes(selfTimes(JSON.parse(readFileSync(file, 'utf8'))), Number(top) || 20)}\n`);
}
