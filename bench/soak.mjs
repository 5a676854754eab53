/**
 * The soak scenarios: not speed but what is left behind. Both run once per bench (in the first
 * run), each on fresh processes, and return a time series as flat metric keys that
 * soak-report.mjs turns into tables.
 *
 * `soak` (issue 17): Plaza and the bare-ws rooms peer relay a few hundred thousand 1 KiB messages
 * through rooms of mixed activity: first one plaza.v1 client publishes a single message into a
 * quiet room (a live history entry of a quiet room is what used to pin every later message in
 * Plaza's heap until its TTL), then busy rooms take most of the traffic and a few slow rooms a
 * message now and then. Heap in use and RSS are sampled as the traffic goes and after it stops,
 * each time right after a full garbage collection that a preload runs in both servers on SIGUSR2
 * (peers/memory-report.mjs): Plaza's from its /metrics, the peer's from the preload's line and
 * VmRSS.
 *
 * `cluster-soak` (issue 18): two Plaza nodes and a private Redis under connection churn
 * (churn.mjs), then idle; per node the cluster gauges, heap, RSS and open fds over time, and at
 * the end the presence keys left in Redis.
 */
import { fdCount, rssKiB } from './proc.mjs';
import { fetchMetrics, parseSamples, sumByName } from '../test/helpers/metrics.mjs';
import { collectGarbage, SOAK_API_KEY } from './servers.mjs';
import { nowMs } from './subscriber.mjs';

/**
 * A node's /metrics by metric name, the samples of each name added up over their labels
 * (`plaza_connections{protocol="plain"}` and `{protocol="v1"}` give `plaza_connections`); a name
 * with no sample (a cluster gauge on one node) is absent. Read with the tests' reader.
 */
async function scrape(port, { apiKey } = {}) {
  const headers = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
  return sumByName(parseSamples(await fetchMetrics(`http://127.0.0.1:${port}`, { headers })));
}

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

/** Presence hashes Plaza writes (`plaza:{<room>}:presence`); `{` is no wildcard in Redis's MATCH. */
const PRESENCE_PATTERN = 'plaza:{*}:presence';

/** Keys of the private Redis matching `pattern`, counted with SCAN (never KEYS). */
async function countKeys(redis, pattern) {
  let cursor = '0';
  let count = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    count += keys.length;
  } while (cursor !== '0');
  return count;
}

/** The gauges the cluster soak follows, per node; `fds` from /proc, the rest from /metrics. */
export const CLUSTER_GAUGES = [
  ['connections', 'plaza_connections'],
  ['rooms', 'plaza_backplane_rooms'],
  ['channels', 'plaza_backplane_channels'],
  ['orphans', 'plaza_members_without_connection'],
];

/** Open fds may differ from the baseline by this many after the idle phase (a log or Redis reconnect). */
export const FD_SLACK = 5;

/**
 * `cluster-soak` — see the top of this file. cfg.clusterSoak: { seconds, idleMs, sampleMs, lanes,
 * pauseMs, rooms, members } (churn.mjs takes the last four). Samples every `sampleMs`: a baseline,
 * then during the churn, then through `idleMs` without clients.
 */
export function clusterSoak() {
  return {
    id: 'cluster-soak',
    mode: 'cluster-soak',
    only: ['plaza'],
    once: true,
    async run(ctx) {
      const c = ctx.cfg.clusterSoak;
      const { nodes, redisPort } = ctx.target;
      const { Redis } = await import('ioredis');
      const redis = new Redis({ host: '127.0.0.1', port: redisPort, lazyConnect: true, maxRetriesPerRequest: 1 });
      await redis.connect();
      const out = {};
      let k = 0;
      const t0 = nowMs();
      const sample = async (phase) => {
        const at = `clusterSoak.at.${k++}`;
        out[`${at}.t`] = (nowMs() - t0) / 1000;
        out[`${at}.phase`] = PHASES.indexOf(phase);
        out[`${at}.presenceKeys`] = await countKeys(redis, PRESENCE_PATTERN);
        const cells = [];
        for (const [i, node] of nodes.entries()) {
          const read = await scrape(node.port, { apiKey: SOAK_API_KEY });
          await collectGarbage(node.child);
          const m = await scrape(node.port, { apiKey: SOAK_API_KEY });
          const values = Object.fromEntries(CLUSTER_GAUGES.map(([key, name]) => [key, m.get(name) ?? NaN]));
          values.heapReadMiB = read.get('nodejs_heap_used_bytes') / MiB;
          values.heapMiB = m.get('nodejs_heap_used_bytes') / MiB;
          values.rssMiB = m.get('process_resident_memory_bytes') / MiB;
          values.fds = fdCount(node.pid);
          for (const [key, value] of Object.entries(values)) out[`${at}.n${i}.${key}`] = value;
          cells.push(
            `node ${i + 1}: conn ${values.connections}, rooms ${values.rooms}, channels ${values.channels}, orphans ${values.orphans}, ` +
              `heap ${values.heapMiB.toFixed(1)} MiB, RSS ${values.rssMiB.toFixed(0)} MiB, fds ${values.fds}`,
          );
        }
        ctx.log(`${out[`${at}.t`].toFixed(0).padStart(4)} s ${phase.padEnd(8)} presence keys ${out[`${at}.presenceKeys`]}; ${cells.join('; ')}`);
      };
      try {
        await sample('baseline');
        let finished = false;
        const churning = ctx.generators.bulk
          .call('churn', { ports: ctx.target.ports, seconds: c.seconds, lanes: c.lanes, pauseMs: c.pauseMs, rooms: c.rooms, members: c.members, apiKey: SOAK_API_KEY })
          .finally(() => (finished = true));
        churning.catch(() => undefined);
        for (let next = nowMs() + c.sampleMs; !finished; next += c.sampleMs) {
          await Promise.race([churning.catch(() => undefined), sleep(Math.max(0, next - nowMs()))]);
          if (!finished) await sample('churn');
        }
        const churned = await churning;
        const idleStart = nowMs();
        await sample('stopped');
        for (let next = idleStart + c.sampleMs; next <= idleStart + c.idleMs; next += c.sampleMs) {
          await sleep(Math.max(0, next - nowMs()));
          await sample('idle');
        }
        out['clusterSoak.samples'] = k;
        out['clusterSoak.clients'] = churned.clients;
        out['clusterSoak.members'] = churned.members;
        out['clusterSoak.churnSeconds'] = c.seconds;
        out['clusterSoak.idleSeconds'] = c.idleMs / 1000;
        for (const [kind, outcomes] of Object.entries(churned.outcomes)) {
          for (const [outcome, n] of Object.entries(outcomes)) out[`clusterSoak.kinds.${kind}.${outcome}`] = n;
        }
        return out;
      } finally {
        redis.disconnect();
      }
    },
  };
}

/** Phases of the cluster soak, stored as their index in metric keys (which hold numbers only). */
export const PHASES = ['baseline', 'churn', 'stopped', 'idle'];
