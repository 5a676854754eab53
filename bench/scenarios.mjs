/**
 * Scenarios: each is a small object `{ id, retryable?, applies?(server), run(ctx) }` whose `run`
 * returns a flat `{ metricKey: number }` record for one server in one run. They run in list order
 * on one fresh server process per (server, run). `retryable` scenarios may run again on the same
 * server when other processes disturbed the measurement (see run.mjs).
 *
 * What `ctx` offers (built in run.mjs):
 *   ctx.server          the definition from servers.mjs ({ id, label, flavour, ... })
 *   ctx.pid             the server's pid (for /proc readings: see proc.mjs)
 *   ctx.cfg             counts and durations (full or --quick)
 *   ctx.population(n)   makes exactly n subscribers (cfg.probes of them probes) plus the
 *                       publisher connected; reuses the current ones when n is unchanged.
 *                       Resolves { ms, connections } (ms is null when nothing changed).
 *   ctx.broadcast(opts) arms the counters, publishes, waits for every delivery (bounded) and
 *                       returns { expected, delivered, complete, wallMs, cpuUs, tickUs,
 *                       genBusy, latencies } with the server's CPU over exactly that phase.
 *                       opts: { mode: 'burst', messages, size } | { mode: 'steady', rate, seconds, size },
 *                       plus `warmup: true` for a broadcast that is not a measurement.
 *   ctx.quiesce()       waits (bounded) until the server's CPU is idle.
 *   ctx.measured(t0)    marks nowMs() t0 until now as a measured phase (for --cpu-prof) when it
 *                       is no broadcast (connecting).
 *
 *   ctx.population(n, { rooms })   the same with n subscribers spread round-robin over `rooms`
 *                       rooms (and over a cluster's nodes), one publisher per room; also
 *                       resolves `rooms`, the room names.
 *   ctx.relay(opts)     traffic that is not a measurement: { messages, size, rooms? } sent by the
 *                       publishers of `rooms` (names; default all), every delivery awaited
 *                       (bounded); resolves { expected, delivered, complete }.
 *   ctx.target          the running processes (servers.mjs startTarget: nodes, ports, redisPort).
 *   ctx.generators      the load generators ({ bulk, probe }, each `.call(cmd, args)`).
 *   ctx.log(line)       a progress line on stderr.
 *
 * A scenario may name a `mode` (default 'broadcast'): 'v1', 'rooms', 'cluster', 'soak' or
 * 'cluster-soak'. It runs only on servers that offer that mode (servers.mjs), on the process that
 * mode needs, with clients speaking that mode's flavour. `only: [server ids]` keeps a scenario to
 * those servers; `once: true` runs it in the first run only (the soaks: a time series, not a median).
 */
import { benchIdentity, TOKEN_KINDS } from './identity.mjs';
import { cpuSince, peakRssKiB, readCpu, resetPeakRss, rssKiB } from './proc.mjs';
import { collectGarbage } from './servers.mjs';
import { clusterSoak, soak } from './soak.mjs';
import { nowMs } from './subscriber.mjs';
import { sseVersusWebSocket } from './sse.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `times` bursts in a row (each after the server is idle again); the one with the median server
 * CPU is returned, or the first incomplete one.
 */
async function medianBurst(ctx, opts, times) {
  const results = [];
  for (let i = 0; i < times; i++) {
    if (i > 0) await ctx.quiesce();
    const r = await ctx.broadcast({ mode: 'burst', ...opts });
    if (!r.complete) return r;
    results.push(r);
  }
  results.sort((a, b) => a.cpuUs - b.cpuUs);
  return results[results.length >> 1];
}

/**
 * Connects n clients to a fresh server: connections/s, then idle RSS per connection. With `rooms`
 * (mode 'idle-rooms') they join `rooms` rooms with presence (Plaza: plaza.v1 members watching
 * presence, history on as by default; bare ws: its rooms peer), under metric keys `idleRooms.*`;
 * those processes carry the memory preload (peers/memory-report.mjs), so RSS and heap after a full
 * garbage collection are reported too: what the server keeps, without the garbage of the joins.
 */
