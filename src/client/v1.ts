/**
 * plaza.v1 (PROTOCOL.md) over the reconnecting transport: on every open, hello and a rejoin of
 * each room from its last delivered position, written before any queued publish; request ids
 * matched to their replies; acks, timeouts and the offline queue of publishes; room traffic
 * routed to its Room.
 *
 * Publishing once (issue #22): every publish carries a publish id. One written to a link that
 * dropped, or not answered within ackTimeout, has an outcome only the server knows, so it is
 * never rejected for that: after the reconnect it is written again, first and in order, with the
 * same id, and the server answers a repeat with the first ack. A publish therefore resolves
 * with its place, or rejects with a code that means it was not published (error.ts).
 *
 * The total deadline (publishTimeout, issue #22 item 3): a publish written and not answered by
 * then is not sent again; the server is asked to settle its id (`withdraw`) instead, on this
 * connection or the next: it answers the publish's first ack, or records the id as withdrawn so
 * no copy can be published any more, and the publish rejects with `timeout`.
 */
import type { ServerMessage, Welcome } from '../shared/protocol.js';
import { PlazaError, type ErrorCode } from './error.js';
import { fail, type ResolvedOptions } from './options.js';
import { createPublishIds } from './publish-ids.js';
import { backoffDelay } from './retry.js';
import { createRoom, type EphemeralAck, type JoinOptions, type PublishAck, type PublishOptions, type Room, type RoomState } from './room.js';
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
  /** To the members of the moment only: never queued, never sent again, no publish id. */
  readonly ephemeral: boolean;
  readonly resolve: (ack: PublishAck | EphemeralAck) => void;
  readonly reject: (error: PlazaError) => void;
  timer?: ReturnType<typeof setTimeout>;
  /** publishTimeout, from publish(): rejects it while it was never written. */
  deadline?: ReturnType<typeof setTimeout>;
  /** Written at least once: the server may have published it, so it is re-sent until answered, never dropped. */
  written?: boolean;
  /** Written again after a drop or a refusal that asked for a retry. */
  resent?: boolean;
  /** The room's epoch when it was first written: an ack in another epoch after a re-send may be a second copy. */
  epoch?: string | undefined;
  /** The room's resets when it was first written: one since then means the same as another epoch. */
  resets?: number;
  /** Its publish id (none for an ephemeral one), for a withdraw. */
  readonly publishId?: string;
  /** publishTimeout passed after it was written: never sent again, its withdraw settles it. */
  withdrawing?: boolean;
  settled?: boolean;
}

/** A `withdraw` written for a publish: its answer settles that publish. */
interface Withdrawal {
  readonly withdraw: Publish;
}

