/** The README and PROTOCOL.md must not drift from the code: every option, code and close code is listed. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { CloseCode, ErrorCode } from '../src/shared/protocol.js';
import { OPTION_SPECS } from '../src/server/config.js';
import { ROOT } from './helpers/plaza.js';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const protocol = readFileSync(join(ROOT, 'PROTOCOL.md'), 'utf8');

describe('docs', () => {
  it('opens the README with the run and test commands', () => {
    const firstBlock = readme.slice(readme.indexOf('```sh'), readme.indexOf('```', readme.indexOf('```sh') + 5));
    assert.match(firstBlock, /npm install && npm start/);
    assert.match(firstBlock, /npm install && npm test/);
  });

  it('lists every option with its flag and environment variable', () => {
    for (const spec of OPTION_SPECS) {
      assert.ok(readme.includes(`\`${spec.flag}\``), `README lacks ${spec.flag}`);
      assert.ok(readme.includes(`\`${spec.env}\``), `README lacks ${spec.env}`);
    }
  });

  it('lists every error code in README and PROTOCOL.md', () => {
    for (const code of Object.values(ErrorCode)) {
      assert.ok(readme.includes(`\`${code}\``), `README lacks ${code}`);
      assert.ok(protocol.includes(`\`${code}\``), `PROTOCOL.md lacks ${code}`);
    }
  });

  it('lists every close code in README and PROTOCOL.md', () => {
    for (const code of Object.values(CloseCode)) {
      assert.match(readme, new RegExp(`\\| ${code} \\|`), `README lacks close code ${code}`);
      assert.match(protocol, new RegExp(`\\| ${code} \\|`), `PROTOCOL.md lacks close code ${code}`);
    }
  });

  it('points nowhere outside the repository: no relative link leaves it, no file names the workspace', () => {
    const files = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter((f) => /\.(md|ts|mjs|js|html|css|json)$/.test(f));
    assert.ok(files.includes('README.md'));
    const problems: string[] = [];
    for (const file of files) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      if (/\/work\/(shared|notes|main)\b/.test(text)) problems.push(`${file} names a path outside the repository`);
      // Markdown links, and the modules code imports.
      const targets = file.endsWith('.md') ? text.matchAll(/\]\(([^)\s]+)\)/g) : text.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g);
      for (const [, target] of targets) {
        if (/^[a-z]+:/i.test(target!) || target!.startsWith('#')) continue;
        const path = resolve(dirname(join(ROOT, file)), target!.split('#')[0]!);
        if (relative(ROOT, path).startsWith('..')) problems.push(`${file} links ${target} outside the repository`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('suggests keys that survive a URL: hex, and says to URL-encode others', () => {
    const operations = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8');
    assert.doesNotMatch(operations + readme, /openssl rand -base64/);
    assert.match(operations, /openssl rand -hex 32/);
    assert.match(operations, /URL-encoded/);
  });
});