export function connectAndIdle(n, { rooms } = {}) {
  const prefix = rooms ? 'idleRooms' : 'idle';
  return {
    id: rooms ? `idle-rooms-${n}` : `idle-${n}`,
    ...(rooms && { mode: 'idle-rooms' }),
    async run(ctx) {
      await ctx.population(0);
      await ctx.quiesce();
      // The idle-rooms processes carry the memory preload: also what is left after a full GC.
      const child = rooms ? ctx.target.nodes[0].child : undefined;
      const live0 = child && (await collectGarbage(child));
      const before = rssKiB(ctx.pid);
      const cpu0 = readCpu(ctx.pid);
      const { ms, connections } = await ctx.population(n, rooms ? { rooms, publisher: 'v1' } : {});
      const cpu = cpuSince(cpu0, readCpu(ctx.pid));
      await sleep(ctx.cfg.settleMs);
      await ctx.quiesce();
      const after = rssKiB(ctx.pid);
      const out = {
        [`${prefix}.rssPerConnKiB`]: (after - before) / connections,
        [`${prefix}.rssMiB`]: after / 1024,
      };
      if (child) {
        const live = await collectGarbage(child);
        out[`${prefix}.liveRssPerConnKiB`] = (live.liveRss - live0.liveRss) / 1024 / connections;
        out[`${prefix}.liveHeapPerConn`] = (live.liveHeapUsed - live0.liveHeapUsed) / connections;
      }
      if (!rooms) {
        out['connect.rate'] = connections / (ms / 1000);
        out['connect.cpuPerConn'] = cpu.us / connections;
      }
      return out;
    },
  };
}

/**
 * RSS now, in KiB, and on a process with the memory preload (servers.mjs `memoryReport`) also RSS
 * and heap in use after a full garbage collection (NaN elsewhere: Bun).
 */
async function memoryNow(ctx) {
  const rss = rssKiB(ctx.pid);
  if (!ctx.target.spec.memoryReport) return { rss, liveRss: NaN, liveHeap: NaN };
  const m = await collectGarbage(ctx.target.nodes[0].child);
  return { rss, liveRss: m.liveRss / 1024, liveHeap: m.liveHeapUsed };
}

/**
 * What one more connection costs (issue 24): on a fresh process, n clients connect and memory is
 * read; n more connect and it is read again; the difference divided by n is the marginal cost.
 * Absolute RSS divided by the connections would also charge each connection for what a process
 * spends once: V8's young generation growing to its full size under the first connections'
 * garbage, compiled code, buffer pools. RSS is read as it is (every server) and after a full GC
 * (the Node servers, through the memory preload). `members` (mode 'memory-members'): plaza.v1
 * members joining `members` rooms with presence (history on, as by default) against the bare-ws
 * rooms peer; otherwise plain clients, Plaza's in its default room.
 */
export function marginalMemory(n, { members } = {}) {
  const prefix = members ? 'marginal.members' : 'marginal.plain';
  return {
    id: members ? `memory-members-${n}` : `memory-plain-${n}`,
    mode: members ? 'memory-members' : 'memory',
    async run(ctx) {
      const rooms = members ? { rooms: members, publisher: 'v1' } : {};
      await ctx.population(n, rooms);
      await sleep(ctx.cfg.settleMs);
      await ctx.quiesce();
      const first = await memoryNow(ctx);
      const cpu0 = readCpu(ctx.pid);
      const { connections } = await ctx.population(2 * n, { ...rooms, grow: true });
      const cpu = cpuSince(cpu0, readCpu(ctx.pid));
      await sleep(ctx.cfg.settleMs);
      await ctx.quiesce();
      const second = await memoryNow(ctx);
      const out = {
        [`${prefix}.rssPerConnKiB`]: (second.rss - first.rss) / connections,
        [`${prefix}.cpuPerConn`]: cpu.us / connections,
      };
      if (Number.isFinite(second.liveRss)) {
        out[`${prefix}.liveRssPerConnKiB`] = (second.liveRss - first.liveRss) / connections;
        out[`${prefix}.liveHeapPerConn`] = (second.liveHeap - first.liveHeap) / connections;
      }
      await ctx.population(0);
      return out;
    },
  };
}

/**
 * A reconnect storm (issue 24; after a deploy every client comes back at once, socket.io #2998):
 * n clients connected and idle drop their connections together and all reconnect at the same
 * moment, every handshake in flight at once. With `rooms` (mode 'rooms'): plaza.v1 members of
 * `rooms` rooms, and `missed` messages are published to every room while they are away, so each
 * rejoin is a resume (`since` the position its first `joined` named) that must bring them back;
 * the bare-ws rooms peer has no history and ignores `since` (it only rejoins). Reported: the time
 * from the first reconnect to the last client ready (joined), the server's CPU per reconnect, its
 * peak RSS over the storm (VmHWM, reset just before) above its RSS when the storm began, and the
 * share of resumes that came back `recovered`. More clients than the listen backlog (Node's
 * default: 511) arrive at once, so some SYNs are dropped and retried a second later: the time is
 * either a few hundred ms or one or two seconds more, for every server; CPU and peak are steadier.
 */
