/**
 * `npm run bench` step: the peers (socket.io, Bun, and the ws they run on) are the bench's own
 * dependencies (bench/package.json), not Plaza's, so `npm install && npm test` at the root never
 * fetches them. This installs them into bench/node_modules with the lock file (`npm ci`) when they
 * are missing or older than the lock file, and does nothing otherwise.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const installed = `${here}node_modules/.package-lock.json`;
const lock = `${here}package-lock.json`;

if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  process.stderr.write('bench: installing the peers into bench/node_modules (npm ci --prefix bench)\n');
  execFileSync('npm', ['ci', '--prefix', here, '--no-audit', '--no-fund'], { stdio: 'inherit' });
}
