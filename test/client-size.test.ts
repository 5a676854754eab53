/**
 * The byte budget of the embeddable client: what a page pays to load it, min+gzip.
 * Reads the bundles `node build.mjs` wrote to dist/public (npm test builds them first).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { PUBLIC_DIR } from './helpers/plaza.js';

/**
 * 5 KiB with plaza.v1 (rooms, presence, acks, recovery, heartbeat watchdog); plain WebSocket use
 * alone fit in 3 KiB before rooms came.
 */
const BUDGET = 5 * 1024;

describe('client size', () => {
  for (const file of ['plaza.js', 'plaza.mjs']) {
    it(`dist/public/${file} is at most ${BUDGET} bytes min+gzip`, () => {
      const path = join(PUBLIC_DIR, file);
      assert.ok(existsSync(path), `${path} is missing; run \`node build.mjs\` first`);
      const size = gzipSync(readFileSync(path), { level: 9 }).length;
      assert.ok(size <= BUDGET, `${file} is ${size} bytes min+gzip, over the ${BUDGET}-byte budget by ${size - BUDGET}`);
    });
  }
});
