/**
 * Takes an SSE stream's socket from Node's HTTP server once the response's head is written, the
 * way an upgrade hands a socket to ws (node's _http_server.js, onParserExecuteCommon): the
 * server's listeners come off, the request parser is released, and the response lets the socket
 * go. Until then Node keeps, for every open stream, the IncomingMessage, the ServerResponse, the
 * HTTP parser and a dozen bound functions: about as much heap again as the stream itself, the
 * reason an SSE stream cost more than a WebSocket (bench/sse.mjs). After it the stream keeps its
 * socket and nothing of the request, like a WebSocket connection.
 *
 * It also takes the socket off the server's list of connections, so `closeIdleConnections()` at
 * shutdown no longer counts a stream as idle: a taken stream is the SSE side's to close, with its
 * `close` event (side.ts), as an upgraded socket is the WebSocket side's.
 *
 * Which listeners are the server's is learned once, from a connection handed to a server that
 * never reads it, by name (a bound function is named after its target): no list of Node's
 * private names to keep up to date here.
 */
import { Server as HttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Socket } from 'node:net';

/** What Node's HTTP server hangs on a connection's socket, besides its listeners. */
interface HttpParser {
  _consumed?: boolean;
  unconsume(): void;
  remove(): void;
  close(): void;
}
type ServedSocket = Socket & { parser?: HttpParser | null; _httpMessage?: unknown };

/** The socket methods the server overrides on each connection (to stop consuming on a 'data' listener). */
const OVERRIDDEN = ['on', 'addListener', 'prependListener', 'setEncoding'] as const;

let serverListeners: Map<string | symbol, ReadonlySet<string>> | undefined;

/** Per event, the names of the listeners Node's HTTP server adds to every connection. */
function learnServerListeners(): Map<string | symbol, ReadonlySet<string>> {
  const bare = new Socket();
  const probe = new Socket();
  new HttpServer().emit('connection', probe);
  const learned = new Map<string | symbol, ReadonlySet<string>>();
  for (const event of probe.eventNames()) {
    const own = new Set(bare.rawListeners(event).map((listener) => listener.name));
    const names = probe.rawListeners(event).map((listener) => listener.name).filter((name) => !own.has(name));
    if (names.length > 0) learned.set(event, new Set(names));
  }
  // Its 'close' returns the parser the server took for it.
  probe.destroy();
  bare.destroy();
  return learned;
}

/**
 * Released on the next turn: the stream may start inside the parser's own callback (a request
 * decided at once), and the parser must not be closed under itself (Node defers it the same way).
 */
function releaseParser(parser: HttpParser): void {
  if (parser._consumed) parser.unconsume();
  parser._consumed = false;
  parser.remove();
  parser.close();
}

// Shared by every taken socket: no function of its own per stream.
function ignoreError(): void {
  // 'close' follows an error; the stream learns of its end there.
}
function discard(): void {
  // Nothing comes up a stream: its requests are POSTs.
}
/** The client ended its side: end ours, as the HTTP server did (httpAllowHalfOpen is false). */
function endToo(this: Socket): void {
  this.end();
}

/**
 * Takes the socket of `response`, whose head was written (flushHeaders), from Node's HTTP server;
 * undefined, leaving everything as it was, when the response is not the one on its socket
 * (another request's answer is still going out) or the server is not Node's HTTP/1.
 */
export function takeSocket(request: IncomingMessage, response: ServerResponse): Socket | undefined {
  const socket = request.socket as ServedSocket;
  const parser = socket.parser;
  if (socket._httpMessage !== response || !parser || typeof parser.close !== 'function') return undefined;
  response.detachSocket(socket);
  serverListeners ??= learnServerListeners();
  for (const [event, names] of serverListeners) {
    for (const listener of socket.rawListeners(event)) if (names.has(listener.name)) socket.removeListener(event, listener as (...args: unknown[]) => void);
  }
  // Put back, not deleted: a deleted property turns the socket into a dictionary, 1.5 KiB more.
  for (const method of OVERRIDDEN) if (Object.hasOwn(socket, method)) (socket as unknown as Record<string, unknown>)[method] = Socket.prototype[method];
  socket.parser = null;
  setImmediate(releaseParser, parser);
  // The server's timeout (an attached application's server.timeout) is no stream's: like ws.
  if (socket.timeout) socket.setTimeout(0);
  socket.on('error', ignoreError);
  socket.on('end', endToo);
  socket.on('data', discard);
  // Read again if the server had paused the socket (it does while answers queue): a client's
  // end must still be noticed.
  socket.resume();
  return socket;
}
