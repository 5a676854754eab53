/**
 * A real HAProxy running docs/placement/haproxy.cfg, for the placement test and the placement
 * bench alike (bench/placement.mjs imports this file; haproxy.d.mts gives it its types). The
 * documented file is run as written: only its `bind` address and its `server` lines are
 * replaced, so the test cannot pass on a config the docs do not show.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onFreePort, PORT_TAKEN } from './processes.mjs';

/** The documented config, from the repository root. */
export const PLACEMENT_CONFIG = 'docs/placement/haproxy.cfg';

export const MISSING_HAPROXY =
  'haproxy is not installed (apt-get install haproxy): the placement suite runs docs/placement/haproxy.cfg in a real HAProxy, and fails without one';

/** Debian installs haproxy in /usr/sbin, which is on root's PATH but not on a user's. */
const DEBIAN_HAPROXY = '/usr/sbin/haproxy';

const runs = (command) => spawnSync(command, ['-v'], { stdio: 'ignore' }).status === 0;

/** The haproxy to run: $HAPROXY when set, else the one on PATH, else Debian's; undefined when none runs. */
export function haproxyCommand() {
  const chosen = process.env.HAPROXY;
  if (chosen) return runs(chosen) ? chosen : undefined;
  if (runs('haproxy')) return 'haproxy';
  return runs(DEBIAN_HAPROXY) ? DEBIAN_HAPROXY : undefined;
}

/** Whether a haproxy runs here. */
export function hasHaproxy() {
  return haproxyCommand() !== undefined;
}

/**
 * `doc` with its one `bind` line listening on 127.0.0.1:`port` and its `server` lines replaced by
 * one per address of `servers` (`127.0.0.1:port`). `balance`, when given, replaces the balance
 * line (the bench's "without placement" run). Throws when the doc no longer has what it replaces.
 * @param {string} doc
 * @param {{ port: number, servers: string[], balance?: string }} options
 */
export function placementConfig(doc, { port, servers, balance }) {
  const lines = doc.split('\n');
  const binds = lines.filter((line) => /^\s*bind\s/.test(line));
  if (binds.length !== 1) throw new Error(`${PLACEMENT_CONFIG} should have one bind line, has ${binds.length}`);
  const firstServer = lines.findIndex((line) => /^\s*server\s/.test(line));
  if (firstServer === -1) throw new Error(`${PLACEMENT_CONFIG} has no server lines`);
  const indent = /^\s*/.exec(lines[firstServer])[0];
  const out = [];
  for (const [i, line] of lines.entries()) {
    if (/^\s*bind\s/.test(line)) out.push(`${/^\s*/.exec(line)[0]}bind 127.0.0.1:${port}`);
    else if (/^\s*server\s/.test(line)) {
      if (i === firstServer) servers.forEach((address, k) => out.push(`${indent}server plaza${k + 1} ${address}`));
    } else if (balance !== undefined && /^\s*balance\s/.test(line)) out.push(`${/^\s*/.exec(line)[0]}balance ${balance}`);
    else out.push(line);
  }
  return out.join('\n');
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`. */
function accepts(port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Starts `haproxy -db` (foreground) on the config `configFor(port)` makes, on a drawn port (the
 * free-port rule, processes.mjs: another port when it was taken). Resolves once it accepts
 * connections; rejects with its output when it exits first or is not up within `timeoutMs`.
 * @param {(port: number) => string} configFor
 */
export function startHaproxy(configFor, { timeoutMs = 10_000 } = {}) {
  const command = haproxyCommand();
  if (command === undefined) return Promise.reject(new Error(MISSING_HAPROXY));
  return onFreePort(async (port) => {
    const dir = mkdtempSync(join(tmpdir(), 'plaza-haproxy-'));
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(file, configFor(port));
    const child = spawn(command, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk) => {
      if (output.length < 50_000) output += chunk;
    };
    child.stdout.setEncoding('utf8').on('data', keep);
    child.stderr.setEncoding('utf8').on('data', keep);
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const cleanUp = () => rmSync(dir, { recursive: true, force: true });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ended = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve(undefined), 20))]);
      if (ended) {
        cleanUp();
        const taken = /cannot bind socket|Address already in use/i.test(output);
        throw Object.assign(new Error(`haproxy exited (${ended.code ?? ended.signal}) before it served:\n${output}`), taken ? { code: PORT_TAKEN } : {});
      }
      if (await accepts(port)) break;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        cleanUp();
        throw new Error(`haproxy did not accept connections on ${port} within ${timeoutMs} ms:\n${output}`);
      }
    }
    return {
      port,
      url: `http://127.0.0.1:${port}`,
      child,
      /** What haproxy printed so far (its warnings: servers going down and up). */
      output: () => output,
      async stop() {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
        cleanUp();
      },
    };
  });
}
