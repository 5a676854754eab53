/**
 * The servers under test, each started as its own child process bound to 127.0.0.1, and how
 * to find its port: the "<name> is serving" JSON line on stdout, or, when the server's log level
 * hides that line (Plaza logs it at info and runs here at warn so that 10,000 "connection open"
 * lines do not cost it CPU), its listening socket in /proc.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { listeningPort } from './proc.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const here = fileURLToPath(new URL('.', import.meta.url));

/** `flavour` is the wire protocol its clients speak (see subscriber.mjs). */
export const SERVERS = [
  {
    id: 'plaza',
    label: 'Plaza',
    flavour: 'plain',
    script: `${root}dist/server.js`,
    args: ['--port', '0', '--host', '127.0.0.1', '--log-level', 'warn', '--log-format', 'json', '--shutdown-timeout', '1000', '--rate-limit', '0'],
  },
  { id: 'ws', label: 'bare ws', flavour: 'plain', script: `${here}peers/bare-ws.mjs`, args: ['--port', '0'] },
  { id: 'socketio', label: 'socket.io', flavour: 'socketio', script: `${here}peers/socketio.mjs`, args: ['--port', '0'] },
];

const live = new Set();
let hooked = false;

/** Kills every server still running; safe to call from 'exit' (synchronous). */
export function killAll() {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

/**
 * Starts `server` and resolves with { child, pid, port } once it accepts connections.
 * @param {string[]} nodeArgs extra flags for node itself (e.g. --cpu-prof)
 */
export function startServer(server, { nodeArgs = [], timeoutMs = 15_000 } = {}) {
  // Whoever starts a server, its children die with it, even after an uncaught error.
  if (!hooked) {
    hooked = true;
    process.on('exit', killAll);
  }
  const child = spawn(process.execPath, [...nodeArgs, server.script, ...server.args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: root,
  });
  live.add(child);
  child.on('exit', () => live.delete(child));
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
      stdout += text;
      let newline;
      while ((newline = stdout.indexOf('\n')) !== -1) {
        const line = stdout.slice(0, newline);
        stdout = stdout.slice(newline + 1);
        try {
          const entry = JSON.parse(line);
          if (typeof entry.msg === 'string' && entry.msg.endsWith('is serving') && entry.url) {
            const url = new URL(entry.url);
            if (url.hostname !== '127.0.0.1') finish(new Error(`${server.label} serves on ${url.hostname}, not 127.0.0.1`));
            else finish(null, Number(url.port));
          }
        } catch {
          // not a JSON line: ignore
        }
      }
    });
    const poll = setInterval(() => {
      try {
        const port = listeningPort(child.pid);
        if (port) finish(null, port);
      } catch (error) {
        if (error.code !== 'ENOENT') finish(error);
      }
    }, 50);
    const timer = setTimeout(() => finish(new Error(`${server.label} did not start within ${timeoutMs} ms\n${stderr}`)), timeoutMs);
    child.once('exit', (code) => finish(new Error(`${server.label} exited with ${code} before serving\n${stderr}`)));
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export function stopServer({ child }, graceMs = 5000) {
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
