/**
 * The signature recipe docs/server.md gives receivers in other languages, run as written: its
 * Python function checks a POST a real Plaza sent, and refuses a changed body, another secret
 * and an old signature. Skipped where python3 is missing.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { signWebhook } from '../src/server/webhooks/signature.js';
import { connect, ROOT } from './helpers/plaza.js';
import { listening } from './helpers/library.js';

const SECRET = 'recipe-test-secret-0123456789abcdef01234';
const hasPython = spawnSync('python3', ['--version']).status === 0;

/** The first ```python block of docs/server.md's Webhooks section. */
function recipe(): string {
  const docs = readFileSync(join(ROOT, 'docs/server.md'), 'utf8');
  const section = docs.slice(docs.indexOf('## Webhooks'));
  const block = /```python\n([\s\S]*?)```/.exec(section);
  assert.ok(block, 'docs/server.md has a Python recipe under Webhooks');
  return block[1]!;
}

/** Runs the recipe on each case: [secret, header, body]. */
function check(cases: Array<[string, string, string]>): boolean[] {
  const program = `${recipe()}
import json, sys
cases = json.loads(sys.stdin.read())
print(json.dumps([plaza_signature_ok(secret, header, body.encode()) for secret, header, body in cases]))
`;
  return JSON.parse(execFileSync('python3', ['-c', program], { input: JSON.stringify(cases), encoding: 'utf8' })) as boolean[];
}

describe('the webhook signature recipe in docs/server.md', { skip: hasPython ? false : 'python3 is not installed' }, () => {
  it('accepts what Plaza signed and refuses a changed body, another secret or an old signature', async () => {
    let received: { header: string; body: string } | undefined;
    const receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received ??= { header: String(req.headers['plaza-signature']), body: Buffer.concat(chunks).toString('utf8') };
        res.writeHead(204).end();
      });
    });
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    const plaza = await listening({ webhookUrl: `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`, webhookSecret: SECRET });
    try {
      const client = await connect(`ws://127.0.0.1:${plaza.port}/`);
      const deadline = Date.now() + 5000;
      while (!received && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      await client.close();
      assert.ok(received, 'Plaza sent a webhook');
      const { header, body } = received;
      const old = signWebhook(SECRET, body, Math.floor(Date.now() / 1000) - 600);
      assert.deepEqual(check([
        [SECRET, header, body],
        [SECRET, header, body.replace('lobby', 'lobbx')],
        [`${SECRET}!`, header, body],
        [SECRET, old, body],
        [SECRET, 'garbage', body],
      ]), [true, false, false, false, false]);
    } finally {
      await plaza.close();
      receiver.closeAllConnections();
      receiver.close();
    }
  });
});
