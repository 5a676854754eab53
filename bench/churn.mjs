/**
 * Connection churn for the cluster soak (soak.mjs), run inside a load generator: `lanes` loops
 * that each open one short-lived client after another, alternating between the nodes, for
 * `seconds`, while a few long-lived plaza.v1 members sit in rooms with presence. The kinds are
 * those issue 18 found leaving state behind, and ordinary ones around them:
 *
 *   plain        plain client: opens, sends one message, closes normally
 *   plain-drop   plain client terminated mid-handshake or right at open (its default-room join
 *                may still be waiting on Redis)
 *   v1-leave     joins with presence and leaves at once (or after `joined` and one publish), closes
 *   v1-drop      sends a join with presence and terminates at once: the join races the close
 *   v1-stay      joins with presence, publishes, stays 0.2–1.5 s, closes without leaving
 *   v1-refused   asks for 5 rooms with presence where the nodes allow 3 (`too_many_rooms` twice),
 *                then closes or terminates
 *   api          one HTTP API call (rooms, presence, history or publish) with the key, from
 *                127.0.0.2–5 (loopback: every 127.x address is this machine)
 *   api-bad      one HTTP API call with a wrong key from 127.0.0.20–23 (401, then 429 once the
 *                address has failed 10 times)
 *
 * Everything is bounded: each client by CLIENT_TIMEOUT_MS, the pace by `pauseMs` per lane (so the
 * loopback's ephemeral ports, ~28,000 per node in TIME_WAIT for 60 s, are never used up).
 */
import http from 'node:http';
import WebSocket from 'ws';
import { SUBPROTOCOL } from './subscriber.mjs';

/** A client that has not finished by then is terminated and counted as timed out. */
const CLIENT_TIMEOUT_MS = 5000;
/** Rooms a v1-refused client asks for (the cluster soak's nodes allow 3 per connection). */
const REFUSED_ASKS = 5;

/** The order in which a lane picks kinds (each lane starts at its own place in it). */
const CYCLE = ['v1-drop', 'plain', 'v1-leave', 'v1-stay', 'plain-drop', 'v1-drop', 'v1-refused', 'api', 'v1-leave', 'plain', 'v1-drop', 'api', 'api-bad'];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One WebSocket client driven by `script(ws, drop)`; resolves once the socket is closed with
 * 'ok', 'dropped' (the script cut it with `drop()`, on purpose), 'error' or 'timeout'.
 */
function client(url, protocols, script) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, protocols, { perMessageDeflate: false });
    let outcome = 'ok';
    const timer = setTimeout(() => {
      outcome = 'timeout';
      ws.terminate();
    }, CLIENT_TIMEOUT_MS);
    ws.on('error', () => {
      if (outcome === 'ok') outcome = 'error';
    });
    ws.on('close', () => {
      clearTimeout(timer);
      resolve(outcome);
    });
    const drop = () => {
      outcome = 'dropped';
      ws.terminate();
    };
    script(ws, drop);
  });
}

/** Replies of a v1 socket, parsed; `wait(n)` resolves once n replies with an id arrived. */
function replies(ws) {
  const got = [];
  let waiter = null;
  ws.on('message', (data) => {
    let msg;
    try {
      msg = JSON.parse(data.toString());
    } catch {
      return;
    }
    if (msg.id === undefined) return;
    got.push(msg);
    if (waiter && got.length >= waiter.n) waiter.resolve(got);
  });
  return {
    wait: (n) => (got.length >= n ? Promise.resolve(got) : new Promise((resolve) => (waiter = { n, resolve }))),
  };
}

const json = (value) => JSON.stringify(value);