export function reconnectStorm(n, { rooms, missed = 0 } = {}) {
  const prefix = rooms ? 'storm.resume' : 'storm.plain';
  return {
    id: rooms ? `storm-resume-${n}` : `storm-plain-${n}`,
    ...(rooms && { mode: 'rooms' }),
    async run(ctx) {
      // A fresh population, so that each resume misses exactly the messages published below.
      await ctx.population(0);
      const { rooms: names } = await ctx.population(n, rooms ? { rooms } : {});
      await sleep(ctx.cfg.settleMs);
      await ctx.quiesce();
      await ctx.dropAll();
      if (missed > 0) {
        const sent = await ctx.relay({ messages: missed, size: 64, rooms: names });
        if (!sent.complete) return { [`${prefix}.incomplete`]: 1 };
      }
      await ctx.quiesce();
      const peakKnown = resetPeakRss(ctx.pid);
      const before = rssKiB(ctx.pid);
      const cpu0 = readCpu(ctx.pid);
      const t0 = nowMs();
      const r = await ctx.reconnectAll();
      const cpu = cpuSince(cpu0, readCpu(ctx.pid));
      ctx.measured?.(t0);
      const peak = peakKnown ? peakRssKiB(ctx.pid) : NaN;
      const out = r.failed > 0
        ? { [`${prefix}.incomplete`]: 1 }
        : {
            [`${prefix}.ms`]: r.ms,
            [`${prefix}.cpuPerConn`]: cpu.us / r.reconnected,
            [`${prefix}.peakOverMiB`]: (peak - before) / 1024,
          };
      if (rooms && r.failed === 0) out[`${prefix}.recoveredShare`] = r.recovered / r.reconnected;
      if (r.failed > 0) ctx.log(`${r.failed} of ${r.failed + r.reconnected} clients did not get back in`);
      await ctx.population(0);
      return out;
    },
  };
}

const middle = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];

/**
 * The connect row with sign-in tokens (issue 25): n plain clients connect, each carrying a token
 * of one kind, and the server's CPU per connection is read over the connecting only. `kinds` are
 * measured in turn, `rounds` times, after a warm-up of each (the first check of a kind pays for
 * JIT and WebCrypto's first use); the median of the rounds is kept per kind. 'none' is the same
 * without a token, on the ordinary process; the others run on the process that requires tokens
 * (servers.mjs PLAZA_AUTH), whose keys were fetched once at start (identity.mjs).
 */
export function connectWithTokens(n, rounds, { kinds = TOKEN_KINDS, mode = 'auth', id = `connect-auth-${n}`, only = ['plaza'] } = {}) {
  return {
    id,
    mode,
    ...(only && { only }),
    async run(ctx) {
      const idp = await benchIdentity();
      const query = (kind) => (kind === 'none' ? '' : `?token=${idp.token(kind)}`);
      for (const kind of kinds) await ctx.population(Math.min(n, 500), { query: query(kind) });
      const samples = Object.fromEntries(kinds.map((kind) => [kind, []]));
      for (let round = 0; round < rounds; round++) {
        for (const kind of kinds) {
          await ctx.population(0);
          await ctx.quiesce();
          const cpu0 = readCpu(ctx.pid);
          const t0 = nowMs();
          const { connections } = await ctx.population(n, { query: query(kind) });
          samples[kind].push(cpuSince(cpu0, readCpu(ctx.pid)).us / connections);
          ctx.measured?.(t0);
        }
      }
      await ctx.population(0);
      return Object.fromEntries(kinds.map((kind) => [`connectAuth.${kind}.cpuPerConn`, middle(samples[kind])]));
    },
  };
}

/**
 * `messages` messages of `size` bytes sent back to back to n subscribers; with n ≤ cfg.small the
 * median of cfg.burstRepeats bursts.
 */
