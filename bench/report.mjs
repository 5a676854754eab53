/**
 * Turns per-run metrics into medians, a markdown report with ratios against bare ws and the
 * issue's targets, and a hand-written SVG chart (no chart library).
 */

import { fanoutSection } from './report-fanout.mjs';
import { clusterSoakSection, isSeriesKey, soakSection } from './soak-report.mjs';

const SIZE_LABEL = { 64: '64 B', 1024: '1 KiB' };
const sizeLabel = (size) => SIZE_LABEL[size] ?? `${size} B`;
const count = (n) => n.toLocaleString('en-US');

/** The rows of the report, in order. `target(p, w, s)` gets Plaza's, bare ws's and socket.io's medians. */
export function metricRows(cfg) {
  const rows = [];
  for (const n of [cfg.big, cfg.small]) {
    for (const size of cfg.sizes) {
      const key = `burst.${n}.${size}`;
      const what = `burst ${count(n)} subs × ${cfg.messages} × ${sizeLabel(size)}`;
      rows.push({
        key: `${key}.cpu`,
        label: `${what}: server CPU per delivery`,
        unit: 'µs',
        better: 'lower',
        target: { text: '≤ 1/5 of bare ws and < socket.io', check: (p, w, s) => p <= w / 5 && p < s },
      });
      rows.push({ key: `${key}.wall`, label: `${what}: wall time to last delivery`, unit: 'ms', better: 'lower' });
    }
  }
  if (cfg.rooms) {
    const r = cfg.rooms;
    const what = `rooms: ${r.count} × ${r.members} subs, ${r.messages} × 64 B from a publisher in each`;
    rows.push({ key: 'rooms.cpu', label: `${what}: server CPU per delivery`, unit: 'µs', better: 'lower' });
    rows.push({ key: 'rooms.wall', label: `${what}: wall time to last delivery`, unit: 'ms', better: 'lower' });
  }
  const s = cfg.steady;
  const what = `steady ${count(cfg.small)} subs, ${s.rate} msg/s × ${s.seconds} s`;
  rows.push({
    key: 'steady.perCpuSecond',
    label: `${what}: deliveries per server CPU-second`,
    unit: '/CPU-s',
    better: 'higher',
    target: { text: '≥ 1.2× bare ws', check: (p, w) => p >= 1.2 * w },
  });
  rows.push({ key: 'steady.p50', label: `${what}: latency p50`, unit: 'ms', better: 'lower' });
  rows.push({
    key: 'steady.p99',
    label: `${what}: latency p99`,
    unit: 'ms',
    better: 'lower',
    target: { text: '≤ 1/4 of bare ws', check: (p, w) => p <= w / 4 },
  });
  rows.push({ key: 'steady.max', label: `${what}: latency max`, unit: 'ms', better: 'lower' });
  rows.push({
    key: 'idle.rssPerConnKiB',
    label: `idle ${count(cfg.big)} connections: server RSS per connection`,
    unit: 'KiB',
    better: 'lower',
    target: { text: '≤ 1.25× bare ws', check: (p, w) => p <= 1.25 * w },
  });
  rows.push({ key: 'idle.rssMiB', label: `idle ${count(cfg.big)} connections: server RSS total`, unit: 'MiB', better: 'lower' });
  rows.push({ key: 'connect.cpuPerConn', label: `connect ${count(cfg.big)}: server CPU per connection`, unit: 'µs', better: 'lower' });
  rows.push({
    key: 'connect.perCpuSecond',
    label: `connect ${count(cfg.big)}: connections accepted per server CPU-second`,
    unit: '/CPU-s',
    better: 'higher',
    target: { text: '≥ bare ws', check: (p, w) => p >= w },
  });
  rows.push({ key: 'connect.rate', label: `connect ${count(cfg.big)}: connections accepted per second`, unit: '/s', better: 'higher' });
  if (cfg.marginal) {
    // Issue 24: what one more connection costs, N → 2N on a fresh process (scenarios.mjs marginalMemory).
    const plain = `${count(cfg.marginal.plain)} → ${count(2 * cfg.marginal.plain)} plain clients`;
    rows.push({
      key: 'marginal.plain.rssPerConnKiB',
      label: `${plain}: server RSS per added connection`,
      unit: 'KiB',
      better: 'lower',
      target: { text: '≤ bare ws (stretch ≤ 0.8×)', check: (p, w) => p <= w },
    });
    rows.push({ key: 'marginal.plain.liveRssPerConnKiB', label: `${plain}: the same after a full GC (Node servers)`, unit: 'KiB', better: 'lower' });
    rows.push({ key: 'marginal.plain.liveHeapPerConn', label: `${plain}: V8 heap per added connection after a full GC`, unit: 'B', better: 'lower' });
    rows.push({
      key: 'marginal.plain.perCpuSecond',
      label: `${plain}: the added connections accepted per server CPU-second`,
      unit: '/CPU-s',
      better: 'higher',
      target: { text: '≥ bare ws', check: (p, w) => p >= w },
    });
    const members = `${count(cfg.marginal.members)} → ${count(2 * cfg.marginal.members)} members of ${cfg.idleRooms.rooms} rooms with presence (bare ws: its rooms peer)`;
    rows.push({
      key: 'marginal.members.rssPerConnKiB',
      label: `${members}: server RSS per added connection`,
      unit: 'KiB',
      better: 'lower',
      target: { text: '≤ bare ws (stretch ≤ 0.8×)', check: (p, w) => p <= w },
    });
    rows.push({ key: 'marginal.members.liveRssPerConnKiB', label: `${members}: the same after a full GC`, unit: 'KiB', better: 'lower' });
    rows.push({ key: 'marginal.members.liveHeapPerConn', label: `${members}: V8 heap per added connection after a full GC`, unit: 'B', better: 'lower' });
  }
  if (cfg.storm) {
    // Issue 24: every client back at once (scenarios.mjs reconnectStorm).
    const plain = `reconnect storm, ${count(cfg.storm.clients)} plain clients at once`;
    // Times are bimodal (SYNs past the listen backlog are retried after 1 s): no target on them.
    rows.push({ key: 'storm.plain.ms', label: `${plain}: time until all are back`, unit: 'ms', better: 'lower' });
    rows.push({ key: 'storm.plain.cpuPerConn', label: `${plain}: server CPU per reconnect`, unit: 'µs', better: 'lower', target: { text: '≤ bare ws', check: (p, w) => p <= w } });
    rows.push({ key: 'storm.plain.peakOverMiB', label: `${plain}: peak RSS above RSS when it began`, unit: 'MiB', better: 'lower', target: { text: '≤ bare ws', check: (p, w) => p <= w } });
    const resume = `reconnect storm, ${count(cfg.storm.clients)} plaza.v1 members of ${cfg.storm.rooms} rooms resuming ${cfg.storm.missed} missed messages (bare ws: rooms peer, rejoin only)`;
    rows.push({ key: 'storm.resume.ms', label: `${resume}: time until all are resumed`, unit: 'ms', better: 'lower' });
    rows.push({ key: 'storm.resume.cpuPerConn', label: `${resume}: server CPU per reconnect`, unit: 'µs', better: 'lower', target: { text: '≤ bare ws', check: (p, w) => p <= w } });
    rows.push({ key: 'storm.resume.peakOverMiB', label: `${resume}: peak RSS above RSS when it began`, unit: 'MiB', better: 'lower', target: { text: '≤ bare ws', check: (p, w) => p <= w } });
    rows.push({ key: 'storm.resume.recoveredPercent', label: `${resume}: joins answered recovered`, unit: '%', better: 'higher' });
  }
  if (cfg.authConnect) {
    const what = `connect ${count(cfg.authConnect.connections)} plain clients`;
    rows.push({ key: 'connectAuth.none.cpuPerConn', label: `${what} without a token: server CPU per connection`, unit: 'µs', better: 'lower' });
    rows.push({
      key: 'connectAuth.none.perCpuSecond',
      label: `${what} without a token (warm process, median of ${cfg.authConnect.rounds} rounds): connections accepted per server CPU-second`,
      unit: '/CPU-s',
      better: 'higher',
      target: { text: '≥ bare ws', check: (p, w) => p >= w },
    });
    rows.push({ key: 'connectAuth.HS256.cpuPerConn', label: `${what} with an HS256 token (--auth-secret): server CPU per connection`, unit: 'µs', better: 'lower' });
    rows.push({ key: 'connectAuth.HS256.overNone', label: '… HS256 check: extra CPU per connection over no token', unit: 'µs', better: 'lower' });
    for (const kind of ['RS256', 'ES256', 'EdDSA']) {
      rows.push({ key: `connectAuth.${kind}.cpuPerConn`, label: `${what} with an ${kind} token (JWKS, keys cached): server CPU per connection`, unit: 'µs', better: 'lower' });
      rows.push({ key: `connectAuth.${kind}.overHs256`, label: `… ${kind} check: extra CPU per connection over HS256`, unit: 'µs', better: 'lower' });
    }
  }
  return rows;
}

