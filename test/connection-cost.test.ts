/**
 * What an open connection keeps (issue 24): nothing of its handshake, and no function of its
 * own on its socket or its ws. A listener closure left on the socket by the upgrade kept the
 * whole `IncomingMessage` (headers, URL, parser state) reachable for the connection's life, about
 * 2 KiB per idle client. These tests count objects, never time or bytes: the bytes are the bench's
 * memory rows (`npm run bench`, bench/README.md).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createPlaza, type Plaza } from '../src/server/plaza.js';
import { connectMany, type TestClient } from './helpers/plaza.js';
import { until } from './helpers/wait.mjs';

// `gc` without --expose-gc on the command line: the flag applies to contexts created after it is set.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/** A macrotask: a WeakRef's target is kept alive at least until the job that made or read it ends. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function collectedEverything(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await nextTurn();
    collectGarbage();
  }
}

/** ws keeps its WebSocket on the raw socket under this symbol (ws/lib/constants.js kWebSocket). */
function webSocketOf(socket: Duplex): NodeJS.EventEmitter | undefined {
  const key = Object.getOwnPropertySymbols(socket).find((symbol) => symbol.description === 'websocket');
  return key === undefined ? undefined : (socket as unknown as Record<symbol, NodeJS.EventEmitter>)[key];
}

/**
 * For each event, the listener functions found on all `emitters` together: when every emitter
 * has the same functions (shared, one set for the process), the count equals one emitter's.
 */
function distinctListeners(emitters: NodeJS.EventEmitter[]): Map<string | symbol, { distinct: number; perEmitter: number }> {
  const out = new Map<string | symbol, { distinct: number; perEmitter: number }>();
  for (const event of new Set(emitters.flatMap((emitter) => emitter.eventNames()))) {
    const functions = new Set(emitters.flatMap((emitter) => emitter.rawListeners(event)));
    out.set(event, { distinct: functions.size, perEmitter: Math.max(...emitters.map((emitter) => emitter.listenerCount(event))) });
  }
  return out;
}

const CLIENTS = 12;

describe('what an open connection keeps', () => {
  let server: Server;
  let plaza: Plaza;
  let url: string;
  /** Every upgrade request the server saw, held weakly, and the raw sockets (held by their connections anyway). */
  const requests: Array<WeakRef<IncomingMessage>> = [];
  const sockets: Duplex[] = [];
  const clients: TestClient[] = [];

  before(async () => {
    server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    plaza = createPlaza({ logLevel: 'silent' });
    await plaza.attach(server);
    // Before Plaza's own listener: sees each upgrade and keeps nothing of it but a weak reference.
    server.prependListener('upgrade', (request: IncomingMessage, socket: Duplex) => {
      requests.push(new WeakRef(request));
      sockets.push(socket);
    });
    clients.push(...(await connectMany(url, CLIENTS)));
    const members = await connectMany(url, CLIENTS, 'plaza.v1');
    for (const [i, member] of members.entries()) member.ws.send(JSON.stringify({ type: 'join', id: 1, room: `room-${i % 3}`, presence: true }));
    await until(() => members.every((member) => member.received.some((m) => m.text.startsWith('{"type":"joined"'))), 5000, 'every member joined');
    clients.push(...members);
  });

  after(async () => {
    for (const client of clients) client.ws.terminate();
    await plaza.close();
    server.close();
  });

  it('lets the upgrade request go once plain clients and plaza.v1 members are in', async () => {
    assert.equal(requests.length, 2 * CLIENTS, 'every client went through the door');
    await collectedEverything();
    const kept = requests.filter((request) => request.deref() !== undefined).length;
    assert.equal(kept, 0, `${kept} of ${requests.length} upgrade requests are still reachable from open connections`);
    assert.ok(clients.every((client) => client.ws.readyState === client.ws.OPEN), 'the connections are still open');
  });

  it('puts no listener of its own on each socket or ws: every connection shares the same functions', () => {
    const webSockets = sockets.map(webSocketOf);
    assert.ok(webSockets.every((ws) => ws !== undefined), 'ws keeps its WebSocket on the socket (ws 8)');
    for (const [what, emitters] of [['raw socket', sockets], ['ws', webSockets as NodeJS.EventEmitter[]]] as const) {
      for (const [event, { distinct, perEmitter }] of distinctListeners(emitters)) {
        assert.equal(distinct, perEmitter, `'${String(event)}' on each ${what}: ${distinct} different functions over ${emitters.length} connections, ${perEmitter} per connection`);
      }
    }
  });

  it('keeps no listener table on a ws, and one error listener on its raw socket (ws\'s own)', () => {
    // A connection's ws hands its events straight to the Connection (ws-server.ts PlazaWebSocket):
    // four listeners per connection were work and memory bare ws does not spend (issue 24).
    for (const ws of sockets.map(webSocketOf)) assert.deepEqual(ws?.eventNames(), [], 'no listener on an open connection\'s ws');
    // ws keeps an 'error' listener on the socket for its life; a second one of the door's is one listener array more per connection.
    for (const socket of sockets) assert.equal(socket.listenerCount('error'), 1, 'one error listener on each raw socket');
  });
});
