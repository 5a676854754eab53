/**
 * SSE against WebSocket on the same Plaza build (issue #21): CPU per delivery in a burst and
 * memory per connection, for `n` plaza.v1 subscribers of one room over each transport. Each
 * transport gets a fresh server process (with the memory preload, pinned like the others), the
 * same publisher (a plaza.v1 WebSocket, excludeSelf) and the same burst; subscribers are raw
 * sockets in this process that only look for the burst's last message, so what is measured is
 * the server's side. Goals: SSE within 2× of WebSocket's CPU per delivery, memory per connection
 * no more than WebSocket's.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { readCpu } from './proc.mjs';
import { canPin, collectGarbage, pinTo, SERVER_CORE, startProcess, stopProcess } from './servers.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const MEMORY_REPORT = ['--import', new URL('peers/memory-report.mjs', import.meta.url).href];
const ARGS = ['--port', '0', '--host', '127.0.0.1', '--log-level', 'warn', '--log-format', 'json', '--shutdown-timeout', '1000', '--rate-limit', '0', '--max-connections', '1000000'];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A masked client text frame (RFC 6455 §5.3). */
function clientFrame(text) {
  const payload = Buffer.from(text);
  const length = payload.length;
  const header = length < 126 ? 2 : length < 0x10000 ? 4 : 10;
  const frame = Buffer.alloc(header + 4 + length);
  frame[0] = 0x81;
  if (length < 126) frame[1] = 0x80 | length;
  else if (length < 0x10000) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  const mask = randomBytes(4);
  mask.copy(frame, header);
  for (let i = 0; i < length; i++) frame[header + 4 + i] = payload[i] ^ mask[i & 3];
  return frame;
}

/**
 * One raw client of `transport` in `room`: resolves `ready` once joined, then counts how often
 * `marker` went by (the text of each burst's last message), across chunk boundaries.
 */
class RawClient {
  constructor(port, transport, room) {
    this.transport = transport;
    this.marker = '';
    this.seen = 0;
    this.tail = '';
    this.joined = false;
    this.socket = connect(port, '127.0.0.1');
    this.socket.setEncoding('latin1');
    this.socket.on('error', () => undefined);
    this.ready = new Promise((resolve, reject) => {
      this.socket.on('close', () => reject(new Error(`${transport} client closed before joining`)));
      this.socket.once('connect', () => {
        if (transport === 'sse') {
          this.socket.write(`GET /sse?room=${room} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`);
        } else {
          this.socket.write(
            `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
              `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: plaza.v1\r\n\r\n`,
          );
        }
      });
      this.socket.on('data', (text) => {
        const seen = this.tail + text;
        if (!this.joined) {
          if (transport === 'websocket' && !this.upgraded && seen.includes('\r\n\r\n')) {
            this.upgraded = true;
            this.socket.write(clientFrame(JSON.stringify({ type: 'join', room })));
          }
          if (seen.includes('"type":"joined"')) {
            this.joined = true;
            resolve();
          }
        } else if (this.marker) {
          let at = seen.indexOf(this.marker);
          while (at !== -1) {
            this.seen++;
            at = seen.indexOf(this.marker, at + this.marker.length);
          }
        }
        this.tail = seen.slice(-64);
      });
    });
  }

  send(text) {
    this.socket.write(clientFrame(text));
  }

  close() {
    this.socket.destroy();
  }
}

/** Connects `n` clients, `batch` at a time. */
async function population(port, transport, n, batch = 200) {
  const clients = [];
  for (let i = 0; i < n; i += batch) {
    const wave = Array.from({ length: Math.min(batch, n - i) }, () => new RawClient(port, transport, 'lobby'));
    await Promise.all(wave.map((c) => c.ready));
    clients.push(...wave);
  }
  return clients;
}

/** One burst of `messages` from the publisher; resolves with the server's CPU µs once every subscriber saw the last. */
async function burst(server, publisher, subscribers, messages, size, tag) {
  const marker = `"END-${tag}"`;
  for (const client of subscribers) {
    client.marker = marker;
    client.seen = 0;
  }
  const data = 'x'.repeat(size);
  const frames = [];
  for (let i = 0; i < messages - 1; i++) frames.push(clientFrame(JSON.stringify({ type: 'publish', room: 'lobby', data, excludeSelf: true })));
  frames.push(clientFrame(JSON.stringify({ type: 'publish', room: 'lobby', data: `END-${tag}`, excludeSelf: true })));
  const before = readCpu(server.pid).us;
  publisher.socket.write(Buffer.concat(frames));
  const deadline = Date.now() + 60_000;
  while (subscribers.some((c) => c.seen === 0)) {
    if (Date.now() > deadline) throw new Error(`burst ${tag}: not every subscriber got the last message`);
    await sleep(2);
  }
  return readCpu(server.pid).us - before;
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * Measures one transport on a fresh server: { cpuPerDelivery (µs), heapPerConnection, rssPerConnection (bytes) }.
 */
async function measure(transport, { connections, messages, size, repeats }) {
  const server = await startProcess({ label: `Plaza (${transport})`, script: `${root}dist/server.js`, args: ARGS, nodeArgs: MEMORY_REPORT });
  try {
    if (canPin()) pinTo(server.pid, SERVER_CORE);
    const publisher = new RawClient(server.port, 'websocket', 'lobby');
    await publisher.ready;
    await sleep(200);
    const base = await collectGarbage(server.child);
    const subscribers = await population(server.port, transport, connections);
    await sleep(500);
    const loaded = await collectGarbage(server.child);
    await burst(server, publisher, subscribers, 10, size, 'warm');
    const cpu = [];
    for (let r = 0; r < repeats; r++) {
      await sleep(200);
      cpu.push(await burst(server, publisher, subscribers, messages, size, `b${r}`));
    }
    for (const client of [...subscribers, publisher]) client.close();
    return {
      cpuPerDelivery: median(cpu) / (connections * messages),
      heapPerConnection: (loaded.liveHeapUsed - base.liveHeapUsed) / connections,
      rssPerConnection: (loaded.liveRss - base.liveRss) / connections,
    };
  } finally {
    await stopProcess(server);
  }
}

/** The scenario's figures for one run: `sse.<transport>.<figure>`. */
export async function sseVersusWebSocket(options) {
  const out = {};
  for (const transport of ['websocket', 'sse']) {
    const m = await measure(transport, options);
    out[`sse.${transport}.cpu`] = m.cpuPerDelivery;
    out[`sse.${transport}.heap`] = m.heapPerConnection;
    out[`sse.${transport}.rss`] = m.rssPerConnection;
  }
  return out;
}