export function burst(n, size, messages) {
  return {
    id: `burst-${n}-${size}`,
    retryable: true,
    async run(ctx) {
      const key = `burst.${n}.${size}`;
      await ctx.population(n);
      // Warm-up (not measured): the first broadcast pays for JIT compilation and buffer growth.
      const warm = await ctx.broadcast({ mode: 'burst', messages: ctx.cfg.warmupMessages, size, warmup: true });
      if (!warm.complete) return { [`${key}.incomplete`]: 1 };
      await ctx.quiesce();
      const r = await medianBurst(ctx, { messages: messages ?? ctx.cfg.messages, size }, n > ctx.cfg.mid ? 1 : ctx.cfg.burstRepeats);
      if (!r.complete) return { [`${key}.incomplete`]: 1 };
      return {
        [`${key}.cpu`]: r.cpuUs / r.delivered,
        [`${key}.wall`]: r.wallMs,
        [`${key}.rate`]: r.delivered / (r.wallMs / 1000),
        [`${key}.genBusy`]: r.genBusy,
      };
    },
  };
}

/**
 * Plaza only: the plain burst again with payloads as long as a plaza.v1 `message` envelope for a
 * 64 B payload (233 B). It separates what v1 costs for its bigger frames from what it costs in
 * JavaScript (parsing requests, building envelopes).
 */
export function envelopeSizedBurst(n, size = V1_FRAME_BYTES) {
  return {
    id: `burst-${n}-${size}-plaza`,
    only: ['plaza'],
    retryable: true,
    async run(ctx) {
      await ctx.population(n);
      await ctx.broadcast({ mode: 'burst', messages: ctx.cfg.warmupMessages, size, warmup: true });
      await ctx.quiesce();
      const r = await medianBurst(ctx, { messages: ctx.cfg.messages, size }, ctx.cfg.burstRepeats);
      if (!r.complete) return { 'v1.control.incomplete': 1 };
      return { 'v1.control.cpu': r.cpuUs / r.delivered, 'v1.control.wall': r.wallMs };
    },
  };
}

/**
 * Bytes of Plaza's v1 envelope around a 64 B string (room "lobby", a 3-digit offset, anonymous
 * sender): {"type":"message","room":"lobby","id":"<8>:<n>","offset":<n>,"epoch":"<8>",
 * "time":<13>,"from":{"session":"<12>","name":"anonymous"},"data":"<64>"}.
 */
export const V1_FRAME_BYTES = 233;

/** A fixed publish rate: latency seen by the probes, and deliveries per server CPU-second. */
export function steady(n) {
  return {
    id: `steady-${n}`,
    retryable: true,
    async run(ctx) {
      const { rate, seconds } = ctx.cfg.steady;
      await ctx.population(n);
      await ctx.broadcast({ mode: 'burst', messages: ctx.cfg.warmupMessages, size: 64, warmup: true });
      await ctx.quiesce();
      const r = await ctx.broadcast({ mode: 'steady', rate, seconds, size: 64 });
      if (!r.complete) return { 'steady.incomplete': 1 };
      const { p50, p99, max } = percentiles(r.latencies);
      return {
        'steady.p50': p50,
        'steady.p99': p99,
        'steady.max': max,
        'steady.perCpuSecond': r.delivered / (r.cpuUs / 1e6),
        'steady.cpuShare': r.cpuUs / 1e6 / seconds,
      };
    },
  };
}

/**
 * The sustained ladder: n subscribers, the publisher stepping through cfg.ladder.rates (msg/s of
 * 64 B) for cfg.ladder.seconds each. Per step: deliveries per second of wall time, the server's
 * CPU share, latency p50/p99. A step is sustained when every delivery arrived and p99 is under
 * cfg.ladder.p99Ms; the ladder stops after the first step that is not (the next would only take
 * longer to fail), and `ladder.max` is the highest sustained rate (0: none).
 */