/** What the server sent, or what the client concludes itself (timeout, queue_full, …). */
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
  const inflight = new Map<number, Publish | RoomState | Withdrawal | undefined>();
  /** Bytes of the publishes in `inflight`, at most maxInflightBytes (or one publish). */
  let inflightBytes = 0;
  /** Publishes waiting for a socket or for room in flight, oldest first: maxQueue, maxQueueBytes. */
  let queue: Publish[] = [];
  let queuedBytes = 0;
  /**
   * Publishes written before and not answered (the link dropped, or the server asked for a
   * retry), oldest first: re-sent before the queue. At most what was in flight (maxInflightBytes,
   * or one publish), so bounded without dropping: dropping one would leave its outcome unknown.
   */
  let retry: Publish[] = [];
  /** Publishes past publishTimeout whose withdraw waits to be written (at most what `retry` and `inflight` held). */
  let withdrawals: Publish[] = [];
  /** After an `unavailable`: re-sends wait for this backoff timer; `refusals` in a row drive it. */
  let hold: ReturnType<typeof setTimeout> | undefined;
  let refusals = 0;
  const nextPublishId = createPublishIds();

  /** Writes a request and remembers it until its reply; false when no socket is open. */
  function write(id: number, frame: string, entry?: Publish | RoomState | Withdrawal): boolean {
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
    p.settled = true;
    clearTimeout(p.deadline);
    if (reply.type == 'ack' && 'ephemeral' in reply) p.resolve({ room: reply.room, ephemeral: true });
    else if (reply.type == 'ack') {
      refusals = 0;
      if (p.excluded) p.state.skip(reply);
      p.resolve({
        room: reply.room,
        offset: reply.offset,
        epoch: reply.epoch,
        ...(reply.duplicate && { duplicate: true }),
        // Re-sent into a room that started over meanwhile: the server cannot know the first try.
        // (A node's island copy, made while Redis was away, is in a timeline left with a reset.)
        ...(p.resent && !reply.duplicate && ((p.epoch && p.epoch != reply.epoch) || p.resets != p.state.resets) && { mayRepeat: true }),
      });
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
    if (!p.written) {
      p.epoch = p.state.room.position?.epoch;
      p.resets = p.state.resets;
    }
    p.written = true;
    inflightBytes += p.bytes;
    if (options.ackTimeout) {
      // No answer in time: the link is taken for dead, and the publish is re-sent on the next one.
      p.timer = setTimeout(() => transport().reconnect('ack timeout'), options.ackTimeout);
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

  /** Sends what waits, re-sends first, in order, while the socket and maxInflightBytes take it. */
  function flush(): void {
    if (hold) return;
    while (withdrawals.length && write(++lastId, JSON.stringify({ type: 'withdraw', id: lastId, room: withdrawals[0]!.state.room.name, publishId: withdrawals[0]!.publishId }), { withdraw: withdrawals[0]! })) withdrawals.shift();
    while (retry.length && send(retry[0]!)) retry.shift();
    if (retry.length) return;
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
    // Its queued publishes cannot reach the room any more, nor its written ones be sent again
    // (the application gave those up by leaving: the room's history has their fate).
    const left = error('not_joined', `room ${state.room.name} was left`);
    const kept: Publish[] = [];
    for (const p of queue) {
      if (p.state == state) {
        queuedBytes -= p.bytes;
        settle(p, left);
      } else kept.push(p);
    }
    queue = kept;
    retry = retry.filter((p) => p.state != state || void settle(p, left));
    withdrawals = withdrawals.filter((p) => p.state != state || void settle(p, left));
  }

  /** After an `unavailable`: what waits is sent again after a backoff. */
  function backoff(): void {
    if (!hold) hold = setTimeout(() => ((hold = undefined), flush()), backoffDelay(refusals++, options.minDelay, options.maxDelay));
  }

  /** The answer to a withdraw settles its publish, unless the publish's own answer came first. */
  function withdrawn(p: Publish, m: Reply): void {
    if (p.settled) return;
    if (m.type == 'error' && m.code == 'unavailable') {
      withdrawals.push(p);
      return backoff();
    }
    // The room started over since the first try: the window that knew it may be gone with it.
    const moved = p.epoch && p.state.room.position?.epoch != p.epoch;
    if (m.type == 'withdrawn') settle(p, moved ? error('epoch_changed', 'publishTimeout passed; the room started over meanwhile') : error('timeout', 'publishTimeout passed'));
    else settle(p, m);
  }

  function dispatch(m: Reply): void {
    const id = m.type == 'error' && m.id === undefined ? inflight.keys().next().value : (m as { id?: unknown }).id;
    if (typeof id == 'number') {
      const entry = inflight.get(id);
      inflight.delete(id);
      if (entry && 'withdraw' in entry) return withdrawn(entry.withdraw, m);
      if (entry && 'frame' in entry && m.type == 'error' && m.code == 'unavailable' && entry.withdrawing) {
        // Its withdraw decides it now.
        clearTimeout(entry.timer);
        inflightBytes -= entry.bytes;
        return;
      }
      if (entry && 'frame' in entry && m.type == 'error' && m.code == 'unavailable' && entry.state.active && !entry.ephemeral) {
        // The cluster could not take it (or confirm it). With its id, sending it again cannot
        // publish it twice; the server refuses this room's later ones until it comes (PROTOCOL.md),
        // so they come back here too and all go again in order, after a backoff.
        clearTimeout(entry.timer);
        inflightBytes -= entry.bytes;
        entry.resent = true;
        retry.push(entry);
        retry.sort((a, b) => a.id - b.id);
        return backoff();
      }
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
        transport().ready(m.heartbeat * SILENCE_FACTOR || 0);
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
      case 'ephemeral':
        rooms.get(m.room)?.ephemeral(m);
        break;
      case 'presence':
        rooms.get(m.room)?.presence(m);
    }
  }

  /**
   * publishTimeout passed: a publish never written is certainly not published, and is dropped;
   * one written is never sent again, and its withdraw asks the server for the definite answer.
   */
  function expire(p: Publish): void {
    if (p.settled) return;
    if (p.written) {
      p.withdrawing = true;
      retry = retry.filter((r) => r != p);
      withdrawals.push(p);
      return flush();
    }
    const at = queue.indexOf(p);
    if (at < 0) return;
    queue.splice(at, 1);
    queuedBytes -= p.bytes;
    settle(p, error('timeout', 'publishTimeout passed'));
  }

  const host = {
    publish: (state: RoomState, data: unknown, { excludeSelf, ephemeral }: PublishOptions) =>
      new Promise<PublishAck | EphemeralAck>((resolve, reject) => {
        const id = ++lastId;
        // Encoded now: the caller may change `data` while the message waits offline.
        const publishId = ephemeral ? undefined : nextPublishId();
        const frame = JSON.stringify({ type: 'publish', id, room: state.room.name, data, ...(excludeSelf && { excludeSelf }), ...(ephemeral ? { ephemeral } : { publishId }) });
        const p: Publish = { id, frame, bytes: sizeOf(frame), state, excluded: !!excludeSelf, ephemeral: !!ephemeral, publishId, resolve, reject };
        if (closed) settle(p, error('closed', 'the client is closed'));
        else if (!state.active) settle(p, error('not_joined', `room ${state.room.name} was left`));
        // Now or never: an ephemeral publish would be stale after a wait, so it never queues.
        else if (ephemeral) (transport().status == 'open' && send(p)) || settle(p, error('queue_full', 'not sent: ephemeral publishes never wait'));
        else {
          if (options.publishTimeout) p.deadline = setTimeout(() => expire(p), options.publishTimeout);
          // Behind what already waits, so publishes keep their order.
          if (queue.length || retry.length || !(transport().status == 'open' && send(p))) enqueue(p);
        }
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
      clearTimeout(hold);
      hold = undefined;
      // Written and not answered: re-sent after the reconnect, ahead of what is still waiting to be re-sent.
      const unanswered: Publish[] = [];
      for (const entry of inflight.values()) {
        // An ephemeral one is never sent again: it may have reached the members of its moment.
        if (entry && 'frame' in entry && entry.ephemeral) settle(entry, error('disconnected', 'the link dropped first'));
        // A withdraw not answered is written again on the next connection; its publish never is.
        else if (entry && 'withdraw' in entry) entry.withdraw.settled || withdrawals.push(entry.withdraw);
        else if (entry && 'frame' in entry) {
          clearTimeout(entry.timer);
          entry.resent = true;
          if (!entry.withdrawing) unanswered.push(entry);
        }
      }
      retry = [...unanswered, ...retry].sort((a, b) => a.id - b.id);
      inflight.clear();
      inflightBytes = 0;
      if (!info.willReconnect) {
        closed = true;
        queuedBytes = 0;
        const reply = error('closed', 'the client is closed');
        for (const p of [...retry.splice(0), ...queue.splice(0), ...withdrawals.splice(0)]) settle(p, reply);
        for (const state of rooms.values()) state.active = false;
        rooms.clear();
      }
    },
  };
}
