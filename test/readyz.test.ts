/**
 * /readyz tells anyone whether to send traffic, with short reason codes; the details (folders,
 * the Redis host, the I/O error) only to callers with the API key, and always to the log.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createLogger } from '../src/server/logger.js';
import { createPlaza, type Plaza } from '../src/server/plaza.js';
import type { PlazaOptions } from '../src/server/config.js';

const KEY = 'operator-key-0123456789abcdef';

async function withLoggedPlaza(options: Partial<PlazaOptions>, body: (plaza: Plaza, log: () => string) => Promise<void>) {
  const lines: string[] = [];
  const plaza = createPlaza({ port: 0, host: '127.0.0.1', ...options }, { logger: createLogger({ level: 'info', format: 'json', write: (line) => lines.push(line) }) });
  await plaza.start();
  try {
    await body(plaza, () => lines.join(''));
  } finally {
    await plaza.close();
  }
}

async function readyz(plaza: Plaza, headers: Record<string, string> = {}) {
  const response = await fetch(`${plaza.url}/readyz`, { headers });
  return { status: response.status, text: await response.text() };
}

/** A TCP port nobody listens on: Redis "down" without stopping anyone's Redis. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('/readyz', () => {
  it('gives anonymous callers only a reason code when the data dir cannot be written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plaza-readyz-secret-path-'));
    try {
      await withLoggedPlaza({ dataDir: dir, apiKey: KEY }, async (plaza, log) => {
        // Directories squat on the names of the segments the journal will create.
        for (const name of ['00000001.log', '00000002.log', '00000003.log']) mkdirSync(join(dir, name));
        const published = await fetch(`${plaza.url}/api/publish`, {
          method: 'POST',
          headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ room: 'r', data: 'x' }),
        });
        assert.equal(published.status, 200);

        const anonymous = await readyz(plaza);
        assert.equal(anonymous.status, 503);
        assert.deepEqual(JSON.parse(anonymous.text), { status: 'not ready', reasons: ['data_dir_unwritable'] });
        assert.ok(!anonymous.text.includes(dir) && !anonymous.text.includes('EEXIST'), anonymous.text);

        const operator = await readyz(plaza, { authorization: `Bearer ${KEY}` });
        assert.equal(operator.status, 503);
        const body = JSON.parse(operator.text);
        assert.deepEqual(body.reasons, ['data_dir_unwritable']);
        assert.match(body.details[0], new RegExp(`^history files in ${dir} cannot be written: EEXIST`));

        assert.equal((await readyz(plaza, { authorization: 'Bearer wrong' })).status, 401, 'a wrong key is refused, not answered anonymously');
        assert.match(log(), new RegExp(`"msg":"not ready","reasons":"data_dir_unwritable","details":"history files in ${dir}`));
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('does not name the Redis host to anonymous callers when the backplane is down', async () => {
    const port = await closedPort();
    await withLoggedPlaza({ redis: `redis://127.0.0.1:${port}`, apiKey: KEY }, async (plaza, log) => {
      const anonymous = await readyz(plaza);
      assert.equal(anonymous.status, 503);
      assert.deepEqual(JSON.parse(anonymous.text), { status: 'not ready', reasons: ['backplane_down'] });
      assert.ok(!anonymous.text.includes(String(port)), anonymous.text);
      const details = JSON.parse((await readyz(plaza, { authorization: `Bearer ${KEY}` })).text).details as string[];
      assert.match(details.join(), new RegExp(`Redis at redis://127\\.0\\.0\\.1:${port}/? is unreachable`));
      assert.match(log(), new RegExp(`"msg":"not ready","reasons":"backplane_down","details":"Redis at redis://127\\.0\\.0\\.1:${port}`));
    });
  });

  it('answers 200 {"status":"ready"} to everyone while healthy', async () => {
    await withLoggedPlaza({ apiKey: KEY }, async (plaza) => {
      assert.deepEqual(await readyz(plaza), { status: 200, text: '{"status":"ready"}' });
      assert.deepEqual(await readyz(plaza, { authorization: `Bearer ${KEY}` }), { status: 200, text: '{"status":"ready"}' });
    });
  });
});
