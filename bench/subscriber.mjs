/**
 * A WebSocket subscriber on a bare TCP socket: the handshake is written by hand and incoming
 * frames are walked header by header, so that 10,000 of them cost the load generator far less
 * than the server under test. Payload bytes are skipped unread unless they are needed: probes
 * read them (latency), and so do control frames and socket.io's engine.io packets (ping → pong).
 *
 * Wire flavours:
 *   'plain'           Plaza's default room and the bare-ws broadcast peer: ready after the 101.
 *   'v1'              a JSON join: Plaza's plaza.v1 (offered with `Sec-WebSocket-Protocol: plaza.v1`)
 *                     or the bare-ws rooms peer, which takes the same two requests. After the 101
 *                     the subscriber sends `{"type":"join","room":…}` and is ready on the
 *                     `{"type":"joined",…}` reply; every later data frame is a delivery.
 *   'socketio'        engine.io v4 over WebSocket: open packet "0{...}", then "40" → "40{...}",
 *                     then events as `42["msg", ...]`.
 *   'socketio-rooms'  the same, then `42["join","<room>"]` → `42["joined","<room>"]` (the
 *                     socket.io rooms peer), then events.
 *   'v1-presence'     'v1' joining with `"presence":true` (Plaza's watchers; the bare-ws rooms peer
 *                     ignores the field): the idle-rooms scenario's members.
 *   'plain-deflate'   'plain' that offers permessage-deflate as browsers do
 *                     (`permessage-deflate; client_max_window_bits`); frames are still walked
 *                     unread (RSV1 does not change a header's length), and bytes are counted.
 *                     Probes never take this flavour: they read payloads and do not inflate.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';

/** The sample nonce of RFC 6455 §1.3; every subscriber may use the same one. */
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';
/** A response head larger than this is not a WebSocket handshake. */
const MAX_HEAD = 8192;
/** engine.io control packets ("2" ping, "6" noop) are a byte or two; events are far longer. */
const SMALL_PACKET = 8;

const ENGINE_IO = '/socket.io/?EIO=4&transport=websocket';
export const PATHS = { plain: '/', v1: '/', 'v1-presence': '/', 'plain-deflate': '/', socketio: ENGINE_IO, 'socketio-rooms': ENGINE_IO };

/** The Sec-WebSocket-Extensions offer of 'plain-deflate' (what Chromium sends). */
export const DEFLATE_OFFER = 'permessage-deflate; client_max_window_bits';

/** The plaza.v1 subprotocol (PROTOCOL.md). */
export const SUBPROTOCOL = 'plaza.v1';

/**
 * What a client sends to join `room`, and how the reply starts, per flavour that joins. `since`
 * ({epoch, offset}, plaza.v1 only) resumes after that position (the reconnect storm); the bare-ws
 * rooms peer ignores the field.
 */
export const JOIN = {
  v1: (room, since) => JSON.stringify({ type: 'join', room, ...(since && { since }) }),
  'v1-presence': (room, since) => JSON.stringify({ type: 'join', room, presence: true, ...(since && { since }) }),
  'socketio-rooms': (room) => `42${JSON.stringify(['join', room])}`,
};
const JOINED = { v1: '{"type":"joined"', 'v1-presence': '{"type":"joined"', 'socketio-rooms': '42["joined"' };

const ID_PREFIX = randomBytes(9).toString('base64url');
let publishCount = 0;

/** What a publisher sends to publish `payload` (a string) to `room`, per flavour. */
export const PUBLISH = {
  plain: (payload) => payload,
  v1: (payload, room) => JSON.stringify({ type: 'publish', room, data: payload }),
  /** The same with a publish id, as Plaza's client sends it (issue #22): a random part and a counter. */
  'v1-ids': (payload, room) => JSON.stringify({ type: 'publish', room, data: payload, publishId: `${ID_PREFIX}.${(++publishCount).toString(36)}` }),
  socketio: (payload) => `42${JSON.stringify(['msg', payload])}`,
  'socketio-rooms': (payload, room) => `42${JSON.stringify(['publish', { room, data: payload }])}`,
};

