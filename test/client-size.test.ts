/**
 * The byte budget of the embeddable client: what a page pays to load it, min+gzip. The budget is
 * the one figure README.md states ("at most N KiB min+gzip"); docs/client.md must state the same,
 * so the docs can never promise a size this test does not hold the bundles to. Reads the bundles
 * `node build.mjs` wrote to dist/public (npm test builds them first).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { PUBLIC_DIR, ROOT } from './helpers/plaza.js';

const UNITS: Record<string, number> = { B: 1, KB: 1000, KiB: 1024 };

/** Every "N unit min+gzip" a document states, as written. */
function statedSizes(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/(\d+(?:\.\d+)?) ?(B|KB|KiB) min\+gzip/g)].map((m) => `${m[1]} ${m[2]}`);
}

const stated = statedSizes('README.md');
const BUDGET = stated.length > 0 ? Number(stated[0]!.split(' ')[0]) * UNITS[stated[0]!.split(' ')[1]!]! : 0;

describe('client size', () => {
  it('README.md states one size figure, and docs/client.md the same', () => {
    assert.ok(stated.length > 0, 'README.md states the client size as "N KiB min+gzip"');
    assert.deepEqual(new Set(stated), new Set([stated[0]]), `README.md states different sizes: ${stated.join(', ')}`);
    const client = statedSizes('docs/client.md');
    assert.ok(client.length > 0, 'docs/client.md states the client size');
    assert.deepEqual(new Set(client), new Set([stated[0]]), `docs/client.md says ${client.join(', ')}, README.md ${stated[0]}`);
  });

  for (const file of ['plaza.js', 'plaza.mjs']) {
    it(`dist/public/${file} is within the README's budget (${BUDGET} bytes min+gzip)`, () => {
      const path = join(PUBLIC_DIR, file);
      assert.ok(existsSync(path), `${path} is missing; run \`node build.mjs\` first`);
      const size = gzipSync(readFileSync(path), { level: 9 }).length;
      assert.ok(BUDGET > 0 && size <= BUDGET, `${file} is ${size} bytes min+gzip, over the ${BUDGET}-byte budget by ${size - BUDGET}`);
    });
  }
});