export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/**
 * Per-run figures computed from others of the same run (so their medians and ranges are honest):
 * v1 ÷ plain, and a cluster's CPU with Redis's added.
 */
export function derive(run, cfg) {
  const out = { ...run };
  const put = (key, value) => {
    if (Number.isFinite(value)) out[key] = value;
  };
  put('v1.ratio.burstCpu', run['v1.burst.cpu'] / run[`burst.${cfg.small}.64.cpu`]);
  if (run['steady.perCpuSecond']) put('steady.cpu', 1e6 / run['steady.perCpuSecond']);
  put('v1.ratio.controlCpu', run['v1.burst.cpu'] / run['v1.control.cpu']);
  put('v1.ratio.steadyCpu', run['v1.steady.cpu'] / out['steady.cpu']);
  put('cluster.burst.totalCpu', run['cluster.burst.cpu'] + run['cluster.burst.redisCpu']);
  put('cluster.steady.totalCpu', run['cluster.steady.cpu'] + run['cluster.steady.redisCpu']);
  for (const mode of ['v1', 'cluster']) put(`publishIds.${mode}.ratio`, run[`publishIds.${mode}.ids.cpu`] / run[`publishIds.${mode}.plain.cpu`]);
  for (const figure of ['cpu', 'heap', 'rss']) put(`sse.ratio.${figure}`, run[`sse.sse.${figure}`] / run[`sse.websocket.${figure}`]);
  put('clusterPlain.burst.totalCpu', run['clusterPlain.burst.cpu'] + run['clusterPlain.burst.redisCpu']);
  put('connect.perCpuSecond', 1e6 / run['connect.cpuPerConn']);
  put('marginal.plain.perCpuSecond', 1e6 / run['marginal.plain.cpuPerConn']);
  put('connectAuth.none.perCpuSecond', 1e6 / run['connectAuth.none.cpuPerConn']);
  put('storm.resume.recoveredPercent', 100 * run['storm.resume.recoveredShare']);
  put('connectAuth.HS256.overNone', run['connectAuth.HS256.cpuPerConn'] - run['connectAuth.none.cpuPerConn']);
  for (const kind of ['RS256', 'ES256', 'EdDSA']) put(`connectAuth.${kind}.overHs256`, run[`connectAuth.${kind}.cpuPerConn`] - run['connectAuth.HS256.cpuPerConn']);
  return out;
}

