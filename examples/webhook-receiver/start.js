// `npm start`: this receiver and a Plaza (the repository's dist/server.js) that sends it
// webhooks, in one command that also stops both. They share a secret through their environment
// (WEBHOOK_SECRET, which both read), never through a command line, where `ps` would show it.
// Ctrl-C, SIGTERM or either one ending stops the other too, so nothing is left on the ports.
//
//   PORT          Plaza's port (default 8080; 0 picks a free one)
//   RECEIVER_PORT this receiver's port (default 4000; 0 picks a free one)
//   WEBHOOK_SECRET the shared secret (default: a new random one for this run)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const plazaServer = here('../../dist/server.js');
if (!existsSync(plazaServer)) {
  console.error('dist/server.js is missing: run `npm install && npm run build` at the root of the repository first');
  process.exit(1);
}

const env = { ...process.env, WEBHOOK_SECRET: process.env.WEBHOOK_SECRET || randomBytes(32).toString('hex') };
const children = [];
let stopping = false;

/** Stops both (once), and exits when both are gone. */
function stop(code) {
  if (stopping) return;
  stopping = true;
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  Promise.all(children.map((child) => (child.exitCode === null && child.signalCode === null ? new Promise((resolve) => child.once('exit', resolve)) : undefined)))
    .then(() => process.exit(code));
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => stop(0));

/**
 * Starts `node args` in its own process group, so that a Ctrl-C reaches this script alone and
 * each child gets exactly one SIGTERM from stop(); resolves with the first stderr line matching
 * `ready` (not passed on), while everything else goes to this script's stdout and stderr.
 */
function start(name, args, childEnv, ready, stdout) {
  const child = spawn(process.execPath, args, { env: childEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  child.once('exit', (code, signal) => {
    if (!stopping) console.error(`${name} stopped (${signal ?? `exit ${code}`}); stopping the other one`);
    stop(code ?? 1);
  });
  return new Promise((resolve) => {
    let found = false;
    const watch = (stream, out) =>
      createInterface({ input: stream }).on('line', (line) => {
        const match = found ? null : ready.exec(line);
        if (match) {
          found = true;
          resolve(match[1]);
        } else out.write(`${line}\n`);
      });
    watch(child.stdout, stdout);
    watch(child.stderr, process.stderr);
  });
}

// Events go to stdout; logs (the receiver's and Plaza's) to stderr.
const receiverUrl = await start('receiver.js', [here('./receiver.js')], { ...env, PORT: process.env.RECEIVER_PORT ?? '4000' }, /^listening on (http:\/\/\S+)$/, process.stdout);
const plazaUrl = await start('Plaza', [plazaServer, '--webhook-url', receiverUrl], env, /Plaza is serving.*?url["=:]+(https?:\/\/[^\s",]+)/, process.stderr);
console.error(`listening on ${plazaUrl} (Plaza: open it in a browser; the events its webhooks bring to ${receiverUrl} print below)`);
