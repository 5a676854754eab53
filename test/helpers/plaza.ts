/** Shared test fixtures: a real Plaza on an ephemeral port and real ws clients that record what they get. */
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import type { PlazaOptions } from '../../src/server/config.js';
import { createPlaza, type Plaza } from '../../src/server/plaza.js';

/** The repository root: the nearest folder above this (bundled) file that has package.json. */
export const ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the repository root (package.json) above the test files');
    dir = parent;
  }
  return dir;
})();

/** dist/public as built by `node build.mjs` (npm test builds it first). */
export const PUBLIC_DIR = join(ROOT, 'dist/public');

/** Starts a Plaza on 127.0.0.1, port 0, quiet unless PLAZA_TEST_LOG is set. */
export async function startPlaza(options: Partial<PlazaOptions> = {}): Promise<Plaza> {
  const plaza = createPlaza({
    port: 0,
    host: '127.0.0.1',
    logLevel: (process.env.PLAZA_TEST_LOG as PlazaOptions['logLevel']) ?? 'silent',
    ...options,
  });
  await plaza.start();
  return plaza;
}

/** Runs `body` against a fresh Plaza and closes it afterwards, whatever happens. */
export async function withPlaza(options: Partial<PlazaOptions>, body: (plaza: Plaza) => Promise<void>): Promise<void> {
  const plaza = await startPlaza(options);
  try {
    await body(plaza);
  } finally {
    await plaza.close();
  }
}

export function wsUrl(plaza: Plaza, path = '/'): string {
  return `ws://127.0.0.1:${plaza.port}${path}`;
}

export interface Received {
  data: Buffer;
  isBinary: boolean;
  text: string;
}

/** A real ws client that keeps every message, so tests can await the n-th one. */
export class TestClient {
  readonly received: Received[] = [];
  closeCode: number | undefined;
  closeReason = '';
  private waiters: Array<() => void> = [];
  readonly closed: Promise<number>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      const buffer = Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]);
      this.received.push({ data: buffer, isBinary, text: buffer.toString('utf8') });
      this.wake();
    });
    ws.on('error', () => {});
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        this.wake();
        resolve(code);
      }),
    );
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves once `count` messages have arrived in total; rejects after `ms`. */
  async waitFor(count: number, ms = 5000): Promise<Received[]> {
    const deadline = Date.now() + ms;
    while (this.received.length < count) {
      const left = deadline - Date.now();
      if (left <= 0 || this.closeCode !== undefined) {
        throw new Error(`expected ${count} messages, got ${this.received.length} (close code ${this.closeCode})`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.received.slice(0, count);
  }

  /** Proves silence: waits `ms` and checks that no more than `count` messages arrived. */
  async expectNoMoreThan(count: number, ms = 150): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (this.received.length > count) {
      throw new Error(`expected at most ${count} messages, got ${this.received.length}: ${this.received.map((r) => r.text).join(' | ')}`);
    }
  }

  send(data: string | Buffer): void {
    this.ws.send(data);
  }

  close(): Promise<number> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
    return this.closed;
  }
}

export async function connect(url: string, protocols?: string | string[]): Promise<TestClient> {
  const ws = new WebSocket(url, protocols);
  const client = new TestClient(ws);
  await Promise.race([
    once(ws, 'open'),
    once(ws, 'unexpected-response').then(([, res]) => {
      throw new Error(`upgrade refused with ${(res as { statusCode: number }).statusCode}`);
    }),
  ]);
  return client;
}

export async function connectMany(url: string, count: number, protocols?: string | string[]): Promise<TestClient[]> {
  return Promise.all(Array.from({ length: count }, () => connect(url, protocols)));
}

/** The server still serves: /healthz answers and two fresh clients can talk. */
export async function assertHealthy(plaza: Plaza): Promise<void> {
  const health = await fetch(`http://127.0.0.1:${plaza.port}/healthz`);
  if (health.status !== 200) throw new Error(`/healthz answered ${health.status}`);
  const [a, b] = await connectMany(wsUrl(plaza), 2);
  const marker = `alive-${Math.random()}`;
  a!.send(marker);
  const got = await b!.waitFor(1);
  if (got[0]!.text !== marker) throw new Error(`broadcast broken: got ${got[0]!.text}`);
  await Promise.all([a!.close(), b!.close()]);
}
