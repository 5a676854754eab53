/** The README and PROTOCOL.md must not drift from the code: every option, code and close code is listed. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
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
});
