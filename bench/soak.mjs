/**
 * The soak scenario: not speed but what is left behind. It runs once per bench (in the first
 * run), on fresh processes, and returns a time series as flat metric keys that soak-report.mjs
 * turns into tables.
 *
 * `soak` (issue 17): Plaza and the bare-ws rooms peer relay a few hundred thousand 1 KiB messages
 * through rooms of mixed activity: first one plaza.v1 client publishes a single message into a
 * quiet room (a live history entry of a quiet room is what used to pin every later message in
 * Plaza's heap until its TTL), then busy rooms take most of the traffic and a few slow rooms a
 * message now and then. Heap in use and RSS are sampled as the traffic goes and after it stops,
 * each time right after a full garbage collection that a preload runs in both servers on SIGUSR2
 * (peers/memory-report.mjs): Plaza's from its /metrics, the peer's from the preload's line and
 * VmRSS.
 */
import { rssKiB } from './proc.mjs';
import { scrape } from './scrape.mjs';
import { collectGarbage } from './servers.mjs';
import { nowMs } from './subscriber.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const MiB = 2 ** 20;

/**
 * Memory of the server under test, in MiB: heap in use as read (`heapReadMiB`: what a dashboard
 * shows, mostly a matter of when V8 last ran a mark-compact), then, after the preload's full
 * garbage collection, the heap the server holds on to (`heapMiB`) and RSS. Plaza's figures come
 * from its /metrics (with its history gauges), the peer's from its memory line and VmRSS.
 */
async function memory(ctx) {
  const node = ctx.target.nodes[0];
  if (ctx.server.id === 'plaza') {
    const read = await scrape(node.port);
    await collectGarbage(node.child);
    const m = await scrape(node.port);
    return {
      heapReadMiB: read.get('nodejs_heap_used_bytes') / MiB,
      heapMiB: m.get('nodejs_heap_used_bytes') / MiB,
      rssMiB: m.get('process_resident_memory_bytes') / MiB,
      historyEntries: m.get('plaza_history_entries'),
      historyMiB: m.get('plaza_history_bytes') / MiB,
    };
  }
  const { heapUsed, liveHeapUsed } = await collectGarbage(node.child);
  return { heapReadMiB: heapUsed / MiB, heapMiB: liveHeapUsed / MiB, rssMiB: rssKiB(node.pid) / 1024 };
}

/**
 * `soak` — see the top of this file. cfg.soak: { rooms, slowRooms, members, messages, step, size,
 * samples, idleMs }: `rooms` rooms (the first quiet, the next `slowRooms` slow, the rest busy) of
 * `members` subscribers and one publisher each; busy rooms get `step` messages each per round,
 * slow rooms one message every 10 rounds, until `messages` have been sent; `samples` readings on
 * the way, then `idleMs` without traffic.
 */
export function soak() {
  return {
    id: 'soak',
    mode: 'soak',
    once: true,
    async run(ctx) {
      const s = ctx.cfg.soak;
      const out = {};
      const series = [];
      const record = (label, messages, seconds, m) => {
        const k = series.length;
        series.push(m);
        out[`soak.at.${k}.messages`] = messages;
        out[`soak.at.${k}.seconds`] = seconds;
        out[`soak.at.${k}.heapReadMiB`] = m.heapReadMiB;
        out[`soak.at.${k}.heapMiB`] = m.heapMiB;
        out[`soak.at.${k}.rssMiB`] = m.rssMiB;
        if (m.historyEntries !== undefined) {
          out[`soak.at.${k}.historyEntries`] = m.historyEntries;
          out[`soak.at.${k}.historyMiB`] = m.historyMiB;
        }
        const history = m.historyEntries === undefined ? '' : `, history ${m.historyEntries} entries (${m.historyMiB.toFixed(1)} MiB)`;
        ctx.log(`${label.padEnd(24)} heap ${m.heapMiB.toFixed(1)} MiB (as read ${m.heapReadMiB.toFixed(1)}), RSS ${m.rssMiB.toFixed(1)} MiB${history}`);
      };

      const { rooms } = await ctx.population(s.rooms * s.members, { rooms: s.rooms });
      const [quiet, ...others] = rooms;
      const slow = others.slice(0, s.slowRooms);
      const busy = others.slice(s.slowRooms);
      const quietSent = await ctx.relay({ messages: 1, size: s.size, rooms: [quiet] });
      if (!quietSent.complete) return { 'soak.incomplete': 1 };
      await ctx.quiesce();
      record('start', 1, 0, await memory(ctx));

      const t0 = nowMs();
      let sent = 1;
      let round = 0;
      let nextSample = s.messages / s.samples;
      while (sent < s.messages) {
        const r = await ctx.relay({ messages: s.step, size: s.size, rooms: busy });
        if (!r.complete) return { ...out, 'soak.incomplete': 1 };
        sent += s.step * busy.length;
        if (++round % 10 === 0) {
          const q = await ctx.relay({ messages: 1, size: s.size, rooms: slow });
          if (!q.complete) return { ...out, 'soak.incomplete': 1 };
          sent += slow.length;
        }
        if (sent >= nextSample && sent < s.messages) {
          record(`${sent.toLocaleString('en-US')} messages`, sent, (nowMs() - t0) / 1000, await memory(ctx));
          nextSample += s.messages / s.samples;
        }
      }
      const trafficSeconds = (nowMs() - t0) / 1000;
      record(`${sent.toLocaleString('en-US')} messages (end)`, sent, trafficSeconds, await memory(ctx));
      await sleep(s.idleMs);
      record(`idle ${Math.round(s.idleMs / 1000)} s`, sent, (nowMs() - t0) / 1000, await memory(ctx));

      // series[1] is the first reading under traffic, once busy rooms' history is full.
      const [start, first, end, idle] = [series[0], series[1], series[series.length - 2], series[series.length - 1]];
      return {
        ...out,
        'soak.messages': sent,
        'soak.trafficSeconds': trafficSeconds,
        'soak.samples': series.length,
        'soak.heapGrowthMiB': end.heapMiB - start.heapMiB,
        'soak.heapGrowthIdleMiB': idle.heapMiB - start.heapMiB,
        'soak.rssGrowthMiB': end.rssMiB - start.rssMiB,
        'soak.rssGrowthIdleMiB': idle.rssMiB - start.rssMiB,
        'soak.heapUnderTrafficMiB': end.heapMiB - first.heapMiB,
        'soak.rssUnderTrafficMiB': end.rssMiB - first.rssMiB,
        'soak.heapReadPeakMiB': Math.max(...series.map((m) => m.heapReadMiB)),
      };
    },
  };
}