/** { serverId: [runMetrics, ...] } → { serverId: { key: median } } (derived figures included) */
export function medians(runs, cfg) {
  const out = {};
  for (const [server, raw] of Object.entries(runs)) {
    const list = raw.map((run) => derive(run, cfg));
    const keys = new Set(list.flatMap((r) => Object.keys(r)));
    out[server] = Object.fromEntries([...keys].map((k) => [k, median(list.map((r) => r[k]))]));
  }
  return out;
}

export function format(value, unit) {
  if (!Number.isFinite(value)) return '–';
  if (unit === 'µs') return value < 1 ? value.toFixed(3) : value < 10 ? value.toFixed(2) : value.toFixed(1);
  if (unit === 'ms') return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : Math.round(value).toLocaleString('en-US');
  if (unit === 'KiB') return value.toFixed(1);
  if (unit === 'MiB') return value < 100 ? value.toFixed(1) : value.toFixed(0);
  return Math.round(value).toLocaleString('en-US');
}

const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${(a / b).toFixed(a / b < 0.1 ? 3 : 2)}×` : '–');

/** Markdown: environment, the main table, targets, and the raw per-run numbers. */
export function markdownReport({ cfg, env, runs, serverIds, notes = [], failures = [] }) {
  const med = medians(runs, cfg);
  // A partial run (`--scenarios soak`) has nothing for most rows: leave those out.
  const hasData = (key) => Object.values(med).some((m) => Number.isFinite(m[key]) || m[key.replace(/\.[a-zA-Z]+$/, '.incomplete')]);
  const rows = metricRows(cfg).filter((row) => hasData(row.key));
  const p = med.plaza ?? {};
  const w = med.ws ?? {};
  const s = med.socketio ?? {};
  const b = med.bun;
  const lines = [];
  lines.push(`# Plaza fan-out benchmark — ${env.date}`, '');
  lines.push(
    `Machine: ${env.cpu}, ${env.cores} cores, ${env.memGiB} GiB, Linux ${env.kernel}; Node ${env.node}; ` +
      `ws ${env.wsVersion}, socket.io ${env.socketioVersion}, Bun ${env.bunVersion ?? '?'}. Plaza built from \`${env.revision}\` (dist/server.js). ` +
      `Loopback (127.0.0.1) only; ${env.pinned ?? 'no pinning'}.`,
    '',
    `Medians of ${cfg.runs} run(s) per server, servers alternating (order rotated each run). ` +
      `Server CPU from ${env.cpuSource} (utime+stime in clock ticks kept as a cross-check). ` +
      `${cfg.probes} of the subscribers are latency probes; the publisher is a recipient too (every server echoes to the sender). ` +
      `Ratios are Plaza ÷ bare ws from the same run set.${cfg.quick ? ' **Quick mode: smaller counts, not comparable to a full run.**' : ''}`,
    '',
  );
  lines.push(...failuresSection(failures, cfg));
  if (rows.length) {
    lines.push(`| Metric | Plaza |${b ? ' Bun (uWS) |' : ''} bare ws | socket.io | Plaza ÷ ws | Target | Result |`);
    lines.push(`|---|---:|${b ? '---:|' : ''}---:|---:|---:|---|---|`);
  }
  for (const row of rows) {
    const unit = row.unit;
    let result = '';
    if (row.target) {
      // No figure (a scenario that failed in every run) is neither a pass nor a miss.
      const known = [p[row.key], w[row.key]].every(Number.isFinite);
      result = !known ? '–' : row.target.check(p[row.key], w[row.key], s[row.key] ?? Infinity) ? 'PASS' : 'MISS';
    }
    const cell = (m) => {
      const incomplete = m[row.key.replace(/\.[a-zA-Z]+$/, '.incomplete')];
      return Number.isFinite(m[row.key]) ? `${format(m[row.key], unit)} ${unit}` : incomplete ? 'incomplete' : '–';
    };
    lines.push(`| ${row.label} | ${cell(p)} |${b ? ` ${cell(b)} |` : ''} ${cell(w)} | ${cell(s)} | ${ratio(p[row.key], w[row.key])} | ${row.target?.text ?? ''} | ${result} |`);
  }
  lines.push('');
  lines.push(...fanoutSection(cfg, med));
  lines.push(...v1Section(cfg, runs.plaza ?? []), ...clusterSection(cfg, runs.plaza ?? []), ...publishIdsSection(cfg, runs.plaza ?? []), ...sseSection(cfg, runs.plaza ?? []));
  lines.push(...soakSection(cfg, runs), ...clusterSoakSection(cfg, runs));
  const generator = rows
    .filter((r) => r.key.endsWith('.cpu'))
    .map((r) => r.key.replace(/\.cpu$/, ''))
    .map((k) => `${k.replace('burst.', '')}: ${serverIds.map((id) => `${id} ${format((med[id]?.[`${k}.genBusy`] ?? NaN) * 100, '')}%`).join(', ')}`);
  if (generator.length) {
    lines.push(
      '<details><summary>Load generator busy time during bursts (bulk generator CPU ÷ wall time; near 100% means the wall time is the generator\'s, not the server\'s)</summary>',
      '',
      ...generator.map((g) => `- ${g}`),
      '',
      '</details>',
      '',
    );
  }
  const foreign = serverIds.flatMap((id) => (runs[id] ?? []).map((r) => r['load.foreignMax'])).filter(Number.isFinite);
  if (foreign.length) {
    lines.push(
      `Other processes on the machine (not this bench) used at most ${Math.max(...foreign).toFixed(2)} cores during a kept measurement ` +
        `(median of the per-run maxima: ${median(foreign).toFixed(2)}). Disturbed burst and steady measurements (> 0.2 cores) were repeated ` +
        `up to twice and the least disturbed kept; latency and wall time suffer most from such load, CPU per delivery much less.`,
      '',
    );
  }
  lines.push('<details><summary>Every run</summary>', '');
  runs = Object.fromEntries(Object.entries(runs).map(([id, list]) => [id, list.map((r) => derive(r, cfg))]));
  // The soaks' time series are in their own sections above.
  const keys = [...new Set(Object.values(runs).flatMap((list) => list.flatMap((r) => Object.keys(r))))].filter((key) => !isSeriesKey(key)).sort();
  lines.push(`| Metric | ${serverIds.map((id) => `${id} (runs)`).join(' | ')} |`);
  lines.push(`|---|${serverIds.map(() => '---').join('|')}|`);
  for (const key of keys) {
    const row = serverIds.map((id) => (runs[id] ?? []).map((r) => (Number.isFinite(r[key]) ? Number(r[key].toPrecision(4)) : '–')).join(', '));
    lines.push(`| ${key} | ${row.join(' | ')} |`);
  }
  lines.push('', '</details>', '');
  for (const note of notes) lines.push(`- ${note}`);
  return `${lines.join('\n')}\n`;
}