export function ladder(n) {
  return {
    id: `ladder-${n}`,
    async run(ctx) {
      const { rates, seconds, p99Ms, graceMs } = ctx.cfg.ladder;
      await ctx.population(n);
      await ctx.broadcast({ mode: 'burst', messages: ctx.cfg.warmupMessages, size: 64, warmup: true });
      const out = { 'ladder.max': 0 };
      for (const rate of rates) {
        // A step that fails while other processes took the machine (p99 is what suffers) is
        // measured again, at most twice; the last attempt counts.
        let r;
        let ok = false;
        for (let attempt = 0; attempt < 3; attempt++) {
          await ctx.quiesce();
          r = await ctx.broadcast({ mode: 'steady', rate, seconds, size: 64, graceMs });
          ok = r.complete && r.latencies.length > 0 && percentiles(r.latencies).p99 < p99Ms;
          if (!r.complete) await ctx.population(n);
          if (ok || r.foreignCores <= r.disturbedCores) break;
          ctx.log(`${rate} msg/s: other processes used ${r.foreignCores.toFixed(2)} cores; measuring the step again`);
        }
        const key = `ladder.${rate}`;
        out[`${key}.foreignCores`] = r.foreignCores;
        ok = r.complete && r.latencies.length > 0;
        const { p50, p99 } = ok ? percentiles(r.latencies) : { p50: NaN, p99: NaN };
        out[`${key}.deliveriesPerSecond`] = r.delivered / (Math.max(r.wallMs, seconds * 1000) / 1000);
        out[`${key}.cpuShare`] = r.cpuUs / 1e6 / (Math.max(r.wallMs, seconds * 1000) / 1000);
        out[`${key}.cpu`] = r.cpuUs / r.delivered;
        if (ok) Object.assign(out, { [`${key}.p50`]: p50, [`${key}.p99`]: p99 });
        else out[`${key}.incomplete`] = 1;
        out[`${key}.publisherLateMs`] = r.lateMaxMs;
        ctx.log(`${rate} msg/s: ${ok ? `p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms` : `${r.delivered} of ${r.expected} delivered`}, CPU share ${out[`${key}.cpuShare`].toFixed(2)}`);
        if (!ok || p99 >= p99Ms) break;
        out['ladder.max'] = rate;
      }
      return out;
    },
  };
}

/**
 * Plaza with --write-delay (mode 'write-delay', its own process): the ladder's lower rates again,
 * so deliveries per CPU-second and latency can be set beside the ladder's (no delay, same run).
 */
export function writeDelay(n) {
  return {
    id: `write-delay-${n}`,
    mode: 'write-delay',
    async run(ctx) {
      const { rates, seconds } = ctx.cfg.writeDelay;
      await ctx.population(n);
      await ctx.broadcast({ mode: 'burst', messages: ctx.cfg.warmupMessages, size: 64, warmup: true });
      const out = {};
      for (const rate of rates) {
        await ctx.quiesce();
        const r = await ctx.broadcast({ mode: 'steady', rate, seconds, size: 64 });
        if (!r.complete) {
          out[`writeDelay.${rate}.incomplete`] = 1;
          continue;
        }
        const { p50, p99 } = percentiles(r.latencies);
        Object.assign(out, {
          [`writeDelay.${rate}.perCpuSecond`]: r.delivered / (r.cpuUs / 1e6),
          [`writeDelay.${rate}.p50`]: p50,
          [`writeDelay.${rate}.p99`]: p99,
        });
      }
      return out;
    },
  };
}

/**
 * Compression of 1 KiB JSON chat messages (makeChatPayload): a burst of cfg.compress.messages to n
 * subscribers that offer permessage-deflate (mode 'compress': Plaza with --compress, bare ws with
 * perMessageDeflate). Bytes on the wire per delivery from the bulk subscribers' reads, and server
 * CPU per delivery. Probes do not offer the extension (they read payloads).
 */
export function compress(n, { mode = 'compress', prefix = 'compress' } = {}) {
  return {
    id: mode === 'compress' ? `compress-${n}` : `compress-${n}-off`,
    mode,
    ...(mode === 'compress' ? {} : { only: ['plaza'] }),
    retryable: true,
    async run(ctx) {
      const { messages, size } = ctx.cfg.compress;
      await ctx.population(n, { publisher: 'plain' });
      await ctx.broadcast({ mode: 'burst', messages: ctx.cfg.warmupMessages, size, payload: 'chat', warmup: true });
      await ctx.quiesce();
      const r = await medianBurst(ctx, { messages, size, payload: 'chat' }, ctx.cfg.burstRepeats);
      if (!r.complete) return { [`${prefix}.incomplete`]: 1 };
      return {
        [`${prefix}.cpu`]: r.cpuUs / r.delivered,
        [`${prefix}.bytesPerDelivery`]: r.bulkBytes / r.bulkDelivered,
        [`${prefix}.wall`]: r.wallMs,
      };
    },
  };
}

function percentiles(latencies) {
  const sorted = Float64Array.from(latencies).sort();
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] };
}

