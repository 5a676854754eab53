/**
 * The servers under test, each started as its own child process (or, for a Plaza cluster, two
 * Plaza nodes and a private Redis) bound to 127.0.0.1, and how to find a port: the "<name> is
 * serving" JSON line on stdout, or the listening socket in /proc (which also proves the
 * listener is on 127.0.0.1).
 *
 * A server offers *modes*, one per kind of scenario (see scenarios.mjs): `broadcast` (everyone
 * in one room), `v1` (the same over plaza.v1), `rooms` and `cluster`. A mode names the process
 * it needs and the wire flavour its clients speak (subscriber.mjs). The peers need a second
 * process for rooms, so that their broadcast process stays the exact README example.
 *
 * The soak scenarios (soak.mjs) get processes of their own, so that they start from a fresh heap:
 * Plaza with the bench's usual flags and the bare-ws rooms peer, both with a preload that collects
 * garbage and reports memory on request (peers/memory-report.mjs), and a cluster whose nodes
 * expire presence quickly.
 */
import { execFileSync, spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { benchIdentity } from './identity.mjs';
import { listeningPort } from './proc.mjs';
import { startRedis, untilReady } from '../test/helpers/processes.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const here = fileURLToPath(new URL('.', import.meta.url));

const PLAZA_ARGS = ['--port', '0', '--host', '127.0.0.1', '--log-level', 'warn', '--log-format', 'json', '--shutdown-timeout', '1000', '--rate-limit', '0'];

/** Processes: `key` tells whether two modes can share one running process. */
const PLAZA = { key: 'plaza', label: 'Plaza', script: `${root}dist/server.js`, args: PLAZA_ARGS };
/** Two Plaza nodes joined through a Redis of their own (`redis-server`, no persistence). */
const PLAZA_CLUSTER = { ...PLAZA, key: 'plaza-cluster', label: 'Plaza ×2 + Redis', nodes: 2, redis: true };
const WS = { key: 'ws', label: 'bare ws', script: `${here}peers/bare-ws.mjs`, args: ['--port', '0'] };
/** The same peer with ws's perMessageDeflate on (its defaults: per-socket contexts, 1 KiB threshold). */
const WS_DEFLATE = { ...WS, key: 'ws-deflate', label: 'bare ws (deflate)', args: ['--port', '0', '--deflate'] };
/** Plaza with --write-delay (ms from the bench config, set by withWriteDelay below). */
export const WRITE_DELAY_MS = 5;
const PLAZA_WRITE_DELAY = { ...PLAZA, key: 'plaza-write-delay', label: 'Plaza (write delay)', args: [...PLAZA_ARGS, '--write-delay', String(WRITE_DELAY_MS)] };
/** Plaza compressing once per message for members that negotiated permessage-deflate. */
const PLAZA_COMPRESS = { ...PLAZA, key: 'plaza-compress', label: 'Plaza (compress)', args: [...PLAZA_ARGS, '--compress'] };
/**
 * Plaza requiring tokens: HS256 with --auth-secret, and RS256/ES256/EdDSA from the bench's JWKS
 * (identity.mjs; its flags are added at start, once the provider has a port).
 */
const PLAZA_AUTH = { ...PLAZA, key: 'plaza-auth', label: 'Plaza (tokens)', identity: true };
const WS_ROOMS = { key: 'ws-rooms', label: 'bare ws (rooms)', script: `${here}peers/bare-ws-rooms.mjs`, args: ['--port', '0'] };
/**
 * The soak's processes: the same programs with the same flags, started fresh, with a preload that
 * collects garbage and reports memory on SIGUSR2 (peers/memory-report.mjs, see soak.mjs).
 */
const MEMORY_REPORT = ['--import', new URL('peers/memory-report.mjs', import.meta.url).href];
/**
 * Idle members with rooms and presence: fresh processes for both, with the memory preload, so
 * that what a server keeps per connection can be told from garbage it has not collected yet.
 */
const PLAZA_IDLE_ROOMS = { ...PLAZA, key: 'plaza-idle-rooms', nodeArgs: MEMORY_REPORT };
const WS_ROOMS_IDLE = { ...WS_ROOMS, key: 'ws-rooms-idle', nodeArgs: MEMORY_REPORT };
const PLAZA_SOAK = { ...PLAZA, key: 'plaza-soak', nodeArgs: MEMORY_REPORT };
/**
 * What one more connection costs (issue 24, scenarios.mjs marginalMemory): fresh processes, the
 * Node ones with the memory preload (`memoryReport`: RSS is also read after a full GC). Bun runs
 * as it is: it has no such preload, so only its RSS as read is reported.
 */
const PLAZA_MEMORY = { ...PLAZA, key: 'plaza-memory', nodeArgs: MEMORY_REPORT, memoryReport: true };
const PLAZA_MEMORY_MEMBERS = { ...PLAZA, key: 'plaza-memory-members', nodeArgs: MEMORY_REPORT, memoryReport: true };
const WS_MEMORY = { ...WS, key: 'ws-memory', nodeArgs: MEMORY_REPORT, memoryReport: true };
const WS_ROOMS_MEMORY = { ...WS_ROOMS, key: 'ws-rooms-memory', nodeArgs: MEMORY_REPORT, memoryReport: true };

const WS_ROOMS_SOAK = { ...WS_ROOMS, key: 'ws-rooms-soak', nodeArgs: MEMORY_REPORT };
/** The API key of the cluster soak's nodes (loopback only, a throwaway process). */
export const SOAK_API_KEY = 'bench-soak-key-0123456789';
/**
 * The cluster soak: presence refreshed every 2000/3 ms and expiring after 2 × 2000 ms, so its idle
 * phase can show presence keys gone; three rooms per connection, so clients that ask for more
 * get `too_many_rooms` (a refused join must leave no cluster state); the HTTP API on; the memory
 * preload, as for the soak.
 */
const PLAZA_CLUSTER_SOAK = {
  ...PLAZA_CLUSTER,
  key: 'plaza-cluster-soak',
  label: 'Plaza ×2 + Redis (soak)',
  nodeArgs: MEMORY_REPORT,
  args: [...PLAZA_ARGS, '--presence-ttl', '2000', '--max-rooms-per-connection', '3', '--api-key', SOAK_API_KEY],
};
/** Bun's own binary from bench/node_modules (npm package `bun`), running the 20-line pub/sub peer. */
export const BUN_BINARY = `${here}node_modules/bun/bin/bun.exe`;
const BUN = { key: 'bun', label: 'Bun (uWS)', command: BUN_BINARY, script: `${here}peers/bun-pubsub.mjs`, args: ['--port', '0'] };
const SIO = { key: 'socketio', label: 'socket.io', script: `${here}peers/socketio.mjs`, args: ['--port', '0'] };
const SIO_ROOMS = { key: 'socketio-rooms', label: 'socket.io (rooms)', script: `${here}peers/socketio-rooms.mjs`, args: ['--port', '0'] };
const SIO_MEMORY = { ...SIO, key: 'socketio-memory', nodeArgs: MEMORY_REPORT, memoryReport: true };
const BUN_MEMORY = { ...BUN, key: 'bun-memory' };

export const SERVERS = [
  {
    id: 'plaza',
    label: 'Plaza',
    modes: {
      broadcast: { process: PLAZA, flavour: 'plain' },
      v1: { process: PLAZA, flavour: 'v1' },
      rooms: { process: PLAZA, flavour: 'v1' },
      'idle-rooms': { process: PLAZA_IDLE_ROOMS, flavour: 'v1-presence' },
      memory: { process: PLAZA_MEMORY, flavour: 'plain' },
      'memory-members': { process: PLAZA_MEMORY_MEMBERS, flavour: 'v1-presence' },
      'write-delay': { process: PLAZA_WRITE_DELAY, flavour: 'plain' },
      compress: { process: PLAZA_COMPRESS, flavour: 'plain-deflate' },
      auth: { process: PLAZA_AUTH, flavour: 'plain' },
      cluster: { process: PLAZA_CLUSTER, flavour: 'v1' },
      soak: { process: PLAZA_SOAK, flavour: 'v1' },
      'cluster-soak': { process: PLAZA_CLUSTER_SOAK, flavour: 'v1' },
    },
  },
  {
    id: 'ws',
    label: 'bare ws',
    modes: {
      broadcast: { process: WS, flavour: 'plain' },
      rooms: { process: WS_ROOMS, flavour: 'v1' },
      'idle-rooms': { process: WS_ROOMS_IDLE, flavour: 'v1-presence' },
      memory: { process: WS_MEMORY, flavour: 'plain' },
      'memory-members': { process: WS_ROOMS_MEMORY, flavour: 'v1-presence' },
      compress: { process: WS_DEFLATE, flavour: 'plain-deflate' },
      soak: { process: WS_ROOMS_SOAK, flavour: 'v1' },
    },
  },
  {
    id: 'bun',
    label: 'Bun (uWS)',
    modes: { broadcast: { process: BUN, flavour: 'plain' }, memory: { process: BUN_MEMORY, flavour: 'plain' } },
  },
  {
    id: 'socketio',
    label: 'socket.io',
    modes: {
      broadcast: { process: SIO, flavour: 'socketio' },
      rooms: { process: SIO_ROOMS, flavour: 'socketio-rooms' },
      memory: { process: SIO_MEMORY, flavour: 'socketio' },
    },
  },
];

/** `--plaza FILE`: the same modes, on another build of Plaza. */
export function withPlazaScript(server, script) {
  const modes = Object.fromEntries(
    Object.entries(server.modes).map(([name, mode]) => [name, { ...mode, process: { ...mode.process, script, key: `${mode.process.key}*` } }]),
  );
  return { ...server, label: 'Plaza*', modes };
}

const live = new Set();
let hooked = false;

/** Kills every process still running; safe to call from 'exit' (synchronous). */
export function killAll() {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

/** Counts a child started elsewhere (a redis-server from processes.mjs) among those killAll ends. */
export function track(child) {
  if (!hooked) {
    hooked = true;
    process.on('exit', killAll);
  }
  live.add(child);
  child.on('exit', () => live.delete(child));
  return child;
}

function spawnTracked(command, args) {
  // Whoever starts a server, its children die with it, even after an uncaught error.
  if (!hooked) {
    hooked = true;
    process.on('exit', killAll);
  }
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: root });
  live.add(child);
  child.on('exit', () => live.delete(child));
  // A child that fails to start (ENOENT) emits 'error'; the 'exit' path below reports it.
  child.on('error', () => undefined);
  return child;
}