const KIND_RUNNERS = {
  plain({ url, n }) {
    return client(url, [], (ws) => {
      ws.on('open', () => {
        ws.send(`churn ${n}`);
        setTimeout(() => ws.close(1000), n % 200);
      });
    });
  },

  'plain-drop'({ url, n }) {
    return client(url, [], (ws, drop) => {
      if (n % 2 === 0) setImmediate(drop);
      else ws.on('open', drop);
    });
  },

  'v1-leave'({ url, n, room }) {
    return client(url, SUBPROTOCOL, (ws) => {
      const r = replies(ws);
      ws.on('open', async () => {
        ws.send(json({ type: 'join', id: 1, room, presence: true }));
        if (n % 2 === 0) {
          ws.send(json({ type: 'leave', id: 2, room }));
          await r.wait(2);
        } else {
          await r.wait(1);
          ws.send(json({ type: 'publish', id: 2, room, data: { churn: n } }));
          await r.wait(2);
          ws.send(json({ type: 'leave', id: 3, room }));
          await r.wait(3);
        }
        ws.close(1000);
      });
    });
  },

  'v1-drop'({ url, room }) {
    return client(url, SUBPROTOCOL, (ws, drop) => {
      ws.on('open', () => {
        ws.send(json({ type: 'join', id: 1, room, presence: true }));
        drop();
      });
    });
  },

  'v1-stay'({ url, n, room }) {
    return client(url, SUBPROTOCOL, (ws) => {
      const r = replies(ws);
      ws.on('open', async () => {
        ws.send(json({ type: 'hello', id: 1, name: `churn-${n}` }));
        ws.send(json({ type: 'join', id: 2, room, presence: true, history: 10 }));
        await r.wait(2);
        ws.send(json({ type: 'publish', id: 3, room, data: { churn: n } }));
        await r.wait(3);
        setTimeout(() => ws.close(1000), 200 + ((n * 97) % 1300));
      });
    });
  },

  'v1-refused'({ url, n, rooms }) {
    return client(url, SUBPROTOCOL, (ws, drop) => {
      const r = replies(ws);
      ws.on('open', async () => {
        for (let k = 0; k < REFUSED_ASKS; k++) ws.send(json({ type: 'join', id: k + 1, room: rooms[(n + k) % rooms.length], presence: true }));
        if (n % 2 === 0) {
          await r.wait(REFUSED_ASKS);
          ws.close(1000);
        } else {
          drop();
        }
      });
    });
  },

  api({ port, n, room, apiKey }) {
    const calls = [
      ['GET', '/api/rooms'],
      ['GET', `/api/rooms/${room}/presence`],
      ['GET', `/api/rooms/${room}/history?limit=5`],
      ['POST', '/api/publish', json({ room, data: { api: n } })],
    ];
    const [method, path, body] = calls[n % calls.length];
    return request({ port, method, path, body, key: apiKey, from: `127.0.0.${2 + (n % 4)}` });
  },

  'api-bad'({ port, n }) {
    return request({ port, method: 'GET', path: '/api/rooms', key: 'not-the-key', from: `127.0.0.${20 + (n % 4)}` });
  },
};

/** One HTTP request on a connection of its own from `from`; resolves 'ok' or 'error' (the status is not judged). */
function request({ port, method, path, body, key, from }) {
  return new Promise((resolve) => {
    const headers = { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) };
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, localAddress: from, agent: false, timeout: CLIENT_TIMEOUT_MS }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve('error'));
    req.end(body);
  });
}

/**
 * Runs the churn and resolves with counts: { started: {kind: n}, outcomes: {kind: {outcome: n}},
 * members } where an outcome is 'ok', 'error', 'timeout' or an HTTP status.
 * @param {{ ports: number[], seconds: number, lanes: number, pauseMs: number, rooms: number,
 *           members: number, apiKey: string }} options
 */
export async function churn({ ports, seconds, lanes, pauseMs, rooms: roomCount, members, apiKey }) {
  const rooms = Array.from({ length: roomCount }, (_, k) => `soak-${k}`);
  const outcomes = {};
  const tally = (kind, outcome) => {
    outcomes[kind] ??= {};
    outcomes[kind][outcome] = (outcomes[kind][outcome] ?? 0) + 1;
  };

  // Long-lived members with presence, one per room of the first few, alternating nodes: they
  // see every churned join and leave, and their presence is refreshed in Redis all along.
  const stayers = [];
  await Promise.all(
    Array.from({ length: members }, (_, k) => {
      const ws = new WebSocket(`ws://127.0.0.1:${ports[k % ports.length]}/`, SUBPROTOCOL, { perMessageDeflate: false });
      stayers.push(ws);
      ws.on('error', () => tally('member', 'error'));
      return new Promise((resolve) => {
        ws.on('open', () => ws.send(json({ type: 'join', id: 1, room: rooms[k % rooms.length], presence: true })));
        ws.on('message', () => resolve());
        ws.on('close', () => resolve());
        setTimeout(resolve, CLIENT_TIMEOUT_MS);
      });
    }),
  );

  let next = 0;
  const deadline = Date.now() + seconds * 1000;
  const lane = async (laneIndex) => {
    for (let step = laneIndex; Date.now() < deadline; step++) {
      const n = next++;
      const kind = CYCLE[step % CYCLE.length];
      const port = ports[n % ports.length];
      const outcome = await KIND_RUNNERS[kind]({ url: `ws://127.0.0.1:${port}/`, port, n, room: rooms[n % rooms.length], rooms, apiKey });
      tally(kind, outcome);
      await sleep(pauseMs);
    }
  };
  await Promise.all(Array.from({ length: lanes }, (_, i) => lane(i)));

  await Promise.all(
    stayers.map(
      (ws) =>
        new Promise((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          ws.on('close', resolve);
          ws.close(1000);
          setTimeout(() => {
            ws.terminate();
            resolve();
          }, CLIENT_TIMEOUT_MS);
        }),
    ),
  );
  return { clients: next, members, outcomes };
}