/**
 * One room of n plaza.v1 subscribers: the burst of burst-n-64 (cfg.messages × 64 B, back to back,
 * from one v1 publisher), then cfg.steadyShort (100 msg/s for 5 s). `mode` 'v1' runs it on one
 * Plaza; 'cluster' on two Plaza nodes and Redis, subscribers alternating between the nodes and
 * the publisher on the first. Metric keys start with `prefix`.
 */
function burstThenSteady(id, mode, prefix, n) {
  return {
    id,
    mode,
    retryable: true,
    async run(ctx) {
      await ctx.population(n);
      const warm = await ctx.broadcast({ mode: 'burst', messages: ctx.cfg.warmupMessages, size: 64, warmup: true });
      if (!warm.complete) return { [`${prefix}.burst.incomplete`]: 1 };
      await ctx.quiesce();
      const b = await medianBurst(ctx, { messages: ctx.cfg.messages, size: 64 }, ctx.cfg.burstRepeats);
      if (!b.complete) return { [`${prefix}.burst.incomplete`]: 1 };
      const out = {
        [`${prefix}.burst.cpu`]: b.cpuUs / b.delivered,
        [`${prefix}.burst.redisCpu`]: b.auxCpuUs / b.delivered,
        [`${prefix}.burst.wall`]: b.wallMs,
      };
      await ctx.quiesce();
      const { rate, seconds } = ctx.cfg.steadyShort;
      const st = await ctx.broadcast({ mode: 'steady', rate, seconds, size: 64 });
      if (!st.complete) return { ...out, [`${prefix}.steady.incomplete`]: 1 };
      const { p50, p99, max } = percentiles(st.latencies);
      return {
        ...out,
        [`${prefix}.steady.p50`]: p50,
        [`${prefix}.steady.p99`]: p99,
        [`${prefix}.steady.max`]: max,
        [`${prefix}.steady.cpu`]: st.cpuUs / st.delivered,
        [`${prefix}.steady.redisCpu`]: st.auxCpuUs / st.delivered,
      };
    },
  };
}

/** plaza.v1 against the plain path: the same room, burst and steady load, in JSON envelopes. */
export const v1 = (n) => burstThenSteady(`v1-${n}`, 'v1', 'v1', n);

/** The v1 load on two Plaza nodes joined by Redis (compare with v1-n: one node). */
export const cluster = (n) => burstThenSteady(`cluster-${n}`, 'cluster', 'cluster', n);

/**
 * The cluster burst again, sent by a plain publisher: a control for the v1 request path, since
 * Plaza never answers a plain client's publish. Until 9098912 a v1 connection's next request
 * waited for Redis's answer to its previous one, and a 200-message v1 burst cost 3.4 µs per
 * delivery against 0.27 µs from a plain publisher (bench/README.md).
 */
export function clusterPlainPublisher(n) {
  return {
    id: `cluster-${n}-plain-publisher`,
    mode: 'cluster',
    retryable: true,
    async run(ctx) {
      await ctx.population(n, { publisher: 'plain' });
      const warm = await ctx.broadcast({ mode: 'burst', messages: ctx.cfg.warmupMessages, size: 64, warmup: true });
      if (!warm.complete) return { 'clusterPlain.burst.incomplete': 1 };
      await ctx.quiesce();
      const b = await medianBurst(ctx, { messages: ctx.cfg.messages, size: 64 }, ctx.cfg.burstRepeats);
      if (!b.complete) return { 'clusterPlain.burst.incomplete': 1 };
      return {
        'clusterPlain.burst.cpu': b.cpuUs / b.delivered,
        'clusterPlain.burst.redisCpu': b.auxCpuUs / b.delivered,
        'clusterPlain.burst.wall': b.wallMs,
      };
    },
  };
}

/**
 * What publishing once costs (issue #22): the same burst from a plaza.v1 publisher without and
 * with a publish id on every publish, to few subscribers so the publish path dominates, on one
 * node (`mode: 'v1'`, the window in memory) or two nodes on Redis (the window in the script).
 * Reported as server CPU (plus Redis's) per publish; the target is ≤ 1.10×.
 */