const range = (cfg, list, key, unit) => {
  const values = list.map((r) => derive(r, cfg)[key]).filter(Number.isFinite);
  return values.length ? values.map((v) => (unit === '×' ? v.toFixed(2) : format(v, unit))).join(', ') : '–';
};

/** The v1 target, as the README states it: server CPU per delivery, v1 ÷ plain, ≤ 1.15. */
export const V1_TARGET = 1.15;

/** plaza.v1 against the plain path, Plaza only, from the same runs. */
function v1Section(cfg, plazaRuns) {
  const med = medians({ plaza: plazaRuns }, cfg).plaza ?? {};
  if (!Number.isFinite(med['v1.burst.cpu'])) return [];
  const n = count(cfg.small);
  const rows = [
    [`burst ${n} subs × ${cfg.messages} × 64 B: server CPU per delivery`, `burst.${cfg.small}.64.cpu`, 'v1.burst.cpu', 'µs', 'v1.ratio.burstCpu'],
    [`burst ${n} subs × ${cfg.messages} × 64 B: wall time to last delivery`, `burst.${cfg.small}.64.wall`, 'v1.burst.wall', 'ms'],
    [`the same burst, the plain payload as long as the v1 envelope (233 B): server CPU per delivery`, 'v1.control.cpu', 'v1.burst.cpu', 'µs', 'v1.ratio.controlCpu'],
    [`steady ${n} subs, 100 msg/s: server CPU per delivery`, 'steady.cpu', 'v1.steady.cpu', 'µs', 'v1.ratio.steadyCpu'],
    [`steady ${n} subs, 100 msg/s: latency p50`, 'steady.p50', 'v1.steady.p50', 'ms'],
    [`steady ${n} subs, 100 msg/s: latency p99`, 'steady.p99', 'v1.steady.p99', 'ms'],
  ];
  const lines = [
    `**plaza.v1 against the plain path** (Plaza only; the same ${n} subscribers and publisher in one room, speaking plaza.v1: ` +
      `JSON publish requests in, \`message\` envelopes of 233 B out for a 64 B payload. Plain steady runs ${cfg.steady.seconds} s, v1 steady ${cfg.steadyShort.seconds} s.)`,
    '',
    '| Metric | plain | plaza.v1 | v1 ÷ plain (runs) | Target | Result |',
    '|---|---:|---:|---:|---|---|',
  ];
  for (const [label, plainKey, v1Key, unit, ratioKey] of rows) {
    const r = ratioKey ? med[ratioKey] : med[v1Key] / med[plainKey];
    const runsText = ratioKey ? ` (${range(cfg, plazaRuns, ratioKey, '×')})` : '';
    const target = ratioKey === 'v1.ratio.burstCpu' ? `≤ ${V1_TARGET}×` : '';
    const result = target ? (r <= V1_TARGET ? 'PASS' : 'MISS') : '';
    lines.push(`| ${label} | ${format(med[plainKey], unit)} ${unit} | ${format(med[v1Key], unit)} ${unit} | ${Number.isFinite(r) ? `${r.toFixed(2)}×` : '–'}${runsText} | ${target} | ${result} |`);
  }
  lines.push('');
  return lines;
}

