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
 *
 * Adding the rooms (100 rooms × 100 members) and plaza.v1 scenarios once Plaza speaks plaza.v1:
 * teach subscriber.mjs/publisher.mjs a 'v1' flavour (subprotocol header + join envelope), give
 * ctx.population a `rooms` option, and add e.g.
 *   { id: 'rooms', applies: (s) => s.id === 'plaza', async run(ctx) { ...; return { 'rooms.cpu': ... } } }
 * plus its rows in METRICS (report.mjs). Nothing else has to change.
 */
import { cpuSince, readCpu, rssKiB } from './proc.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Connects n clients to a fresh server: connections/s, then idle RSS per connection. */
export function connectAndIdle(n) {
  return {
    id: `idle-${n}`,
    async run(ctx) {
      await ctx.population(0);
      await ctx.quiesce();
      const before = rssKiB(ctx.pid);
      const cpu0 = readCpu(ctx.pid);
      const { ms, connections } = await ctx.population(n);
      const cpu = cpuSince(cpu0, readCpu(ctx.pid));
      await sleep(ctx.cfg.settleMs);
      await ctx.quiesce();
      const after = rssKiB(ctx.pid);
      return {
        'connect.rate': connections / (ms / 1000),
        'connect.cpuPerConn': cpu.us / connections,
        'idle.rssPerConnKiB': (after - before) / connections,
        'idle.rssMiB': after / 1024,
      };
    },
  };
}

/** `messages` messages of `size` bytes sent back to back to n subscribers. */
export function burst(n, size) {
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
      const r = await ctx.broadcast({ mode: 'burst', messages: ctx.cfg.messages, size });
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
      const sorted = Float64Array.from(r.latencies).sort();
      const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
      return {
        'steady.p50': at(0.5),
        'steady.p99': at(0.99),
        'steady.max': sorted[sorted.length - 1],
        'steady.perCpuSecond': r.delivered / (r.cpuUs / 1e6),
        'steady.cpuShare': r.cpuUs / 1e6 / seconds,
      };
    },
  };
}

/** The whole plan, in order: the big population first so idle RSS is read on a fresh server. */
export function plan(cfg) {
  return [
    connectAndIdle(cfg.big),
    ...cfg.sizes.map((size) => burst(cfg.big, size)),
    ...cfg.sizes.map((size) => burst(cfg.small, size)),
    steady(cfg.small),
  ];
}
