/**
 * The soak scenarios' part of the report (soak.mjs): time series side by side and a summary with
 * the issues' targets. A soak runs once per bench, so these read the one run that has its keys.
 */
import { CLUSTER_GAUGES, FD_SLACK, PHASES } from './soak.mjs';

/** Plaza's heap growth over the soak may exceed bare ws's by at most this (issue 17: "a few MB"). */
export const SOAK_HEAP_MARGIN_MIB = 5;

const mib = (value) => (Number.isFinite(value) ? value.toFixed(1) : '–');
const int = (value) => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '–');
const signed = (value) => (Number.isFinite(value) ? `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(1)}` : '–');

/** Keys that only the soak sections show (the "Every run" table leaves them out). */
export const isSeriesKey = (key) => key.startsWith('soak.at.') || key.startsWith('clusterSoak.at.');

const soakRun = (runs, id, key) => (runs[id] ?? []).find((run) => Number.isFinite(run[key]));

/** Issue 17: Plaza and bare ws relaying the same traffic, memory side by side. */
export function soakSection(cfg, runs) {
  const p = soakRun(runs, 'plaza', 'soak.samples');
  const w = soakRun(runs, 'ws', 'soak.samples');
  const incomplete = ['plaza', 'ws'].filter((id) => soakRun(runs, id, 'soak.incomplete'));
  if (!p && !w) return incomplete.length ? [`**Soak**: incomplete for ${incomplete.join(', ')} (a relay did not deliver everything within 60 s).`, ''] : [];
  const s = cfg.soak;
  const busy = s.rooms - 1 - s.slowRooms;
  const lines = [
    `**Soak** (issue 17): ${int((p ?? w)['soak.messages'])} messages of ${s.size === 1024 ? '1 KiB' : `${s.size} B`} relayed through ${s.rooms} rooms of ${s.members} subscribers ` +
      `and a publisher each (plaza.v1; bare ws: the rooms peer): first one message into a quiet room, then ${s.step} per round into ` +
      `each of ${busy} busy rooms and one every 10 rounds into each of ${s.slowRooms} slow ones, each round delivered before the next; then ` +
      `${s.idleMs / 1000} s without traffic. Plaza runs with its defaults and \`--rate-limit 0\`. **Heap** is heap in use after a full ` +
      `garbage collection (the preload's, bench/peers/memory-report.mjs), read from Plaza's /metrics and from the peer's memory line; ` +
      `*as read* is the same reading just before that collection; RSS is Plaza's \`process_resident_memory_bytes\` and the peer's VmRSS.`,
    '',
    '| Point | Plaza heap MiB | (as read) | Plaza RSS MiB | Plaza history: entries (MiB) | bare ws heap MiB | (as read) | bare ws RSS MiB |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const count = Math.max(p?.['soak.samples'] ?? 0, w?.['soak.samples'] ?? 0);
  const at = (run, k, key) => run?.[`soak.at.${k}.${key}`];
  for (let k = 0; k < count; k++) {
    const messages = at(p, k, 'messages') ?? at(w, k, 'messages');
    const label = k === 0 ? 'start (after the quiet room\'s message)' : k === count - 1 ? `idle ${s.idleMs / 1000} s later` : k === count - 2 ? `${int(messages)} messages, traffic ends` : `${int(messages)} messages`;
    lines.push(
      `| ${label} | ${mib(at(p, k, 'heapMiB'))} | ${mib(at(p, k, 'heapReadMiB'))} | ${mib(at(p, k, 'rssMiB'))} | ${int(at(p, k, 'historyEntries'))} (${mib(at(p, k, 'historyMiB'))}) | ` +
        `${mib(at(w, k, 'heapMiB'))} | ${mib(at(w, k, 'heapReadMiB'))} | ${mib(at(w, k, 'rssMiB'))} |`,
    );
  }
  lines.push('', '| Summary | Plaza | bare ws | Plaza − ws | Target | Result |', '|---|---:|---:|---:|---|---|');
  const rows = [
    ['heap growth, start → end of traffic', 'soak.heapGrowthMiB', true],
    [`heap growth, start → ${s.idleMs / 1000} s after traffic`, 'soak.heapGrowthIdleMiB', true],
    ['RSS growth, start → end of traffic', 'soak.rssGrowthMiB', false],
    [`RSS growth, start → ${s.idleMs / 1000} s after traffic`, 'soak.rssGrowthIdleMiB', false],
    ['heap growth under traffic, first reading after start → end of traffic', 'soak.heapUnderTrafficMiB', false],
    ['RSS growth under traffic, first reading after start → end of traffic', 'soak.rssUnderTrafficMiB', false],
    ['heap as read, highest reading', 'soak.heapReadPeakMiB', false],
  ];
  for (const [label, key, judged] of rows) {
    const pv = p?.[key];
    const wv = w?.[key];
    const diff = pv - wv;
    const growth = key !== 'soak.heapReadPeakMiB';
    const result = judged ? (Number.isFinite(diff) && diff <= SOAK_HEAP_MARGIN_MIB ? 'PASS' : 'MISS') : '';
    const cell = (v) => (growth ? `${signed(v)} MiB` : `${mib(v)} MiB`);
    lines.push(`| ${label} | ${cell(pv)} | ${cell(wv)} | ${growth ? `${signed(diff)} MiB` : ''} | ${judged ? `Plaza ≤ bare ws + ${SOAK_HEAP_MARGIN_MIB} MiB` : ''} | ${result} |`);
  }
  const secs = (run) => (Number.isFinite(run?.['soak.trafficSeconds']) ? `${run['soak.trafficSeconds'].toFixed(1)} s` : '–');
  lines.push('', `Traffic took ${secs(p)} (Plaza) and ${secs(w)} (bare ws).${incomplete.length ? ` Incomplete: ${incomplete.join(', ')}.` : ''}`, '');
  return lines;
}

const NODE_COLUMNS = [
  ['connections', 'connections', int],
  ['rooms', 'backplane rooms', int],
  ['channels', 'backplane channels', int],
  ['orphans', 'members without connection', int],
  ['heapMiB', 'heap MiB', mib],
  ['heapReadMiB', '(as read)', mib],
  ['rssMiB', 'RSS MiB', mib],
  ['fds', 'open fds', int],
];

/** The cluster soak's verdict per gauge: { label, cells: [per node text], ok }. */
export function clusterSoakVerdicts(run) {
  const samples = run['clusterSoak.samples'];
  const last = samples - 1;
  const get = (k, node, key) => run[`clusterSoak.at.${k}.n${node}.${key}`];
  const nodes = [0, 1].filter((i) => Number.isFinite(get(0, i, 'fds')));
  const verdicts = [];
  for (const [key] of CLUSTER_GAUGES) {
    const label = NODE_COLUMNS.find(([k]) => k === key)[1];
    const ok = nodes.every((i) => get(last, i, key) === 0 && get(0, i, key) === 0);
    verdicts.push({ label: `${label}: baseline → end`, target: '0 → 0', cells: nodes.map((i) => `${int(get(0, i, key))} → ${int(get(last, i, key))} (peak ${int(peak(run, i, key))})`), ok });
  }
  verdicts.push({
    label: 'open fds: baseline → end',
    target: `end ≤ baseline + ${FD_SLACK}`,
    cells: nodes.map((i) => `${int(get(0, i, 'fds'))} → ${int(get(last, i, 'fds'))} (peak ${int(peak(run, i, 'fds'))})`),
    ok: nodes.every((i) => get(last, i, 'fds') <= get(0, i, 'fds') + FD_SLACK),
  });
  for (const [key, label] of [['heapMiB', 'heap after GC'], ['rssMiB', 'RSS']]) {
    verdicts.push({ label: `${label}: baseline → end`, target: '', cells: nodes.map((i) => `${mib(get(0, i, key))} → ${mib(get(last, i, key))} MiB (peak ${mib(peak(run, i, key))})`), ok: null });
  }
  const keys = (k) => run[`clusterSoak.at.${k}.presenceKeys`];
  let keyPeak = 0;
  for (let k = 0; k < samples; k++) keyPeak = Math.max(keyPeak, keys(k));
  verdicts.push({ label: 'presence keys in Redis (all nodes)', target: '0 at the end', cells: [`${int(keys(0))} → ${int(keys(last))} (peak ${int(keyPeak)})`], ok: keys(last) === 0 });
  return verdicts;
}

function peak(run, node, key) {
  let max = -Infinity;
  for (let k = 0; k < run['clusterSoak.samples']; k++) max = Math.max(max, run[`clusterSoak.at.${k}.n${node}.${key}`]);
  return max;
}

/** Issue 18: two nodes under churn, then idle; every gauge back to its baseline. */
export function clusterSoakSection(cfg, runs) {
  const run = soakRun(runs, 'plaza', 'clusterSoak.samples');
  if (!run) return [];
  const c = cfg.clusterSoak;
  const kinds = {};
  for (const [key, n] of Object.entries(run)) {
    const m = /^clusterSoak\.kinds\.([^.]+)\.(.+)$/.exec(key);
    if (m) (kinds[m[1]] ??= []).push(`${int(n)} ${m[2]}`);
  }
  const lines = [
    `**Cluster soak** (issue 18): two Plaza nodes and a private Redis (\`--presence-ttl 2000\`, so presence keys expire 4 s after their last ` +
      `refresh; \`--max-rooms-per-connection 3\`; \`--api-key\`; \`--rate-limit 0\`). For ${run['clusterSoak.churnSeconds']} s, ${c.lanes} lanes ` +
      `open ${int(run['clusterSoak.clients'])} short-lived clients one after another, alternating nodes, over ${c.rooms} rooms (bench/churn.mjs), ` +
      `while ${run['clusterSoak.members']} plaza.v1 members stay joined with presence; then ${run['clusterSoak.idleSeconds']} s with no client. ` +
      `Clients by kind and outcome: ${Object.entries(kinds).map(([kind, list]) => `${kind} ${list.join(', ')}`).join('; ')}. ` +
      `Gauges from each node's /metrics, fds from /proc/<pid>/fd, heap after a full garbage collection (as read just before it in brackets), ` +
      `presence keys counted with SCAN \`${'plaza:{*}:presence'}\`.`,
    '',
  ];
  const samples = run['clusterSoak.samples'];
  for (const node of [0, 1]) {
    if (!Number.isFinite(run[`clusterSoak.at.0.n${node}.fds`])) continue;
    lines.push(`Node ${node + 1}:`, '');
    lines.push(`| t (s) | phase | ${NODE_COLUMNS.map(([, label]) => label).join(' | ')} | presence keys (all nodes) |`);
    lines.push(`|---:|---|${NODE_COLUMNS.map(() => '---:').join('|')}|---:|`);
    for (let k = 0; k < samples; k++) {
      const at = `clusterSoak.at.${k}`;
      lines.push(
        `| ${run[`${at}.t`].toFixed(0)} | ${PHASES[run[`${at}.phase`]]} | ${NODE_COLUMNS.map(([key, , fmt]) => fmt(run[`${at}.n${node}.${key}`])).join(' | ')} | ${int(run[`${at}.presenceKeys`])} |`,
      );
    }
    lines.push('');
  }
  lines.push('| After the idle phase | node 1 | node 2 | Target | Result |', '|---|---|---|---|---|');
  for (const v of clusterSoakVerdicts(run)) {
    const cells = v.cells.length === 1 ? [v.cells[0], '(cluster-wide)'] : v.cells;
    lines.push(`| ${v.label} | ${cells.join(' | ')} | ${v.target} | ${v.ok === null ? '' : v.ok ? 'PASS' : 'MISS'} |`);
  }
  lines.push('');
  return lines;
}
