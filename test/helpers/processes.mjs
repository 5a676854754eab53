/**
 * Starting the processes a cluster is made of, for the tests and the bench alike (bench/*.mjs
 * imports this file; processes.d.mts gives it its types): the free-port rule, redis-server, and
 * waiting for a node's /readyz.
 *
 * The free-port rule: a server that can pick its own port (Plaza, ws, http) listens on port 0
 * and says which it got. A server that cannot (redis-server, whose port 0 means "no TCP") gets a
 * port drawn at random from PORT_RANGE and binds it itself; if it was taken, it reports so and
 * another port is drawn. No port is ever reserved and released for someone else to bind, which
 * races under concurrency: between the release and the bind, another test may take it.
 */
import { spawn } from 'node:child_process';
import { until } from './wait.mjs';

/**
 * Ports drawn for servers that cannot pick their own: below Linux's ephemeral range (32768 and
 * up), so no outgoing connection holds one; a Redis Cluster node's bus port is its port + 10000,
 * which stays below it too and never meets another node's drawn port.
 */
export const PORT_RANGE = Object.freeze({ from: 10_000, to: 19_999 });

/** The error code `start` rejects with when its port was taken: the rule draws another. */
export const PORT_TAKEN = 'EADDRINUSE';

/** Calls `start(port)` with drawn ports until one binds; resolves with what `start` resolved with. */
export async function onFreePort(start, attempts = 20) {
  for (let attempt = 1; ; attempt++) {
    const port = PORT_RANGE.from + Math.floor(Math.random() * (PORT_RANGE.to - PORT_RANGE.from + 1));
    try {
      return await start(port);
    } catch (error) {
      if (error?.code !== PORT_TAKEN || attempt >= attempts) throw error;
    }
  }
}

/**
 * Spawns redis-server with `args` and resolves with the child once it says it is ready (its own
 * log line, so a server of someone else's on the same port is never taken for it). Rejects with
 * code PORT_TAKEN when a port it needs is taken, or with its output when it exits or is not ready
 * within `timeoutMs`.
 * Needs the default log level (notice): that is the level of the line it waits for.
 * @param {RegExp} ready the line that says it serves; a Sentinel logs `+monitor master` instead
 */
export function startRedisProcess(args, { ready = /Ready to accept connections/, timeoutMs = 10_000 } = {}) {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const fail = (error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    };
    const timer = setTimeout(() => fail(new Error(`redis-server ${args.join(' ')} was not ready within ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const read = (chunk) => {
      if (output.length < 20_000) output += chunk;
      if (ready.test(output)) {
        clearTimeout(timer);
        child.stdout.removeListener('data', read);
        child.stdout.resume();
        resolve(child);
      } else if (/Address already in use/.test(output)) {
        fail(Object.assign(new Error(`redis-server: a port it needs is taken: ${args.join(' ')}`), { code: PORT_TAKEN }));
      }
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', read);
    child.stderr.resume();
    child.on('error', (error) => fail(error));
    child.on('exit', (code) => fail(new Error(`redis-server exited with ${code} before it was ready:\n${output}`)));
  });
}

/** A redis-server on a drawn port (the free-port rule), with `args` after its port and bind. */
export function startRedis(args = [], options = {}) {
  return onFreePort(async (port) => ({ port, child: await startRedisProcess(['--port', String(port), '--bind', '127.0.0.1', ...args], options) }));
}

/** Resolves once GET <base>/readyz answers `status` (a cluster node is ready once its Redis link is). */
export async function untilReady(base, status = 200, ms = 15_000) {
  let last;
  const answers = async () => (last = (await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined))?.status) === status;
  await until(answers, ms, `${base}/readyz to answer ${status}`, 100).catch((error) => {
    throw new Error(`${error.message} (it answered ${last ?? 'nothing'})`);
  });
}
