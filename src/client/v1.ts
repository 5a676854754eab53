/**
 * plaza.v1 (PROTOCOL.md) over the reconnecting transport: on every open, hello and a rejoin of
 * each room from its last delivered position, written before any queued publish; request ids
 * matched to their replies; acks, timeouts and the offline queue of publishes; room traffic
 * routed to its Room.
 */
import type { ServerMessage, Welcome } from '../shared/protocol.js';
import { PlazaError, type ErrorCode } from './error.js';
import { fail, type ResolvedOptions } from './options.js';
import { createRoom, type JoinOptions, type PublishAck, type PublishOptions, type Room, type RoomState } from './room.js';
import { sizeOf, type CloseInfo } from './socket.js';
import type { Transport } from './transport.js';

/** A publish from publish() to its ack; `frame` is encoded once, when publish() is called. */
interface Publish {
  readonly id: number;
  readonly frame: string;
  /** The frame's bytes on the wire. */
  readonly bytes: number;
  readonly state: RoomState;
  /** Sent with excludeSelf: its ack stands for a message that never comes to us. */
  readonly excluded: boolean;
  readonly resolve: (ack: PublishAck) => void;
  readonly reject: (error: PlazaError) => void;
  timer?: ReturnType<typeof setTimeout>;
}

/** What the server sent, or what the client concludes itself (timeout, disconnected, …). */
type Reply = ServerMessage | { type: 'error'; id?: undefined; code: ErrorCode; message: string };

/** The server's beat interval times this, without any frame, means the link is dead. */
const SILENCE_FACTOR = 2.5;

export interface V1 {
  readonly session: string | undefined;
  join(name: string, options?: JoinOptions): Room;
  setName(name: string): void;
  handshake(): void;
  message(data: string | ArrayBuffer): void;
  close(info: CloseInfo): void;
}

const error = (code: ErrorCode, message: string): Reply => ({ type: 'error', code, message });

/** What the v1 layer tells the client about the connection itself (not about a room). */
export interface V1Events {
  welcome(welcome: Welcome): void;
  notice(text: string): void;
}

