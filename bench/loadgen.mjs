/**
 * A load-generator process, forked by run.mjs and driven over IPC. Two run side by side:
 *   - the bulk generator holds the counting subscribers (up to ~10k sockets);
 *   - the probe generator holds the publishers (one per room) and a few probe subscribers that read payloads
 *     and time them. Keeping probes out of the bulk event loop means a probe's latency is not
 *     mostly the time spent reading 1,000 other sockets first.
 * Every command is bounded in count and time and replies exactly once.
 */
import { churn } from './churn.mjs';
import { Publisher } from './publisher.mjs';
import { makeChatPayload, makePayload, nowMs, Sink, Subscriber } from './subscriber.mjs';

/** What a publisher sends: padded stamps, or JSON chat messages (compression scenarios). */
const PAYLOADS = { padded: makePayload, chat: makeChatPayload };

/** Hard cap: the generator's fds (ulimit -n 20000) must also cover pipes and the publisher. */
const MAX_SOCKETS = 12_000;
const LATENCY_SAMPLES_MAX = 200_000;

const sink = new Sink();
let subscribers = [];
/** Subscribers the reconnect storm dropped, waiting for `reconnect`. */
let dropped = [];
/** One per room: the probe generator holds them (the bulk generator none). */
let publishers = [];

/** The clients of `list` in one of `rooms` (names), or all of them when `rooms` is undefined. */
function inRooms(list, rooms) {
  if (rooms === undefined) return list;
  const wanted = new Set(rooms);
  return list.filter((client) => wanted.has(client.room));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
    }),
  ]);
}