/** Publishing once (issue #22): CPU per publish with a publish id on each, against none. */
function publishIdsSection(cfg, plazaRuns) {
  const med = medians({ plaza: plazaRuns }, cfg).plaza ?? {};
  const modes = [['v1', 'one node (window in memory)'], ['cluster', 'two nodes + Redis (window in the publish script)']].filter(([mode]) => Number.isFinite(med[`publishIds.${mode}.ids.cpu`]));
  if (modes.length === 0) return [];
  const lines = [
    `**Publishing once** (issue #22): a burst of ${cfg.publishIds.messages} plaza.v1 publishes of 64 B to ${cfg.publishIds.subscribers} subscribers, ` +
      'without and with a `publishId` on each; server CPU per publish (nodes + Redis in the cluster).',
    '',
    '| Where | without ids | with ids | with ÷ without (runs) | Target | Result |',
    '|---|---:|---:|---:|---|---|',
  ];
  for (const [mode, label] of modes) {
    const key = `publishIds.${mode}.ratio`;
    const r = med[key];
    lines.push(`| ${label} | ${format(med[`publishIds.${mode}.plain.cpu`], 'µs')} µs | ${format(med[`publishIds.${mode}.ids.cpu`], 'µs')} µs | ${Number.isFinite(r) ? `${r.toFixed(2)}×` : '–'} (${range(cfg, plazaRuns, key, '×')}) | ≤ 1.10× | ${r <= 1.1 ? 'PASS' : 'MISS'} |`);
  }
  lines.push('');
  return lines;
}

