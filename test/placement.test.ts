/**
 * Placement (docs/scaling.md, "Placement"): the HAProxy config the docs show,
 * docs/placement/haproxy.cfg, run by a real HAProxy in front of three real nodes on a real
 * Redis, with Plaza's own client connecting through it as the docs say (`?placement=<room>`),
 * over WebSocket and SSE. Each room's members meet on one node, every member still gets every
 * message, and a node that dies hands each of its rooms to one other node while the other rooms
 * stay where they are.
 *
 * Which node holds what is read from each node's own /metrics: `plaza_connections`,
 * `plaza_rooms` (rooms with a member here) and `plaza_backplane_rooms` (rooms this node
 * follows), and `plaza_sse_relayed_posts_total` (SSE POSTs that had to be carried to another node).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REDIS_URL, skipWithoutRedis, startNode, stopNode, type Node } from './helpers/cluster.js';
import { hasHaproxy, MISSING_HAPROXY, PLACEMENT_CONFIG, placementConfig, startHaproxy, type Haproxy } from './helpers/haproxy.mjs';
import { metrics } from './helpers/metrics.mjs';
import { ROOT } from './helpers/plaza.js';
import { clientPool, type Client } from './helpers/plaza-client.js';
import { untilReady } from './helpers/processes.mjs';
import { until } from './helpers/wait.mjs';
import { firstJoin } from './helpers/workload.js';

const API_KEY = 'k'.repeat(32);
const auth = { Authorization: `Bearer ${API_KEY}` };
const ROOMS = 6;
/** Two members on WebSockets and one on SSE per room. */
const TRANSPORTS: Client.TransportName[][] = [['websocket'], ['websocket'], ['sse']];

interface Member {
  client: Client.PlazaClient;
  room: Client.Room;
  received: unknown[];
  joins: number;
}

interface Counts {
  connections: number;
  rooms: number;
  followed: number;
  relayedPosts: number;
}

/** What one node's /metrics says it holds. */
async function countsOf(node: Node): Promise<Counts> {
  const samples = await metrics(node, auth);
  let connections = 0;
  for (const [key, value] of samples) if (key.startsWith('plaza_connections{')) connections += value;
  return {
    connections,
    rooms: samples.get('plaza_rooms') ?? 0,
    followed: samples.get('plaza_backplane_rooms') ?? 0,
    relayedPosts: samples.get('plaza_sse_relayed_posts_total') ?? 0,
  };
}

const total = (counts: Counts[], key: keyof Counts) => counts.reduce((sum, c) => sum + c[key], 0);

