/**
 * Taking a stream's socket from Node's HTTP server (src/server/streams/takeover.ts), on a real
 * http server on port 0 with a real client: what it takes when the response is the one on its
 * socket, and that it leaves everything as it was when it is not (another answer still going out,
 * or a server that is not Node's HTTP/1), so the stream falls back to writing past the response.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, ServerResponse, type IncomingMessage } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import { connect, Socket, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { takeSocket } from '../../src/server/streams/takeover.js';
import { until } from '../helpers/wait.mjs';

/** The names of a socket's listeners, per event. */
function listenerNames(socket: Socket): Record<string, string[]> {
  return Object.fromEntries(socket.eventNames().map((event) => [String(event), socket.rawListeners(event).map((listener) => listener.name)]));
}

/** A server whose handler is `handle`, one raw client that sent `requests`, and what the client read. */
async function serve(handle: (request: IncomingMessage, response: ServerResponse) => void, requests: string) {
  const server = createServer(handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  client.setEncoding('utf8');
  const read = { text: '', ended: false };
  client.on('data', (chunk: string) => (read.text += chunk));
  client.on('end', () => (read.ended = true));
  client.write(requests);
  return {
    read,
    client,
    async close() {
      client.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('taking a stream socket from the HTTP server', () => {
  it('takes the socket of the response on it: the server listeners and the parser go, writes and the client end still work', async () => {
    let taken: Socket | undefined;
    let before: Record<string, string[]> = {};
    const run = await serve((request, response) => {
      before = listenerNames(request.socket);
      response.useChunkedEncodingByDefault = false;
      response.writeHead(200, { 'Content-Type': 'text/event-stream', Connection: 'close' });
      response.flushHeaders();
      taken = takeSocket(request, response);
      taken?.write('data: past the head\n\n');
    }, 'GET /sse HTTP/1.1\r\nHost: plaza\r\n\r\n');
    try {
      await until(() => run.read.text.includes('data: past the head'), 5000, 'the event after the head');
      assert.ok(taken, 'the socket was taken');
      assert.ok(before.data?.some((name) => name.includes('socketOnData')), `the server listened before: ${JSON.stringify(before)}`);
      const after = listenerNames(taken);
      assert.deepEqual(after.data, ['discard']);
      assert.deepEqual(after.error, ['ignoreError']);
      assert.equal(after.close, undefined, 'the server no longer listens for the close');
      assert.equal(after.timeout, undefined);
      assert.equal((taken as Socket & { parser?: unknown }).parser, null);
      assert.equal(taken.on, Socket.prototype.on, 'the socket methods are its own again');
      run.client.end();
      await until(() => run.read.ended && taken!.destroyed, 5000, 'the server to end the socket too');
    } finally {
      await run.close();
    }
  });

  it('takes a TLS socket the same way: events still go out encrypted after the head', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plaza-takeover-'));
    try {
      const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
      let taken: Socket | undefined;
      const server = createHttpsServer({ cert: readFileSync(cert), key: readFileSync(key) }, (request, response) => {
        // As the SSE side does: the body is the events, ended by the connection's end, not chunked.
        response.useChunkedEncodingByDefault = false;
        response.writeHead(200, { 'Content-Type': 'text/event-stream', Connection: 'close' });
        response.flushHeaders();
        taken = takeSocket(request, response);
        taken?.write('data: over tls\n\n');
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      let text = '';
      const request = httpsRequest(`https://127.0.0.1:${(server.address() as AddressInfo).port}/sse`, { rejectUnauthorized: false, agent: false }, (response) => {
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
      });
      request.on('error', () => {});
      request.end();
      try {
        await until(() => text.includes('data: over tls'), 5000, 'the event over TLS');
        assert.ok(taken, 'the TLS socket was taken');
        assert.equal((taken as Socket & { parser?: unknown }).parser, null);
      } finally {
        request.destroy();
        server.closeAllConnections();
        taken?.destroy();
        await new Promise((resolve) => server.close(resolve));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('leaves a socket alone whose response is not the one on it, and one that no HTTP/1 parser serves', async () => {
    let result: Socket | undefined | 'not called' = 'not called';
    const run = await serve((request, response) => {
      // Another answer of the same socket still going out: this response is not on the socket.
      result = takeSocket(request, new ServerResponse(request));
      response.end('still served');
    }, 'GET /sse HTTP/1.1\r\nHost: plaza\r\n\r\nGET /sse HTTP/1.1\r\nHost: plaza\r\n\r\n');
    try {
      // The server still serves both pipelined requests on the socket it kept.
      await until(() => run.read.text.split('still served').length === 3, 5000, 'both answers');
      assert.equal(result, undefined);
    } finally {
      await run.close();
    }
    const bare = new Socket();
    const request = { socket: bare } as unknown as IncomingMessage;
    assert.equal(takeSocket(request, {} as ServerResponse), undefined);
    assert.deepEqual(bare.eventNames().filter((event) => event !== 'end'), []);
    bare.destroy();
  });
});