/** SSE against WebSocket (issue #21): CPU per delivery in a burst, memory per connection. */
function sseSection(cfg, plazaRuns) {
  const med = medians({ plaza: plazaRuns }, cfg).plaza ?? {};
  if (!Number.isFinite(med['sse.sse.cpu'])) return [];
  const lines = [
    `**SSE against WebSocket** (issue #21): ${count(cfg.small)} plaza.v1 subscribers of one room over each transport, each on a fresh server; ` +
      `a burst of ${cfg.messages} messages of 64 B from a plaza.v1 WebSocket publisher (server CPU per delivery, median of ${cfg.burstRepeats}), ` +
      'and what each connection keeps after a full GC.',
    '',
    '| Figure | WebSocket | SSE | SSE ÷ WebSocket (runs) | Target | Result |',
    '|---|---:|---:|---:|---|---|',
  ];
  const rows = [
    ['CPU per delivery', 'cpu', 'µs', 1, 2],
    ['heap per connection', 'heap', 'KiB', 1024, 1],
    ['RSS per connection', 'rss', 'KiB', 1024, 1],
  ];
  for (const [label, figure, unit, scale, target] of rows) {
    const key = `sse.ratio.${figure}`;
    const r = med[key];
    lines.push(
      `| ${label} | ${format(med[`sse.websocket.${figure}`] / scale, unit)} ${unit} | ${format(med[`sse.sse.${figure}`] / scale, unit)} ${unit} | ` +
        `${Number.isFinite(r) ? `${r.toFixed(2)}×` : '–'} (${range(cfg, plazaRuns, key, '×')}) | ≤ ${target}× | ${r <= target ? 'PASS' : 'MISS'} |`,
    );
  }
  lines.push('');
  return lines;
}

/** Two Plaza nodes and Redis against one node, the same plaza.v1 load. */
function clusterSection(cfg, plazaRuns) {
  const med = medians({ plaza: plazaRuns }, cfg).plaza ?? {};
  if (!Number.isFinite(med['cluster.burst.cpu'])) return [];
  const n = count(cfg.small);
  const st = cfg.steadyShort;
  const rows = [
    [`burst ${cfg.messages} × 64 B: wall time to last delivery`, 'v1.burst.wall', 'cluster.burst.wall', 'ms'],
    [`burst: server CPU per delivery (both nodes)`, 'v1.burst.cpu', 'cluster.burst.cpu', 'µs'],
    [`burst: Redis CPU per delivery`, null, 'cluster.burst.redisCpu', 'µs'],
    [`burst: CPU per delivery, nodes + Redis`, 'v1.burst.cpu', 'cluster.burst.totalCpu', 'µs'],
    [`the same burst from a plain publisher: wall time to last delivery`, 'v1.burst.wall', 'clusterPlain.burst.wall', 'ms'],
    [`the same burst from a plain publisher: CPU per delivery, nodes + Redis`, 'v1.burst.cpu', 'clusterPlain.burst.totalCpu', 'µs'],
    [`steady ${st.rate} msg/s × ${st.seconds} s: CPU per delivery, nodes + Redis`, 'v1.steady.cpu', 'cluster.steady.totalCpu', 'µs'],
    [`steady: latency p50`, 'v1.steady.p50', 'cluster.steady.p50', 'ms'],
    [`steady: latency p99`, 'v1.steady.p99', 'cluster.steady.p99', 'ms'],
    [`steady: latency max`, 'v1.steady.max', 'cluster.steady.max', 'ms'],
  ];
  const lines = [
    `**Cluster**: ${n} plaza.v1 subscribers in one room split between two Plaza nodes joined by a private Redis ` +
      `(\`redis-server\`, no persistence), the publisher on the first node, against one node without Redis (the v1 rows above). ` +
      `The plain-publisher rows are a control for the v1 request path: Plaza never answers a plain client's publish.`,
    '',
    '| Metric | one node | two nodes + Redis | two ÷ one | two nodes (runs) |',
    '|---|---:|---:|---:|---|',
  ];
  for (const [label, oneKey, twoKey, unit] of rows) {
    const one = oneKey ? med[oneKey] : NaN;
    lines.push(`| ${label} | ${oneKey ? `${format(one, unit)} ${unit}` : '–'} | ${format(med[twoKey], unit)} ${unit} | ${ratio(med[twoKey], one)} | ${range(cfg, plazaRuns, twoKey, unit)} |`);
  }
  lines.push('');
  return lines;
}

// ---------------------------------------------------------------------------------------------
// SVG chart

const COLORS = { plaza: '#2563eb', bun: '#111827', ws: '#9ca3af', socketio: '#f59e0b' };
const LABELS = { plaza: 'Plaza', bun: 'Bun (uWS)', ws: 'bare ws', socketio: 'socket.io' };

/** Short labels for bars: 209,773 → 210k. */
function compact(value, unit) {
  if (value >= 1e6) return `${(value / 1e6).toFixed(value >= 1e7 ? 0 : 1)}M`;
  if (value >= 1e4) return `${Math.round(value / 1e3)}k`;
  return format(value, unit);
}

const esc = (text) => String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * One panel of grouped bars with its own linear scale from zero. `series` is
 * [{ id, label, color }]; each group's `values` are keyed by series id.
 */