/**
 * Starts one process and resolves with { child, pid, port } once it accepts connections. Every
 * JSON line the child prints, then and later, is also emitted as a 'json' event on `child`.
 * @param {string[]} nodeArgs extra flags for node itself (e.g. --cpu-prof)
 */
export function startProcess({ label, script, args, command = process.execPath, nodeArgs = [], timeoutMs = 15_000 }) {
  const argv = command === process.execPath ? [...nodeArgs, script, ...args] : script ? [script, ...args] : args;
  const child = spawnTracked(command, argv);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text) => {
    if (stderr.length < 10_000) stderr += text;
  });
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error, port) => {
      if (settled) return;
      settled = true;
      clearInterval(poll);
      clearTimeout(timer);
      if (error) {
        child.kill('SIGKILL');
        reject(error);
      } else {
        resolve({ child, pid: child.pid, port, stderr: () => stderr });
      }
    };
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text) => {
      if (stdout.length > 100_000) stdout = '';
      stdout += text;
      let newline;
      while ((newline = stdout.indexOf('\n')) !== -1) {
        const line = stdout.slice(0, newline);
        stdout = stdout.slice(newline + 1);
        let entry;
        try {
          entry = JSON.parse(line);
        } catch {
          continue; // not a JSON line
        }
        if (entry === null || typeof entry !== 'object') continue;
        child.emit('json', entry);
        if (typeof entry.msg === 'string' && entry.msg.endsWith('is serving') && typeof entry.url === 'string') {
          const url = URL.canParse(entry.url) ? new URL(entry.url) : null;
          if (url?.hostname !== '127.0.0.1') finish(new Error(`${label} serves on ${url?.hostname ?? entry.url}, not 127.0.0.1`));
          else finish(null, Number(url.port));
        }
      }
    });
    const poll = setInterval(() => {
      try {
        if (!child.pid) return;
        const port = listeningPort(child.pid);
        if (port) finish(null, port);
      } catch (error) {
        if (error.code !== 'ENOENT') finish(error);
      }
    }, 50);
    const timer = setTimeout(() => finish(new Error(`${label} did not start within ${timeoutMs} ms\n${stderr}`)), timeoutMs);
    child.once('exit', (code) => finish(new Error(`${label} exited with ${code} before serving\n${stderr}`)));
    child.once('error', (error) => finish(new Error(`${label} could not start: ${error.message}`)));
  });
}

