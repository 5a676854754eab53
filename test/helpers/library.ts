/**
 * Fixtures for Plaza used as a library: a Plaza with hooks on port 0, Plaza's own client in
 * rooms mode, and small waits the hook, event and webhook tests share.
 */
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { connect, PlazaError, type ClientOptions, type MessageMeta, type PlazaClient, type Room } from '../../src/client/index.js';
import type { PlazaOptions } from '../../src/server/config.js';
import { createPlaza, type Plaza, type PlazaConfig, type PlazaDependencies } from '../../src/server/plaza.js';

/** createPlaza(config) listening on 127.0.0.1, port 0, quiet unless PLAZA_TEST_LOG is set. */
export async function listening(config: PlazaConfig = {}, dependencies: PlazaDependencies = {}): Promise<Plaza> {
  const plaza = createPlaza({
    port: 0,
    host: '127.0.0.1',
    logLevel: (process.env.PLAZA_TEST_LOG as PlazaOptions['logLevel']) ?? 'silent',
    ...config,
  }, dependencies);
  await plaza.listen();
  return plaza;
}

/** Plaza's client in rooms mode with `ws` and fast retries; close it (or use `using`-style finally). */
export function roomsClient(url: string, options: ClientOptions = {}): PlazaClient {
  return connect(url, { WebSocket, rooms: true, minDelay: 10, maxDelay: 50, ...options });
}

/** Resolves once the room's join was answered; rejects with the join's error. */
export function joined(room: Room): Promise<void> {
  return new Promise((resolve, reject) => {
    const offJoined = room.on('joined', () => {
      offJoined();
      offError();
      resolve();
    });
    const offError = room.on('error', (error) => {
      offJoined();
      offError();
      reject(error);
    });
  });
}

/** The code of the PlazaError `promise` rejects with. */
export async function rejection(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof PlazaError, `expected a PlazaError, got ${String(error)}`);
    return error.code;
  }
  throw new Error('expected the promise to reject');
}

/** Every message a room delivers, with its meta. */
export function messages(room: Room): Array<{ data: unknown; meta: MessageMeta }> {
  const seen: Array<{ data: unknown; meta: MessageMeta }> = [];
  room.on('message', (data, meta) => seen.push({ data, meta }));
  return seen;
}

/** Polls until `check()` holds. */
export async function until(check: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A promise with its resolve, for hooks a test holds and releases. */
export function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** The value of one sample in a /metrics text, e.g. `plaza_hook_calls_total{hook="onPublish"}`. */
export async function metric(plaza: Plaza, sample: string, headers: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${plaza.port}/metrics`, { headers })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}