function panel({ x, y, width, height, title, unit, note, groups, series, lowerIsBetter, legend = false, narrow = false }) {
  const out = [];
  const values = groups.flatMap((g) => series.map((se) => g.values[se.id])).filter(Number.isFinite);
  const max = Math.max(...values, 1e-9) * 1.15;
  const top = y + 34;
  const plotH = height - 34 - 30;
  const base = top + plotH;
  // Narrow panels (six in a row) get a smaller title and a shorter second line.
  out.push(`<text x="${x}" y="${y + 14}" class="${narrow ? 'tn' : 't'}">${esc(title)}</text>`);
  const better = narrow ? ` ${lowerIsBetter ? '↓' : '↑'}` : `, ${lowerIsBetter ? 'lower' : 'higher'} is better`;
  out.push(`<text x="${x}" y="${y + 28}" class="s">${esc(note ?? unit)}${better}</text>`);
  out.push(`<line x1="${x}" y1="${base}" x2="${x + width}" y2="${base}" class="axis"/>`);
  const groupW = width / groups.length;
  const barW = Math.min(36, (groupW - 16) / series.length);
  groups.forEach((group, gi) => {
    const gx = x + gi * groupW + (groupW - barW * series.length) / 2;
    series.forEach((se, si) => {
      const v = group.values[se.id];
      const bx = gx + si * barW;
      if (!Number.isFinite(v)) {
        out.push(`<text x="${bx + barW / 2}" y="${base - 4}" class="v">n/a</text>`);
        return;
      }
      const h = Math.max(1, (v / max) * plotH);
      out.push(`<rect x="${bx.toFixed(1)}" y="${(base - h).toFixed(1)}" width="${(barW - 3).toFixed(1)}" height="${h.toFixed(1)}" fill="${se.color}"><title>${esc(`${se.label}: ${format(v, unit)} ${unit}`)}</title></rect>`);
      out.push(`<text x="${(bx + (barW - 3) / 2).toFixed(1)}" y="${(base - h - 3).toFixed(1)}" class="v">${esc(compact(v, unit))}</text>`);
    });
    if (group.label) out.push(`<text x="${(x + gi * groupW + groupW / 2).toFixed(1)}" y="${base + 16}" class="g">${esc(group.label)}</text>`);
  });
  if (legend) {
    // The panel's own series, as coloured squares under the axis (~6 px per character).
    let lx = x;
    for (const se of series) {
      out.push(`<rect x="${lx}" y="${base + 8}" width="9" height="9" fill="${se.color}"/><text x="${lx + 12}" y="${base + 16}" class="s">${esc(se.label)}</text>`);
      lx += 22 + se.label.length * 6;
    }
  }
  return out.join('\n');
}

