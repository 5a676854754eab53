/**
 * The report's section for issue 16: Plaza against Bun's uWebSockets pub/sub (and the other
 * peers) on the issue's targets — bursts, the sustained ladder, idle memory with rooms and
 * presence, connections per CPU-second — and Plaza's own --write-delay and --compress figures.
 * Works on medians per server (report.mjs `medians`).
 */

const SERVERS = [
  ['plaza', 'Plaza'],
  ['bun', 'Bun (uWS)'],
  ['ws', 'bare ws'],
  ['socketio', 'socket.io'],
];

const fmt = (value, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
const int = (value) => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '–');
const verdict = (ok) => (ok === undefined ? '' : ok ? 'PASS' : 'MISS');

/** Lines of markdown (none when the run measured nothing this section reports). */
export function fanoutSection(cfg, med) {
  const present = SERVERS.filter(([id]) => med[id]);
  const p = med.plaza ?? {};
  const b = med.bun ?? {};
  const w = med.ws ?? {};
  const lines = [];
  const header = (first) => [`| ${first} | ${present.map(([, label]) => label).join(' | ')} | Target | Result |`, `|---|${present.map(() => '---:').join('|')}|---|---|`];
  const rows = [];
  const row = (label, key, show, target, check) => {
    if (!present.some(([id]) => Number.isFinite(med[id][key]))) return;
    rows.push(`| ${label} | ${present.map(([id]) => show(med[id][key])).join(' | ')} | ${target ?? ''} | ${verdict(check)} |`);
  };
  const small = cfg.small.toLocaleString('en-US');
  const mid = cfg.mid.toLocaleString('en-US');
  const ns = (v) => (Number.isFinite(v) ? `${fmt(v, 3)} µs` : '–');
  const withBun = (key) => (Number.isFinite(p[key]) && Number.isFinite(b[key]) ? p[key] <= b[key] : undefined);
  row(`burst ${small} × ${cfg.messages} × 64 B: server CPU per delivery`, `burst.${cfg.small}.64.cpu`, ns, '≤ Bun', withBun(`burst.${cfg.small}.64.cpu`));
  row(`burst ${mid} × ${cfg.midMessages} × 64 B: server CPU per delivery`, `burst.${cfg.mid}.64.cpu`, ns, '≤ Bun', withBun(`burst.${cfg.mid}.64.cpu`));
  const { rates, p99Ms } = cfg.ladder;
  const sustained = rates.includes(3000) ? 3000 : rates[rates.length - 2];
  row(
    `sustained, ${small} subscribers: highest rate with p99 < ${p99Ms} ms`,
    'ladder.max',
    (v) => (Number.isFinite(v) ? (v > 0 ? `${int(v)} msg/s` : 'none') : '–'),
    `Plaza ≥ ${sustained.toLocaleString('en-US')} msg/s`,
    Number.isFinite(p['ladder.max']) ? p['ladder.max'] >= sustained : undefined,
  );
  const idle = 'idleRooms.rssPerConnKiB';
  row(
    `idle ${cfg.idleRooms.members.toLocaleString('en-US')} members of ${cfg.idleRooms.rooms} rooms with presence: RSS per connection`,
    idle,
    (v) => (Number.isFinite(v) ? `${fmt(v, 1)} KiB` : '–'),
    '≤ bare ws (rooms peer)',
    Number.isFinite(p[idle]) && Number.isFinite(w[idle]) ? p[idle] <= w[idle] : undefined,
  );
  row(`the same after a full GC: RSS per connection`, 'idleRooms.liveRssPerConnKiB', (v) => (Number.isFinite(v) ? `${fmt(v, 1)} KiB` : '–'));
  row(`the same after a full GC: heap per connection`, 'idleRooms.liveHeapPerConn', (v) => (Number.isFinite(v) ? `${int(v)} B` : '–'));
  row(`idle ${cfg.big.toLocaleString('en-US')} plain connections: RSS per connection`, 'idle.rssPerConnKiB', (v) => (Number.isFinite(v) ? `${fmt(v, 1)} KiB` : '–'));
  const perCpu = (m) => 1e6 / m['connect.cpuPerConn'];
  rows.push(
    ...(present.some(([id]) => Number.isFinite(med[id]['connect.cpuPerConn']))
      ? [
          `| connect ${cfg.big.toLocaleString('en-US')}: connections accepted per server CPU-second | ${present.map(([id]) => int(perCpu(med[id]))).join(' | ')} | ≥ bare ws | ${verdict(
            Number.isFinite(perCpu(p)) && Number.isFinite(perCpu(w)) ? perCpu(p) >= perCpu(w) : undefined,
          )} |`,
        ]
      : []),
  );
  if (rows.length) lines.push('**Issue 16: against Bun (uWebSockets)**', '', ...header('Metric'), ...rows, '');

  // The ladder, step by step.
  const steps = rates.filter((rate) => present.some(([id]) => Number.isFinite(med[id][`ladder.${rate}.cpuShare`])));
  if (steps.length) {
    lines.push(
      `**Sustained ladder**: ${small} subscribers, one publisher stepping through ${rates.join(' / ')} msg/s of 64 B, ${cfg.ladder.seconds} s each; ` +
        `deliveries per second of wall time, the server's CPU share (1.00 = one core), latency p50 / p99 from the probes. ` +
        `A server's ladder stops after its first step that is incomplete or has p99 ≥ ${p99Ms} ms.`,
      '',
      `| msg/s | ${present.map(([, label]) => label).join(' | ')} |`,
      `|---:|${present.map(() => '---').join('|')}|`,
    );
    for (const rate of steps) {
      const cell = (m) => {
        const k = `ladder.${rate}`;
        if (!Number.isFinite(m[`${k}.cpuShare`])) return '–';
        const lat = Number.isFinite(m[`${k}.p99`]) ? `${fmt(m[`${k}.p50`], 1)} / ${fmt(m[`${k}.p99`], 1)} ms` : 'fell behind';
        return `${int(m[`${k}.deliveriesPerSecond`])}/s, CPU ${fmt(m[`${k}.cpuShare`])}, ${lat}`;
      };
      lines.push(`| ${rate.toLocaleString('en-US')} | ${present.map(([id]) => cell(med[id])).join(' | ')} |`);
    }
    lines.push('');
  }

  // --write-delay against the ladder's own steps (no delay, same run).
  const wd = cfg.writeDelay.rates.filter((rate) => Number.isFinite(p[`writeDelay.${rate}.perCpuSecond`]));
  if (wd.length) {
    lines.push('**--write-delay** (Plaza, 1,000 subscribers; without: the ladder step at the same rate)', '', '| msg/s | deliveries per CPU-second without / with | p50 without / with | p99 without / with |', '|---:|---|---|---|');
    for (const rate of wd) {
      const without = 1e6 / p[`ladder.${rate}.cpu`];
      lines.push(
        `| ${rate} | ${int(without)} / ${int(p[`writeDelay.${rate}.perCpuSecond`])} (${fmt(p[`writeDelay.${rate}.perCpuSecond`] / without)}×) | ` +
          `${fmt(p[`ladder.${rate}.p50`], 1)} / ${fmt(p[`writeDelay.${rate}.p50`], 1)} ms | ${fmt(p[`ladder.${rate}.p99`], 1)} / ${fmt(p[`writeDelay.${rate}.p99`], 1)} ms |`,
      );
    }
    lines.push('');
  }

  // Compression: bytes on the wire and CPU per delivery.
  const z = [
    ['Plaza, no compression', p['compressOff.bytesPerDelivery'], p['compressOff.cpu']],
    ['Plaza --compress (one deflate per message)', p['compress.bytesPerDelivery'], p['compress.cpu']],
    ['bare ws, perMessageDeflate (one deflate per recipient)', w['compress.bytesPerDelivery'], w['compress.cpu']],
  ].filter(([, bytes]) => Number.isFinite(bytes));
  if (z.length) {
    lines.push(
      `**Compression**: ${cfg.compress.messages} JSON chat messages of ${cfg.compress.size} B, back to back, to ${small} subscribers offering permessage-deflate.`,
      '',
      '| Server | bytes on the wire per delivery | server CPU per delivery |',
      '|---|---:|---:|',
      ...z.map(([label, bytes, cpu]) => `| ${label} | ${int(bytes)} B | ${ns(cpu)} |`),
      '',
    );
  }
  return lines;
}