/** True when `text` is the reply to a join in `flavour`. */
export const isJoined = (flavour, text) => text.startsWith(JOINED[flavour]);

/** A masked client frame (RFC 6455 §5.3); control and handshake payloads only, so < 126 bytes. */
export function clientFrame(opcode, payload) {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  if (data.length >= 126) throw new RangeError('clientFrame is for short frames only');
  const mask = randomBytes(4);
  const frame = Buffer.allocUnsafe(6 + data.length);
  frame[0] = 0x80 | opcode;
  frame[1] = 0x80 | data.length;
  mask.copy(frame, 2);
  for (let i = 0; i < data.length; i++) frame[6 + i] = data[i] ^ mask[i & 3];
  return frame;
}

/**
 * Milliseconds on CLOCK_MONOTONIC (libuv's hrtime), which every process on the machine shares:
 * the publisher and the probes may live in different processes and still subtract timestamps.
 */
export const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/** "<seq> <send time in ms> " then padding: the same bytes for every server. */
export function makePayload(seq, size) {
  const head = `${seq} ${nowMs().toFixed(3)} `;
  return head.length >= size ? head : head.padEnd(size, 'x');
}

const WORDS = (
  'the a room plaza message send chat hello again today tomorrow meeting lunch coffee deploy build test ' +
  'release fixed broken server client socket window page please thanks sure maybe later soon ok great ' +
  'review merge branch commit issue ticket customer order price ship box team sprint plan design idea'
).split(' ');

/**
 * A JSON chat message of about `size` bytes, as a chat page would send it: the send stamp first
 * (the probes look for it in the first 64 bytes), then a user and text of ordinary words chosen by
 * `seq` (deterministic, so every server gets the same bytes). Compresses like real chat, unlike
 * makePayload's padding.
 */
export function makeChatPayload(seq, size) {
  const head = `{"stamp":"${seq} ${nowMs().toFixed(3)} ","user":"user-${seq % 97}","room":"lobby","text":"`;
  let text = '';
  let state = (seq * 2654435761) >>> 0;
  while (head.length + text.length + 2 < size) {
    state = (state * 1103515245 + 12345) >>> 0;
    text += `${WORDS[state % WORDS.length]} `;
  }
  return `${head}${text.slice(0, Math.max(0, size - head.length - 2))}"}`;
}

const STAMP = /(\d+) (\d+\.\d+) /;

/**
 * Reads the send time out of a payload: plain text starts with it; in a JSON envelope
 * (plaza.v1, socket.io's `42["msg","..."]`) it is the first "digits space digits.digits space"
 * anywhere, since no other field of those envelopes holds a space.
 */
export function sentAt(payload, whole = false) {
  const m = STAMP.exec(payload.toString('latin1', 0, whole ? payload.length : Math.min(payload.length, 64)));
  return m ? Number(m[2]) : NaN;
}

/**
 * Shared counters for one population of subscribers. `target` is set per measurement; when
 * `delivered` reaches it, `onTarget` fires once.
 */
export class Sink {
  delivered = 0;
  target = Infinity;
  lastAt = 0;
  latencies = [];
  onTarget = null;
  errors = 0;
  /** Bytes read from ready subscribers' sockets since arm(): frames as they came over the wire. */
  bytes = 0;

  /** Times at which each twentieth of `target` was reached: where a slow burst spent its time. */
  marks = [];
  nextMark = Infinity;

  arm(target) {
    this.delivered = 0;
    this.latencies = [];
    this.lastAt = 0;
    this.bytes = 0;
    this.target = target;
    this.marks = [];
    this.nextMark = Math.ceil(target / 20);
  }

  count(now) {
    if (++this.delivered >= this.nextMark) {
      this.marks.push(now ?? nowMs());
      this.nextMark = Math.ceil((this.target * (this.marks.length + 1)) / 20);
    }
    if (this.delivered === this.target) {
      this.lastAt = now ?? nowMs();
      const done = this.onTarget;
      this.onTarget = null;
      done?.();
    }
  }
}