export function chartSvg({ cfg, runs, serverIds, date }) {
  const med = medians(runs, cfg);
  const servers = serverIds.map((id) => ({ id, label: LABELS[id], color: COLORS[id] }));
  const pick = (key) => Object.fromEntries(serverIds.map((id) => [id, med[id]?.[key]]));
  const W = 980;
  const parts = [];
  const burstGroups = [];
  for (const n of [cfg.big, cfg.small]) {
    for (const size of cfg.sizes) burstGroups.push({ label: `${count(n)} subs, ${sizeLabel(size)}`, values: pick(`burst.${n}.${size}.cpu`) });
  }
  if (cfg.rooms) burstGroups.push({ label: `${cfg.rooms.count} rooms × ${cfg.rooms.members}, 64 B`, values: pick('rooms.cpu') });
  parts.push(
    panel({ x: 30, y: 50, width: W - 60, height: 250, title: `Bursts: server CPU per delivery (${cfg.messages} messages back to back; rooms: ${cfg.rooms?.messages} per room)`, unit: 'µs', groups: burstGroups, series: servers, lowerIsBetter: true }),
  );
  const small = [
    { title: 'Steady: deliveries', unit: 'per CPU-second', note: 'per CPU-s', key: 'steady.perCpuSecond', lower: false },
    { title: 'Sustained rate', unit: 'msg/s', note: `msg/s, p99 < ${cfg.ladder?.p99Ms} ms`, key: 'ladder.max', lower: false },
    { title: 'RSS / added client', unit: 'KiB', note: 'KiB, plain', key: 'marginal.plain.rssPerConnKiB', lower: true },
    { title: 'RSS / added member', unit: 'KiB', note: 'KiB, rooms', key: 'marginal.members.rssPerConnKiB', lower: true },
    { title: 'Connects', unit: 'per CPU-second', note: 'per CPU-s, warm', key: 'connectAuth.none.perCpuSecond', lower: false },
    { title: 'Reconnect storm', unit: 'µs', note: 'µs CPU each', key: 'storm.plain.cpuPerConn', lower: true },
  ];
  const pw = (W - 60) / small.length;
  small.forEach((m, i) => {
    parts.push(panel({ x: 30 + i * pw, y: 320, width: pw - 16, height: 220, title: m.title, unit: m.unit, note: m.note, groups: [{ label: '', values: pick(m.key) }], series: servers, lowerIsBetter: m.lower, narrow: true }));
  });
  // Plaza against itself: plaza.v1 against plain, and a two-node cluster against one node.
  const p = med.plaza ?? {};
  const plain = { id: 'plain', label: 'plain', color: COLORS.plaza };
  const v1 = { id: 'v1', label: 'plaza.v1', color: '#60a5fa' };
  const one = { id: 'one', label: '1 node', color: COLORS.plaza };
  const two = { id: 'two', label: '2 nodes', color: '#7c3aed' };
  const twoRedis = { id: 'twoRedis', label: '2 nodes + Redis', color: '#c4b5fd' };
  const n = count(cfg.small);
  const plazaPanels = [
    { title: 'v1 vs plain: CPU/delivery', unit: 'µs', note: `µs, burst ${n} × 64 B`, series: [plain, v1], values: { plain: p[`burst.${cfg.small}.64.cpu`], v1: p['v1.burst.cpu'] } },
    { title: 'Cluster: burst wall time', unit: 'ms', note: `ms, ${n} subs × ${cfg.messages}`, series: [one, two], values: { one: p['v1.burst.wall'], two: p['cluster.burst.wall'] } },
    { title: 'Cluster: burst CPU/deliv.', unit: 'µs', note: 'µs', series: [one, two, twoRedis], values: { one: p['v1.burst.cpu'], two: p['cluster.burst.cpu'], twoRedis: p['cluster.burst.totalCpu'] } },
    { title: 'Cluster: steady p99', unit: 'ms', note: `ms, ${cfg.steadyShort.rate} msg/s`, series: [one, two], values: { one: p['v1.steady.p99'], two: p['cluster.steady.p99'] } },
  ];
  const ppw = (W - 60) / plazaPanels.length;
  plazaPanels.forEach((m, i) => {
    parts.push(panel({ x: 30 + i * ppw, y: 588, width: ppw - 24, height: 220, title: m.title, unit: m.unit, note: m.note, groups: [{ label: '', values: m.values }], series: m.series, lowerIsBetter: true, legend: true }));
  });
  const legend = servers
    .map((se, i) => `<rect x="${30 + i * 120}" y="22" width="12" height="12" fill="${se.color}"/><text x="${48 + i * 120}" y="33" class="l">${se.label}</text>`)
    .join('');
  const H = 830;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif">
<style>
.t { font-size: 14px; font-weight: 600; fill: #111827 }
.tn { font-size: 12px; font-weight: 600; fill: #111827 }
.s { font-size: 11px; fill: #6b7280 }
.v { font-size: 10px; fill: #374151; text-anchor: middle }
.g { font-size: 11px; fill: #374151; text-anchor: middle }
.l { font-size: 12px; fill: #111827 }
.axis { stroke: #d1d5db }
</style>
<rect width="100%" height="100%" fill="#ffffff"/>
${legend}
<text x="${W - 30}" y="33" class="s" text-anchor="end">${esc(`Plaza fan-out benchmark, ${date}, medians of ${cfg.runs} runs; ↑ higher, ↓ lower is better`)}</text>
<line x1="30" y1="560" x2="${W - 30}" y2="560" class="axis"/>
<text x="30" y="575" class="s">Plaza against itself: the plaza.v1 envelope path, and two nodes joined by Redis (plaza.v1)</text>
${parts.join('\n')}
</svg>
`;
}

const SERVER_LABEL = { plaza: 'Plaza', bun: 'Bun (uWS)', ws: 'bare ws', socketio: 'socket.io' };

/**
 * Scenarios that failed in a run (a handshake past its timeout, a generator gone, a time limit) or
 * were not run: the bench went on without them, so their rows hold the other runs' medians, or '–'.
 */
export function failuresSection(failures, cfg) {
  if (failures.length === 0) return [];
  const lines = [
    `**Incomplete scenarios** (${failures.length}): each failed (or was not run) in the run named and the bench went on from a fresh server process ` +
      `and fresh load generators; their rows are the medians of the runs that completed (\`–\` when none did).`,
    '',
    '| Server | Run | Scenario | What happened |',
    '|---|---:|---|---|',
  ];
  for (const f of failures) {
    lines.push(`| ${SERVER_LABEL[f.server] ?? f.server} | ${f.run + 1} of ${cfg.runs} | \`${f.scenario}\` | ${String(f.reason).replaceAll('|', '\\|')} |`);
  }
  lines.push('');
  return lines;
}
