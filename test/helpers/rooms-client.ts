/**
 * Plaza's client in rooms mode (src/client, `rooms: true`) for tests in Node: a factory with
 * `ws` and fast backoff whose clients are all closed by closeClients(), and a record of
 * everything a Room emitted.
 */
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { connect, PlazaError, type ClientOptions, type MessageMeta, type PlazaClient, type Position, type Room } from '../../src/client/index.js';

const clients = new Set<PlazaClient>();

/** A rooms client with `ws` and fast backoff; closed by closeClients(). */
export function roomsClient(url: string, options: ClientOptions = {}): PlazaClient {
  const client = connect(url, { WebSocket, rooms: true, minDelay: 10, maxDelay: 50, ...options });
  clients.add(client);
  return client;
}

/** Closes every client roomsClient() made, so no reconnect timer outlives a test. */
export function closeClients(): void {
  for (const client of clients) client.close();
  clients.clear();
}

/** Everything a room emitted. */
export interface Seen {
  data: unknown[];
  metas: MessageMeta[];
  resets: string[];
  joined: Position[];
  presence: Array<{ names: string[]; count: number }>;
  errors: PlazaError[];
}

export function watch(room: Room): Seen {
  const seen: Seen = { data: [], metas: [], resets: [], joined: [], presence: [], errors: [] };
  room.on('message', (data, meta) => {
    seen.data.push(data);
    seen.metas.push(meta);
  });
  room.on('reset', ({ reason }) => seen.resets.push(reason));
  room.on('joined', (position) => seen.joined.push(position));
  room.on('presence', (members, count) => seen.presence.push({ names: members.map((m) => m.name).sort(), count }));
  room.on('error', (error) => seen.errors.push(error));
  return seen;
}

/** Resolves with the code of the PlazaError `promise` rejects with. */
export async function rejection(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof PlazaError, `expected a PlazaError, got ${String(error)}`);
    assert.equal(typeof error.message, 'string');
    return error.code;
  }
  throw new Error('expected the promise to reject');
}

export { sleep } from './wait.mjs';

/** from, from + 1, …, to. */
export const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