export class Subscriber {
  /**
   * @param {{ port: number, flavour: 'plain' | 'v1' | 'socketio' | 'socketio-rooms', room?: string, probe: boolean, sink: Sink, query?: string }} options
   *   `query` is appended to the handshake's path, e.g. `?token=…` for a Plaza that requires tokens.
   *   `since` ({epoch, offset}) makes a plaza.v1 join a resume (the reconnect storm).
   */
  constructor({ port, flavour, room = 'lobby', probe, sink, query = '', since }) {
    // Probes read payloads and do not inflate them: they never offer permessage-deflate.
    if (probe && flavour === 'plain-deflate') flavour = 'plain';
    this.port = port;
    this.flavour = flavour;
    this.room = room;
    this.query = query;
    this.since = since;
    /** From the `joined` reply (plaza.v1): where to resume after a reconnect, and whether this join was a recovered resume. */
    this.position = undefined;
    this.recovered = false;
    this.engineIo = flavour.startsWith('socketio');
    /** Speaks plaza.v1 (joins with a JSON request and waits for `joined`). */
    this.v1 = flavour.startsWith('v1');
    this.probe = probe;
    this.sink = sink;
    this.ready = false;
    this.closed = false;
    this.received = 0;
    this.head = '';
    this.carry = null;
    this.remaining = 0;
    this.opcode = 0;
    this.parts = null;
    this.socket = null;
  }