/** The core a single server process is pinned to (`taskset`); the load generators get the others. */
export const SERVER_CORE = 0;

/** True when `taskset` (util-linux) is on the PATH and the machine has a core to spare. */
export function canPin() {
  if (cpus().length < 2) return false;
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Pins every thread of `pid` to `cores` (a taskset list, e.g. "0" or "1-3"); threads it starts
 * later inherit the affinity of the thread that starts them.
 */
export function pinTo(pid, cores) {
  execFileSync('taskset', ['-a', '-p', '-c', String(cores), String(pid)], { stdio: 'ignore' });
}

/** The cores other than the server's, as a taskset list. */
export function otherCores() {
  const n = cpus().length;
  return n <= 2 ? String(1 - SERVER_CORE) : `${SERVER_CORE === 0 ? 1 : 0}-${n - 1}`;
}

/**
 * Starts what `spec` describes. Resolves with { spec, children, nodes, pids, ports, aux, redisPort }
 * where `nodes` ({ child, pid, port }), `pids` and `ports` are the serving processes (one, or one
 * per cluster node), `aux` the helpers whose CPU is reported apart ({ redis: pid }) and
 * `redisPort` the private Redis's port (a cluster only).
 */
export async function startTarget(spec, { nodeArgs = [], pin = false } = {}) {
  const children = [];
  const aux = {};
  let redisPort;
  try {
    let args = spec.args;
    if (spec.identity) args = [...args, ...(await benchIdentity()).args];
    if (spec.redis) {
      // A Redis of its own: no other client's keys, no persistence, gone after the session; on a
      // port drawn by the tests' free-port rule (test/helpers/processes.mjs).
      const { port, child } = await startRedis(['--save', '', '--appendonly', 'no']);
      const redis = { child: track(child), pid: child.pid, port };
      children.push(redis);
      aux.redis = redis.pid;
      redisPort = redis.port;
      args = [...args, '--redis', `redis://127.0.0.1:${redis.port}`];
    }
    const nodes = [];
    for (let i = 0; i < (spec.nodes ?? 1); i++) {
      const node = await startProcess({ label: spec.label, command: spec.command, script: spec.script, args, nodeArgs: [...(spec.nodeArgs ?? []), ...nodeArgs] });
      children.push(node);
      nodes.push(node);
    }
    if (spec.redis) await Promise.all(nodes.map((node) => untilReady(`http://127.0.0.1:${node.port}`)));
    // One process under test gets a core of its own; the load generators keep to the other.
    if (pin && nodes.length === 1 && !spec.redis) pinTo(nodes[0].pid, SERVER_CORE);
    return { spec, children, nodes, pids: nodes.map((n) => n.pid), ports: nodes.map((n) => n.port), aux, redisPort };
  } catch (error) {
    await stopTarget({ children });
    throw error;
  }
}

/**
 * Makes a process started with peers/memory-report.mjs preloaded collect its garbage (SIGUSR2) and
 * resolves with what it printed, in bytes: { heapUsed, rss } before the collection and
 * { liveHeapUsed, liveRss } after it. Rejects after `timeoutMs`.
 */
export function collectGarbage(child, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const onJson = (entry) => {
      if (entry.msg !== 'memory') return;
      clearTimeout(timer);
      child.off('json', onJson);
      resolve({ heapUsed: entry.heapUsed, rss: entry.rss, liveHeapUsed: entry.liveHeapUsed, liveRss: entry.liveRss });
    };
    const timer = setTimeout(() => {
      child.off('json', onJson);
      reject(new Error(`pid ${child.pid} did not report its memory within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('json', onJson);
    child.kill('SIGUSR2');
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export function stopProcess({ child }, graceMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Stops the serving processes first, then their helpers (Redis). */
export async function stopTarget({ children }) {
  const [helpers, nodes] = [children.filter((c) => c.child.spawnfile !== process.execPath), children.filter((c) => c.child.spawnfile === process.execPath)];
  await Promise.all(nodes.map((c) => stopProcess(c)));
  await Promise.all(helpers.map((c) => stopProcess(c)));
}
