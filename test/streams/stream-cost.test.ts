/**
 * What an open SSE stream keeps (issue 21, streams/takeover.ts): like a WebSocket connection
 * (test/connection-cost.test.ts), nothing of the request that opened it, and no function of its
 * own on its socket. Node's HTTP server kept the IncomingMessage, the ServerResponse, the parser
 * and its bound listeners for as long as the response was open, about as much heap again as the
 * stream. Taken from the server, a stream must still end when its client ends, and still get its
 * `close` event at shutdown although the server no longer counts it among its connections. These
 * tests count objects, never time or bytes: the bytes are the bench's SSE rows (`npm run bench`).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createPlaza, type Plaza } from '../../src/server/plaza.js';
import { SseClient } from '../helpers/sse-client.js';
import { until } from '../helpers/wait.mjs';

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

const STREAMS = 12;

describe('what an open SSE stream keeps', () => {
  let server: Server;
  let plaza: Plaza;
  let base: string;
  /** Every stream request and its response, held weakly, and the sockets (held by their streams anyway). */
  const requests: Array<WeakRef<IncomingMessage>> = [];
  const responses: Array<WeakRef<ServerResponse>> = [];
  const sockets: Socket[] = [];
  const clients: SseClient[] = [];

  before(async () => {
    server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sse`;
    plaza = createPlaza({ logLevel: 'silent' });
    await plaza.attach(server);
    // Before Plaza's own handler: sees each stream's request and keeps nothing of it but weak references.
    server.prependListener('request', (request: IncomingMessage, response: ServerResponse) => {
      if (request.method !== 'GET' || !request.url?.startsWith('/sse')) return;
      requests.push(new WeakRef(request));
      responses.push(new WeakRef(response));
      sockets.push(request.socket);
    });
    server.on('request', (request: IncomingMessage, response: ServerResponse) => plaza.handleRequest(request, response));
    for (let i = 0; i < STREAMS; i++) clients.push(await SseClient.open(i % 2 === 0 ? `${base}?room=lobby&presence=1` : base));
    await until(() => clients.every((client, i) => client.envelopes().some((e) => e.type === (i % 2 === 0 ? 'joined' : 'welcome'))), 5000, 'every stream opened');
  });

  after(async () => {
    for (const client of clients) client.close();
    await plaza.close();
    server.close();
  });

  it('lets the request and the response go once the streams are open', async () => {
    assert.equal(requests.length, STREAMS, 'every stream went through the door');
    await collectedEverything();
    const keptRequests = requests.filter((request) => request.deref() !== undefined).length;
    const keptResponses = responses.filter((response) => response.deref() !== undefined).length;
    assert.equal(keptRequests, 0, `${keptRequests} of ${STREAMS} stream requests are still reachable from open streams`);
    assert.equal(keptResponses, 0, `${keptResponses} of ${STREAMS} stream responses are still reachable from open streams`);
    assert.ok(clients.every((client) => !client.ended), 'the streams are still open');
  });

  it('leaves no parser on the sockets and puts no function of its own on them: every stream shares the same listeners', () => {
    for (const socket of sockets) {
      const served = socket as Socket & { parser?: unknown; _httpMessage?: unknown };
      assert.equal(served.parser ?? null, null, 'the HTTP parser was released');
      assert.equal(served._httpMessage ?? null, null, 'no response holds the socket');
    }
    for (const event of new Set(sockets.flatMap((socket) => socket.eventNames()))) {
      const functions = new Set(sockets.flatMap((socket) => socket.rawListeners(event)));
      const perSocket = Math.max(...sockets.map((socket) => socket.listenerCount(event)));
      assert.equal(functions.size, perSocket, `'${String(event)}' on each socket: ${functions.size} different functions over ${sockets.length} streams, ${perSocket} per stream`);
    }
  });

  it('keeps the streams when the server closes its idle connections, and they still carry messages', async () => {
    server.closeIdleConnections();
    const publisher = clients[0]!;
    assert.equal((await publisher.post([{ type: 'publish', id: 1, room: 'lobby', data: 'still here' }])).status, 204);
    const members = clients.filter((_, i) => i % 2 === 0);
    await until(() => members.every((client) => client.envelopes().some((e) => e.type === 'message' && e.data === 'still here')), 5000, 'the message on every lobby stream');
    assert.ok(clients.every((client) => !client.ended), 'no stream was cut');
  });

  it('ends a stream whose client ended its side, as the HTTP server did', async () => {
    const before = plaza.connectionCount;
    const raw = connect((server.address() as AddressInfo).port, '127.0.0.1');
    raw.setEncoding('utf8');
    let seen = '';
    raw.on('data', (chunk: string) => (seen += chunk));
    raw.write('GET /sse HTTP/1.1\r\nHost: plaza\r\nAccept: text/event-stream\r\n\r\n');
    await until(() => seen.includes('"type":"welcome"'), 5000, 'the welcome');
    assert.equal(plaza.connectionCount, before + 1);
    // Bytes after the request are nobody's: they are read and dropped, not answered.
    raw.write('not a request\r\n\r\n');
    raw.end();
    await until(() => raw.readableEnded || raw.destroyed, 5000, 'the server to end the stream too');
    await until(() => plaza.connectionCount === before, 5000, 'the stream to be gone');
  });

  it('says goodbye to every taken stream with a close event at shutdown', async () => {
    await plaza.close();
    for (const client of clients) {
      const last = await client.next((e) => e.type === 'close');
      assert.deepEqual([last.code, last.reason], [1001, 'server shutting down']);
    }
    await until(() => clients.every((client) => client.ended), 5000, 'the end of every response');
  });
});