const commands = {
  /**
   * Opens `count` subscribers with at most `concurrency` handshakes in flight. Subscriber number
   * `first + j` (numbered across both generators) joins `rooms[(first + j) % rooms.length]` on
   * `ports[(first + j) % ports.length]`. `publishers: true` first opens one publisher per room,
   * all on ports[0], speaking `publisherFlavour` (default: the subscribers' flavour). `query` is
   * appended to every handshake's path (`?token=…`).
   */
  async connect({ ports, flavour, publisherFlavour = flavour, rooms = ['lobby'], first = 0, count, probe = false, publishers: withPublishers = false, concurrency = 128, timeoutMs = 30_000, query = '' }) {
    if (subscribers.length + publishers.length + count + (withPublishers ? rooms.length : 0) > MAX_SOCKETS) {
      throw new Error(`more than ${MAX_SOCKETS} sockets requested`);
    }
    const start = nowMs();
    if (withPublishers && publishers.length === 0) {
      let nextRoom = 0;
      const lane = async () => {
        while (nextRoom < rooms.length) {
          const publisher = new Publisher({ port: ports[0], flavour: publisherFlavour, room: rooms[nextRoom++], sink, query });
          publishers.push(publisher);
          await publisher.connect(timeoutMs);
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, rooms.length) }, lane));
    }
    let next = 0;
    const lane = async () => {
      while (next < count) {
        const i = first + next++;
        const subscriber = new Subscriber({ port: ports[i % ports.length], flavour, room: rooms[i % rooms.length], probe, sink, query });
        subscribers.push(subscriber);
        await subscriber.connect(timeoutMs);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
    return { ms: nowMs() - start, open: subscribers.length };
  },

  /**
   * Resets the counters for a measurement of `messages` broadcasts into every room, or only into
   * `rooms` (names) when given.
   */
  arm({ messages, rooms }) {
    // Every room gets `messages`, and every publisher is a member of its room.
    const recipients = inRooms(subscribers, rooms).length + inRooms(publishers, rooms).length;
    sink.arm(recipients * messages);
    return { expected: sink.target };
  },

  /** Replies once every armed delivery has arrived, or after `timeoutMs` with what did. */
  async wait({ timeoutMs }) {
    const expected = sink.target;
    if (sink.delivered < expected) {
      await Promise.race([new Promise((resolve) => (sink.onTarget = resolve)), sleep(timeoutMs)]);
      sink.onTarget = null;
    }
    const latencies = sink.latencies.length > LATENCY_SAMPLES_MAX ? sink.latencies.slice(0, LATENCY_SAMPLES_MAX) : sink.latencies;
    return {
      expected,
      delivered: sink.delivered,
      complete: sink.delivered >= expected,
      lastAt: sink.lastAt,
      closed: subscribers.filter((s) => s.closed).length,
      latencies,
      marks: sink.marks,
      bytes: sink.bytes,
    };
  },

  /**
   * Sends `messages` messages back to back from every publisher (or those of `rooms`), interleaved
   * across rooms.
   */
  burst({ messages, size, rooms, payload: kind = 'padded' }) {
    const senders = inRooms(publishers, rooms);
    if (senders.length === 0) throw new Error('no publisher in this generator');
    const make = PAYLOADS[kind];
    const t0 = nowMs();
    for (let seq = 0; seq < messages; seq++) {
      const payload = make(seq, size);
      for (const publisher of senders) publisher.send(payload);
    }
    return { t0 };
  },

  /** Sends `rate` messages per second for `seconds`, on a fixed schedule (no catch-up bursts). */
  async steady({ rate, seconds, size, payload: kind = 'padded' }) {
    if (publishers.length === 0) throw new Error('no publisher in this generator');
    const make = PAYLOADS[kind];
    const count = Math.round(rate * seconds);
    const interval = 1000 / rate;
    const t0 = nowMs();
    let lateMax = 0;
    for (let seq = 0; seq < count; seq++) {
      const due = t0 + seq * interval;
      const wait = due - nowMs();
      if (wait > 0) await sleep(wait);
      lateMax = Math.max(lateMax, nowMs() - due);
      const payload = make(seq, size);
      for (const publisher of publishers) publisher.send(payload);
    }
    return { t0, sent: count, lateMaxMs: lateMax };
  },

  /**
   * The reconnect storm's first half: every subscriber of this generator drops its connection at
   * once (as after a deploy or a network blip) and is remembered with its place (port, room) and,
   * for plaza.v1, the position its `joined` reply named. Resolves once every socket is gone.
   */
  async drop({ timeoutMs = 10_000 } = {}) {
    dropped = subscribers;
    subscribers = [];
    for (const subscriber of dropped) subscriber.destroy();
    const deadline = nowMs() + timeoutMs;
    while (dropped.some((s) => s.socket && !s.socket.destroyed) && nowMs() < deadline) await sleep(10);
    return { dropped: dropped.length };
  },

  /**
   * The storm's second half: every dropped subscriber reconnects at the same moment (all
   * handshakes in flight together, unlike `connect`'s 128) and, in plaza.v1, resumes after the
   * position it had. Resolves when all are ready again: the time that took, and how many joins
   * answered `recovered: true` (and how many did not get in).
   */
  async reconnect({ timeoutMs = 60_000 }) {
    const before = dropped;
    dropped = [];
    const start = nowMs();
    const again = before.map(
      (old) => new Subscriber({ port: old.port, flavour: old.flavour, room: old.room, probe: old.probe, sink, query: old.query, since: old.position }),
    );
    subscribers.push(...again);
    const results = await Promise.allSettled(again.map((subscriber) => subscriber.connect(timeoutMs)));
    const failed = results.filter((r) => r.status === 'rejected').length;
    return { ms: nowMs() - start, reconnected: again.length - failed, failed, recovered: again.filter((s) => s.recovered).length };
  },

  /** Closes every socket and waits (bounded) until they are all gone. */
  async closeAll({ timeoutMs = 10_000 } = {}) {
    const closing = subscribers;
    subscribers = [];
    for (const publisher of publishers) publisher.close();
    publishers = [];
    for (const subscriber of closing) subscriber.destroy();
    const deadline = nowMs() + timeoutMs;
    while (closing.some((s) => s.socket && !s.socket.destroyed) && nowMs() < deadline) await sleep(10);
    sink.onTarget = null;
    sink.target = Infinity;
    return { closed: closing.length };
  },

  /** The cluster soak's connection churn (churn.mjs); its clients are its own, closed when it ends. */
  churn(options) {
    return churn(options);
  },

  exit() {
    setImmediate(() => process.exit(0));
    return {};
  },
};

process.on('message', async ({ id, cmd, args }) => {
  try {
    const command = commands[cmd];
    if (!command) throw new Error(`unknown command ${cmd}`);
    const result = await withTimeout(Promise.resolve(command(args ?? {})), 120_000, cmd);
    process.send({ id, result });
  } catch (error) {
    process.send({ id, error: error instanceof Error ? error.message : String(error) });
  }
});
// If the harness dies, so do we: never leave 10,000 sockets behind.
process.on('disconnect', () => process.exit(0));
