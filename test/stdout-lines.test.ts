/**
 * Log lines go to stdout a turn at a time (src/server/stdout-lines.ts): together, in order,
 * bounded, and never lost when the process exits right after writing them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../src/server/logger.js';
import { createBatchedLines } from '../src/server/stdout-lines.js';

// Run as a child by the exit test below: log through the default writer, then exit at once.
if (process.env.PLAZA_STDOUT_LINES_CHILD) {
  const logger = createLogger({ level: 'info', format: 'json' });
  for (let i = 0; i < 3; i++) logger.info('last words', { i });
  process.exit(0);
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('stdout lines', () => {
  it('writes the lines of one turn together, in their order, after the turn', async () => {
    const chunks: string[] = [];
    const write = createBatchedLines({ write: (text) => chunks.push(text) }, undefined);
    write('one\n');
    write('two\n');
    write('three\n');
    assert.deepEqual(chunks, [], 'nothing written during the turn');
    await nextTurn();
    assert.deepEqual(chunks, ['one\ntwo\nthree\n']);
    write('four\n');
    await nextTurn();
    assert.deepEqual(chunks, ['one\ntwo\nthree\n', 'four\n']);
  });

  it('does not keep more than 64 KiB waiting within a turn', async () => {
    const chunks: string[] = [];
    const write = createBatchedLines({ write: (text) => chunks.push(text) }, undefined);
    const line = `${'x'.repeat(1023)}\n`;
    for (let i = 0; i < 200; i++) write(line);
    assert.ok(chunks.length >= 3, `written during the turn: ${chunks.length} chunks`);
    for (const chunk of chunks) assert.ok(chunk.length <= 64 * 1024 + line.length, `a chunk of ${chunk.length}`);
    await nextTurn();
    assert.equal(chunks.join(''), line.repeat(200));
  });

  it('writes what is still waiting when the process exits', () => {
    const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], {
      env: { ...process.env, PLAZA_STDOUT_LINES_CHILD: '1' },
      encoding: 'utf8',
      timeout: 10_000,
    });
    assert.equal(child.status, 0, child.stderr);
    const lines = child.stdout.trim().split('\n').map((line) => JSON.parse(line) as { msg: string; i: number });
    assert.deepEqual(lines.map((line) => [line.msg, line.i]), [['last words', 0], ['last words', 1], ['last words', 2]]);
  });
});
