/**
 * Rooms the way tutorials add them to a `ws` server: a `Map<room, Set<ws>>`, and on a publish a
 * loop that sends to every member of the room (the sender included, as Plaza does by default).
 * The message is `JSON.stringify`'d once per publish, not per recipient.
 *
 * Its protocol is a subset of plaza.v1 (JSON text frames), so the bench's v1 clients drive it
 * unchanged:
 *   → {"type":"join","room":"r1"}                  ← {"type":"joined","room":"r1"}
 *   → {"type":"publish","room":"r1","data":<any>}  ← to every member of r1: {"type":"message","room":"r1","data":<any>}
 * A publish to a room the sender has not joined, or anything unparsable, is ignored. Plaza's
 * envelope carries more (id, offset, epoch, time, sender) and Plaza keeps history; this does not.
 *
 *   node bench/peers/bare-ws-rooms.mjs --port 0
 * prints `{"msg":"bare-ws-rooms is serving","url":"http://127.0.0.1:<port>"}`. Binds 127.0.0.1 only.
 */
import { WebSocket, WebSocketServer } from 'ws';

const portFlag = process.argv.indexOf('--port');
const port = portFlag === -1 ? 0 : Number(process.argv[portFlag + 1]);

const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });
/** room → its members */
const rooms = new Map();

wss.on('connection', (ws) => {
  const joined = new Set();
  ws.on('error', () => ws.terminate());
  ws.on('message', (data) => {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (msg === null || typeof msg !== 'object' || typeof msg.room !== 'string') return;
    if (msg.type === 'join') {
      let members = rooms.get(msg.room);
      if (!members) rooms.set(msg.room, (members = new Set()));
      members.add(ws);
      joined.add(msg.room);
      ws.send(JSON.stringify({ type: 'joined', room: msg.room }));
    } else if (msg.type === 'publish' && joined.has(msg.room)) {
      const text = JSON.stringify({ type: 'message', room: msg.room, data: msg.data });
      for (const client of rooms.get(msg.room)) {
        if (client.readyState === WebSocket.OPEN) client.send(text);
      }
    }
  });
  ws.on('close', () => {
    for (const room of joined) {
      const members = rooms.get(room);
      members.delete(ws);
      if (members.size === 0) rooms.delete(room);
    }
  });
});

wss.on('listening', () => {
  const url = `http://127.0.0.1:${wss.address().port}`;
  process.stdout.write(`${JSON.stringify({ level: 'info', msg: 'bare-ws-rooms is serving', url })}\n`);
});

const stop = () => {
  for (const client of wss.clients) client.terminate();
  wss.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
