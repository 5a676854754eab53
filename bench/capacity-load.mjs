/**
 * The load generator of the capacity bench (capacity.mjs forks it and drives it over IPC):
 * plaza.v1 members in rooms spread over a cluster's nodes, one publisher per room publishing at
 * a fixed total rate, and idle members for the memory reading. It reuses the bench's raw
 * subscriber (it only counts frames) and its `ws` publisher. Every command replies once.
 */
import { Publisher } from './publisher.mjs';
import { makePayload, nowMs, Sink, Subscriber } from './subscriber.mjs';

const sink = new Sink();
let members = [];
let publishers = [];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Opens `list` connections with at most `concurrency` handshakes in flight. */
async function open(list, concurrency = 64, timeoutMs = 30_000) {
  let next = 0;
  const lane = async () => {
    while (next < list.length) await list[next++].connect(timeoutMs);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, list.length) }, lane));
}

const commands = {
  /**
   * Room r gets `perRoom` members: member j on ports[(r + j) % ports.length], so a room spreads
   * over min(perRoom, nodes) nodes; its publisher (also a member) is on ports[r % ports.length].
   * With `placement` every connection's URL names its room as `?placement=<room>`, for a load
   * balancer in front that hashes on it (docs/placement/haproxy.cfg; the placement bench).
   */
  async connect({ ports, rooms, perRoom, placement = false }) {
    const start = nowMs();
    const query = (room) => (placement ? `?placement=${encodeURIComponent(room)}` : '');
    publishers = rooms.map((room, r) => new Publisher({ port: ports[r % ports.length], flavour: 'v1', room, sink, query: query(room) }));
    await open(publishers);
    const list = [];
    rooms.forEach((room, r) => {
      for (let j = 1; j <= perRoom; j++) list.push(new Subscriber({ port: ports[(r + j) % ports.length], flavour: 'v1', room, probe: false, sink, query: query(room) }));
    });
    await open(list);
    members = list;
    return { ms: nowMs() - start, connections: list.length + publishers.length };
  },

  /**
   * `rate` publishes per second in all for `seconds`, rooms in turn, on a fixed schedule of 10 ms
   * ticks; then waits (bounded) for the deliveries in flight. Resolves with what was sent and
   * delivered during the run.
   */
  async run({ rate, seconds, size, drainMs = 2000 }) {
    sink.arm(Infinity);
    const total = Math.round(rate * seconds);
    const t0 = nowMs();
    let sent = 0;
    let room = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((nowMs() - t0) / 1000) * rate));
      while (sent < due) {
        publishers[room].send(makePayload(sent, size));
        room = (room + 1) % publishers.length;
        sent++;
      }
      await sleep(10);
    }
    const expected = sent * (members.length + publishers.length) / publishers.length;
    const deadline = nowMs() + drainMs;
    while (sink.delivered < expected && nowMs() < deadline) await sleep(20);
    return { sent, delivered: sink.delivered, expected, ms: nowMs() - t0 };
  },

  async closeAll() {
    for (const p of publishers) p.close();
    for (const m of members) m.destroy();
    const closing = members;
    publishers = [];
    members = [];
    const deadline = nowMs() + 10_000;
    while (closing.some((m) => m.socket && !m.socket.destroyed) && nowMs() < deadline) await sleep(10);
    return { closed: closing.length };
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
    process.send({ id, result: await command(args ?? {}) });
  } catch (error) {
    process.send({ id, error: error instanceof Error ? error.message : String(error) });
  }
});
process.on('disconnect', () => process.exit(0));