export function createV1(options: ResolvedOptions, transport: () => Transport, events: V1Events): V1 {
  let lastId = 0;
  let name = options.name;
  let session: string | undefined;
  let maxPayload = 0;
  let closed = false;
  const rooms = new Map<string, RoomState>();
  /**
   * Requests written to the current socket and not answered yet, oldest first: a publish, a
   * join (its room), or a hello/leave (nothing to settle). The server answers in order, so an
   * error without an id (rate limiting drops a frame unread) belongs to the oldest one.
   */
  const inflight = new Map<number, Publish | RoomState | undefined>();
  /** Bytes of the publishes in `inflight`, at most maxInflightBytes (or one publish). */
  let inflightBytes = 0;
  /** Publishes waiting for a socket or for room in flight, oldest first: maxQueue, maxQueueBytes. */
  let queue: Publish[] = [];
  let queuedBytes = 0;

  /** Writes a request and remembers it until its reply; false when no socket is open. */
  function write(id: number, frame: string, entry?: Publish | RoomState): boolean {
    if (!transport().write(frame)) return false;
    inflight.set(id, entry);
    return true;
  }

  function request(body: Record<string, unknown>, entry?: RoomState): boolean {
    const id = ++lastId;
    return write(id, JSON.stringify({ ...body, id }), entry);
  }

  function settle(p: Publish, reply: Reply): void {
    clearTimeout(p.timer);
    if (reply.type == 'ack') {
      if (p.excluded) p.state.skip(reply);
      p.resolve({ room: reply.room, offset: reply.offset, epoch: reply.epoch });
    } else if (reply.type == 'error') p.reject(new PlazaError(reply.code, reply.message));
  }

  function send(p: Publish): boolean {
    // A frame over the server's maxPayload would make it close the connection (1009).
    if (maxPayload && p.bytes > maxPayload) {
      settle(p, error('too_large', `the message is larger than the server's limit of ${maxPayload} bytes`));
      return true;
    }
    if (inflightBytes && inflightBytes + p.bytes > options.maxInflightBytes) return false;
    if (!write(p.id, p.frame, p)) return false;
    inflightBytes += p.bytes;
    if (options.ackTimeout) {
      p.timer = setTimeout(() => settle(p, error('timeout', `no ack within ${options.ackTimeout} ms`)), options.ackTimeout);
    }
    return true;
  }

  function enqueue(p: Publish): void {
    const full = error('queue_full', 'too many publishes wait (options.maxQueue, options.maxQueueBytes); the oldest are dropped');
    // Larger than the whole queue on its own: refused, and nothing else with it.
    if (p.bytes > options.maxQueueBytes) return settle(p, full);
    queue.push(p);
    queuedBytes += p.bytes;
    while (queue.length > options.maxQueue || queuedBytes > options.maxQueueBytes) {
      const dropped = queue.shift()!;
      queuedBytes -= dropped.bytes;
      settle(dropped, full);
    }
  }

  /** Sends what waits in the queue, in order, while the socket and maxInflightBytes take it. */
  function flush(): void {
    while (queue.length && send(queue[0]!)) queuedBytes -= queue.shift()!.bytes;
  }

  /** Ends a room: left by the application, or its join refused (`refusal`). */
  function drop(state: RoomState, refusal?: PlazaError): void {
    if (!state.active) return;
    rooms.delete(state.room.name);
    if (refusal) state.fail(refusal);
    else {
      state.active = false;
      request({ type: 'leave', room: state.room.name });
    }
    // Its queued publishes cannot reach the room any more.
    const kept: Publish[] = [];
    for (const p of queue) {
      if (p.state == state) {
        queuedBytes -= p.bytes;
        settle(p, error('not_joined', `room ${state.room.name} was left`));
      } else kept.push(p);
    }
    queue = kept;
  }

  function dispatch(m: Reply): void {
    const id = m.type == 'error' && m.id === undefined ? inflight.keys().next().value : (m as { id?: unknown }).id;
    if (typeof id == 'number') {
      const entry = inflight.get(id);
      inflight.delete(id);
      if (entry && 'frame' in entry) {
        inflightBytes -= entry.bytes;
        settle(entry, m);
        flush();
      } else if (entry && m.type == 'error') drop(entry, new PlazaError(m.code, m.message));
    }
    switch (m.type) {
      case 'welcome':
        session = m.session;
        maxPayload = m.limits?.maxPayload ?? 0;
        transport().watch(m.heartbeat * SILENCE_FACTOR || 0);
        events.welcome(m);
        break;
      case 'notice':
        events.notice(m.text);
        break;
      case 'joined':
        rooms.get(m.room)?.joined(m);
        break;
      case 'message':
        rooms.get(m.room)?.message(m);
        break;
      case 'presence':
        rooms.get(m.room)?.presence(m);
    }
  }

  const host = {
    publish: (state: RoomState, data: unknown, { excludeSelf }: PublishOptions) =>
      new Promise<PublishAck>((resolve, reject) => {
        const id = ++lastId;
        // Encoded now: the caller may change `data` while the message waits offline.
        const frame = JSON.stringify({ type: 'publish', id, room: state.room.name, data, ...(excludeSelf && { excludeSelf }) });
        const p: Publish = { id, frame, bytes: sizeOf(frame), state, excluded: !!excludeSelf, resolve, reject };
        if (closed) settle(p, error('closed', 'the client is closed'));
        else if (!state.active) settle(p, error('not_joined', `room ${state.room.name} was left`));
        // Behind what already waits, so publishes keep their order.
        else if (queue.length || !(transport().status == 'open' && send(p))) enqueue(p);
      }),
    leave: (state: RoomState) => drop(state),
  };

  return {
    get session() {
      return session;
    },
    join(room, joinOptions = {}) {
      if (typeof room != 'string') fail(`join() takes a room name, got ${typeof room}`);
      const existing = rooms.get(room);
      if (existing) return existing.room;
      const state = createRoom(room, joinOptions, host);
      if (closed) state.active = false;
      else {
        rooms.set(room, state);
        request(state.request(), state);
      }
      return state.room;
    },
    setName(next) {
      name = next;
      request({ type: 'hello', ...(name && { name }) });
    },
    handshake() {
      request({ type: 'hello', ...(name && { name }) });
      for (const state of rooms.values()) request(state.request(), state);
      flush();
    },
    message(data) {
      try {
        if (typeof data == 'string') dispatch(JSON.parse(data) as Reply);
      } catch {
        // Not JSON, or not the shape PROTOCOL.md promises: a frame no Plaza sends; ignored.
      }
    },
    close(info) {
      const reply = info.willReconnect
        ? error('disconnected', `the connection dropped (${info.code}) before the ack; the message may or may not have been published`)
        : error('closed', 'the client was closed before the ack');
      for (const entry of inflight.values()) if (entry && 'frame' in entry) settle(entry, reply);
      inflight.clear();
      inflightBytes = 0;
      if (!info.willReconnect) {
        closed = true;
        queuedBytes = 0;
        for (const p of queue.splice(0)) settle(p, reply);
        for (const state of rooms.values()) state.active = false;
        rooms.clear();
      }
    },
  };
}