  /** Resolves once the subscriber would receive a broadcast; rejects on error or after `timeoutMs`. */
  connect(timeoutMs) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`handshake took more than ${timeoutMs} ms`)), timeoutMs);
      const fail = (error) => {
        clearTimeout(timer);
        this.destroy();
        reject(error);
      };
      this.onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      this.onFail = fail;
      const socket = net.connect({ host: '127.0.0.1', port: this.port, noDelay: true });
      this.socket = socket;
      socket.on('connect', () => {
        socket.write(
          `GET ${PATHS[this.flavour]}${this.query} HTTP/1.1\r\nHost: 127.0.0.1:${this.port}\r\nUpgrade: websocket\r\n` +
            `Connection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n` +
            (this.v1 ? `Sec-WebSocket-Protocol: ${SUBPROTOCOL}\r\n` : '') +
            (this.flavour === 'plain-deflate' ? `Sec-WebSocket-Extensions: ${DEFLATE_OFFER}\r\n` : '') +
            '\r\n',
        );
      });
      socket.on('data', (chunk) => this.onData(chunk));
      socket.on('error', (error) => {
        if (!this.ready) fail(error);
        else this.sink.errors++;
      });
      socket.on('close', () => {
        this.closed = true;
        if (!this.ready) fail(new Error('connection closed during the handshake'));
      });
    });
  }

  destroy() {
    this.closed = true;
    this.socket?.destroy();
  }

  onData(chunk) {
    if (this.ready) this.sink.bytes += chunk.length;
    if (this.head !== null) {
      // Still reading the HTTP response head; the first frame may follow in the same chunk.
      this.head += chunk.toString('latin1');
      const end = this.head.indexOf('\r\n\r\n');
      if (end === -1) {
        if (this.head.length > MAX_HEAD) this.onFail(new Error('oversized handshake response'));
        return;
      }
      const head = this.head.slice(0, end);
      const rest = Buffer.from(this.head.slice(end + 4), 'latin1');
      this.head = null;
      if (!head.startsWith('HTTP/1.1 101') || !head.includes(ACCEPT)) {
        this.onFail(new Error(`handshake refused: ${head.split('\r\n')[0]}`));
        return;
      }
      if (this.flavour === 'plain' || this.flavour === 'plain-deflate') this.becomeReady();
      else if (this.v1) this.socket.write(clientFrame(0x1, JOIN[this.flavour](this.room, this.since)));
      if (rest.length === 0) return;
      chunk = rest;
    }
    if (this.carry) {
      chunk = Buffer.concat([this.carry, chunk]);
      this.carry = null;
    }
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, n - i);
        if (this.parts) this.parts.push(chunk.subarray(i, i + take));
        i += take;
        this.remaining -= take;
        if (this.remaining === 0) this.endFrame();
        continue;
      }
      // A frame header: 2 bytes, +2 or +8 for the extended length. Server frames are unmasked.
      const available = n - i;
      if (available < 2) break;
      let length = chunk[i + 1] & 0x7f;
      let size = 2;
      if (length === 126) {
        if (available < 4) break;
        length = chunk.readUInt16BE(i + 2);
        size = 4;
      } else if (length === 127) {
        if (available < 10) break;
        length = chunk.readUInt32BE(i + 2) * 0x1_0000_0000 + chunk.readUInt32BE(i + 6);
        size = 10;
      }
      this.opcode = chunk[i] & 0x0f;
      i += size;
      this.remaining = length;
      this.parts = this.wants(this.opcode, length) ? [] : null;
      if (length === 0) this.endFrame();
    }
    // A header split across reads: keep its bytes (copied, so the big chunk can be freed).
    if (i < n) this.carry = Buffer.from(chunk.subarray(i));
  }

  wants(opcode, length) {
    return opcode >= 0x8 || this.probe || !this.ready || (this.engineIo && length < SMALL_PACKET);
  }

  endFrame() {
    const parts = this.parts;
    this.parts = null;
    const payload = parts === null ? null : parts.length === 1 ? parts[0] : Buffer.concat(parts);
    const opcode = this.opcode;
    if (opcode === 0x9) return void this.socket.write(clientFrame(0xa, payload));
    if (opcode >= 0x8 || opcode === 0x0) return; // close (the socket ends next), pong, continuation
    if (this.engineIo) {
      if (payload !== null && !this.onEngineIo(payload)) return;
    } else if (!this.ready) {
      // v1: the frames before the join reply are not deliveries.
      if (this.v1 && isJoined('v1', payload.toString('latin1', 0, 20))) {
        this.notePosition(payload);
        this.becomeReady();
      }
      return;
    }
    this.received++;
    if (this.probe) {
      const now = nowMs();
      const sent = sentAt(payload, !this.flavour.startsWith('plain'));
      if (!Number.isNaN(sent)) this.sink.latencies.push(now - sent);
      this.sink.count(now);
    } else {
      this.sink.count();
    }
  }

  /**
   * Plaza's `joined` reply names the room's epoch and last offset (PROTOCOL.md), where a later
   * resume starts; the bare-ws rooms peer's reply has neither. Read once per join, outside any
   * measured delivery.
   */
  notePosition(payload) {
    let reply;
    try {
      reply = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    if (typeof reply.epoch === 'string' && Number.isInteger(reply.offset)) this.position = { epoch: reply.epoch, offset: reply.offset };
    this.recovered = reply.recovered === true;
  }

  /** Handles an engine.io/socket.io packet; true when it is an event to count. */
  onEngineIo(payload) {
    const type = payload[0];
    if (type === 0x34 /* '4' message */ && payload[1] === 0x32 /* '2' event */) {
      if (this.ready) return true;
      if (this.flavour === 'socketio-rooms' && isJoined(this.flavour, payload.toString('latin1', 0, 16))) this.becomeReady();
      return false;
    }
    if (type === 0x32 /* '2' ping */) this.socket.write(clientFrame(0x1, '3'));
    else if (type === 0x30 /* '0' open */) this.socket.write(clientFrame(0x1, '40'));
    else if (type === 0x34 && payload[1] === 0x30 /* '40' connected */) {
      if (this.flavour === 'socketio') this.becomeReady();
      else this.socket.write(clientFrame(0x1, JOIN[this.flavour](this.room)));
    }
    return false;
  }

  becomeReady() {
    if (this.ready) return;
    this.ready = true;
    this.onReady();
  }
}
