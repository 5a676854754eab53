/**
 * The soak scenario's part of the report (soak.mjs): time series side by side and a summary with
 * the issue's target. A soak runs once per bench, so these read the one run that has its keys.
 */

/** Plaza's heap growth over the soak may exceed bare ws's by at most this (issue 17: "a few MB"). */
export const SOAK_HEAP_MARGIN_MIB = 5;

const mib = (value) => (Number.isFinite(value) ? value.toFixed(1) : '–');
const int = (value) => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '–');
const signed = (value) => (Number.isFinite(value) ? `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(1)}` : '–');

/** Keys that only the soak sections show (the "Every run" table leaves them out). */
export const isSeriesKey = (key) => key.startsWith('soak.at.');

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