describe('placement: docs/placement/haproxy.cfg in a real HAProxy in front of three nodes', { skip: skipWithoutRedis() }, () => {
  const pool = clientPool();
  let nodes: Node[] = [];
  let lb: Haproxy | undefined;
  const rooms = Array.from({ length: ROOMS }, (_, i) => `placed-${i}-${randomBytes(4).toString('hex')}`);
  const members = new Map<string, Member[]>();
  /** The node each room's members met on, by index into `nodes`. */
  const home = new Map<string, number>();

  before(async () => {
    // Not a skip: the suite exists to run the documented file, and .ci/run installs haproxy.
    assert.ok(hasHaproxy(), MISSING_HAPROXY);
    nodes = await Promise.all([0, 1, 2].map(() => startNode(REDIS_URL, ['--api-key', API_KEY])));
    await Promise.all(nodes.map((node) => untilReady(node.http, 200)));
    const doc = readFileSync(join(ROOT, PLACEMENT_CONFIG), 'utf8');
    lb = await startHaproxy((port) => placementConfig(doc, { port, servers: nodes.map((node) => new URL(node.http).host) }));
  });
  after(async () => {
    pool.closeAll();
    await lb?.stop();
    await Promise.all(nodes.map((node) => stopNode(node)));
  });

  /** A member of `room` through the load balancer, as docs/client.md shows: `?placement=<room>`. */
  async function addMember(room: string, transports: Client.TransportName[]): Promise<Member> {
    const client = await pool.connect(`${lb!.url}/?placement=${room}`, { transports });
    const joined = client.join(room);
    const member: Member = { client, room: joined, received: [], joins: 0 };
    joined.on('message', (data) => member.received.push(data));
    joined.on('joined', () => member.joins++);
    await firstJoin(joined);
    return member;
  }

  async function publishRound(tag: string): Promise<void> {
    for (const room of rooms) {
      const list = members.get(room)!;
      const before = list.map((m) => m.received.length);
      await Promise.all(list.map((m, i) => m.room.publish(`${tag}:${room}:${i}`)));
      await until(() => list.every((m, k) => m.received.length >= before[k]! + list.length), 15_000, `every member of ${room} to get the ${tag} round`);
      const expected = list.map((_, i) => `${tag}:${room}:${i}`).sort();
      for (const [k, m] of list.entries()) assert.deepEqual((m.received.slice(before[k]) as string[]).sort(), expected, `member ${k} of ${room}`);
    }
  }

  it('puts each room\'s members, on WebSockets and SSE, on one node, which alone follows the room', async () => {
    for (const room of rooms) {
      const before = await Promise.all(nodes.map(countsOf));
      const list: Member[] = [];
      for (const transports of TRANSPORTS) list.push(await addMember(room, transports));
      members.set(room, list);
      const now = await Promise.all(nodes.map(countsOf));
      const grown = nodes.map((_, i) => now[i]!.connections - before[i]!.connections);
      const holders = grown.flatMap((n, i) => (n > 0 ? [i] : []));
      assert.equal(holders.length, 1, `${room}: its ${TRANSPORTS.length} members landed on nodes ${holders.join(', ')} (new connections per node: ${grown.join(', ')})`);
      const at = holders[0]!;
      assert.equal(grown[at], TRANSPORTS.length);
      assert.equal(now[at]!.rooms - before[at]!.rooms, 1, `${room} is a room with members on node ${at}`);
      home.set(room, at);
    }
    const counts = await Promise.all(nodes.map(countsOf));
    assert.equal(total(counts, 'rooms'), ROOMS, 'each room has members on one node only');
    assert.equal(total(counts, 'followed'), ROOMS, 'each room is followed by one node only: F = 1');
    assert.equal(total(counts, 'connections'), ROOMS * TRANSPORTS.length);
    await publishRound('placed');
    // The SSE members' POSTs carried ?placement= too, so they reached the node holding the stream.
    assert.equal(total(await Promise.all(nodes.map(countsOf)), 'relayedPosts'), 0, 'no SSE POST had to be carried to another node');
  });

  it('hands each room of a node that dies to one other node; the other rooms stay', async () => {
    assert.equal(home.size, ROOMS, 'the first case placed every room');
    const victim = home.get(rooms[0]!)!;
    const moved = rooms.filter((room) => home.get(room) === victim);
    const stayed = rooms.filter((room) => home.get(room) !== victim);
    const survivors = nodes.filter((_, i) => i !== victim);
    await stopNode(nodes[victim]!, 'SIGKILL');
    // Each member of a moved room rejoins once it is through to another node.
    await until(() => moved.every((room) => members.get(room)!.every((m) => m.joins >= 2)), 20_000, 'the members of the dead node\'s rooms to rejoin elsewhere');
    const counts = await Promise.all(survivors.map(countsOf));
    assert.equal(total(counts, 'connections'), ROOMS * TRANSPORTS.length, 'every member is connected to a surviving node');
    assert.equal(total(counts, 'rooms'), ROOMS, `each room still has members on one node only (rooms per surviving node: ${counts.map((c) => c.rooms).join(', ')})`);
    assert.equal(total(counts, 'followed'), ROOMS, 'each room is followed by one node only');
    for (const room of stayed) {
      for (const m of members.get(room)!) assert.equal(m.joins, 1, `${room} was on a surviving node: its members never moved`);
    }
    // Consistent hashing: with one server fewer, a newcomer to a room that stayed still meets
    // its members (a plain hash over the servers left would send most keys elsewhere).
    for (const room of stayed) {
      const at = survivors.indexOf(nodes[home.get(room)!]!);
      const before = await Promise.all(survivors.map(countsOf));
      members.get(room)!.push(await addMember(room, ['websocket']));
      const grown = (await Promise.all(survivors.map(countsOf))).map((c, i) => c.connections - before[i]!.connections);
      assert.deepEqual(grown, survivors.map((_, i) => (i === at ? 1 : 0)), `a newcomer to ${room} joins its members on node ${home.get(room)}`);
    }
    await publishRound('moved');
  });
});