export function publishIds({ subscribers: n, messages }, mode) {
  const prefix = `publishIds.${mode}`;
  return {
    id: `publish-ids-${mode}-${n}`,
    mode,
    retryable: true,
    async run(ctx) {
      const out = {};
      // Twice each, alternating, so drift in the machine's load falls on both sides.
      for (const round of [0, 1]) {
        for (const [publisher, key] of [['v1', 'plain'], ['v1-ids', 'ids']]) {
          await ctx.population(n, { publisher });
          const warm = await ctx.broadcast({ mode: 'burst', messages: ctx.cfg.warmupMessages, size: 64, warmup: true });
          if (!warm.complete) return { [`${prefix}.incomplete`]: 1 };
          await ctx.quiesce();
          const b = await medianBurst(ctx, { messages, size: 64 }, ctx.cfg.burstRepeats);
          if (!b.complete) return { [`${prefix}.incomplete`]: 1 };
          const perPublish = (b.cpuUs + (b.auxCpuUs ?? 0)) / messages;
          out[`${prefix}.${key}.cpu`] = round === 0 ? perPublish : (out[`${prefix}.${key}.cpu`] + perPublish) / 2;
        }
      }
      return out;
    },
  };
}

/**
 * `rooms` rooms of `members` subscribers each and a publisher in every room; every publisher sends
 * `messages` messages of 64 B back to back (interleaved across rooms, so all rooms are busy at once).
 */
export function rooms(count, members, messages) {
  return {
    id: `rooms-${count}x${members}`,
    mode: 'rooms',
    retryable: true,
    async run(ctx) {
      await ctx.population(count * members, { rooms: count });
      const warm = await ctx.broadcast({ mode: 'burst', messages: Math.max(1, ctx.cfg.warmupMessages >> 1), size: 64, warmup: true });
      if (!warm.complete) return { 'rooms.incomplete': 1 };
      await ctx.quiesce();
      const r = await ctx.broadcast({ mode: 'burst', messages, size: 64 });
      if (!r.complete) return { 'rooms.incomplete': 1 };
      return {
        'rooms.cpu': r.cpuUs / r.delivered,
        'rooms.wall': r.wallMs,
        'rooms.genBusy': r.genBusy,
      };
    },
  };
}

/**
 * SSE against WebSocket (issue #21, bench/sse.mjs): Plaza only, on fresh processes of its own.
 */
export function sse(n, messages) {
  return {
    id: `sse-${n}`,
    mode: 'broadcast',
    only: ['plaza'],
    retryable: true,
    run: (ctx) => sseVersusWebSocket({ connections: n, messages, size: 64, repeats: ctx.cfg.burstRepeats }),
  };
}

/**
 * The whole plan, in order: the big population first so idle RSS is read on a fresh server; the
 * scenarios needing another process (the peers' rooms servers, a cluster) last, and the soaks
 * (soak.mjs), each on fresh processes, at the very end.
 */
export function plan(cfg) {
  return [
    connectAndIdle(cfg.big),
    ...cfg.sizes.map((size) => burst(cfg.big, size)),
    burst(cfg.mid, 64, cfg.midMessages),
    ...cfg.sizes.map((size) => burst(cfg.small, size)),
    envelopeSizedBurst(cfg.small),
    steady(cfg.small),
    ladder(cfg.small),
    compress(cfg.small, { mode: 'broadcast', prefix: 'compressOff' }),
    // Without a token on every server: the warm connect row (issue 24), median of the rounds.
    connectWithTokens(cfg.authConnect.connections, cfg.authConnect.rounds, { kinds: ['none'], mode: 'broadcast', id: `connect-auth-none-${cfg.authConnect.connections}`, only: null }),
    reconnectStorm(cfg.storm.clients),
    v1(cfg.small),
    rooms(cfg.rooms.count, cfg.rooms.members, cfg.rooms.messages),
    reconnectStorm(cfg.storm.clients, { rooms: cfg.storm.rooms, missed: cfg.storm.missed }),
    connectAndIdle(cfg.idleRooms.members, { rooms: cfg.idleRooms.rooms }),
    marginalMemory(cfg.marginal.plain),
    marginalMemory(cfg.marginal.members, { members: cfg.idleRooms.rooms }),
    connectWithTokens(cfg.authConnect.connections, cfg.authConnect.rounds),
    writeDelay(cfg.small),
    compress(cfg.small),
    publishIds(cfg.publishIds, 'v1'),
    sse(cfg.small, cfg.messages),
    cluster(cfg.small),
    clusterPlainPublisher(cfg.small),
    publishIds(cfg.publishIds, 'cluster'),
    soak(),
    clusterSoak(),
  ];
}
