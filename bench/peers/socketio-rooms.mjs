/**
 * socket.io 4 rooms as its docs show them: `socket.join(room)` and `io.to(room).emit(...)`, which
 * reaches every member of the room, the sender included (as Plaza does by default). WebSocket
 * transport only, defaults otherwise (as peers/socketio.mjs).
 *
 * Events (what socket.io-client's `emit` puts on the wire is shown after the arrow):
 *   emit('join', 'r1')                           → 42["join","r1"]         ← 42["joined","r1"]
 *   emit('publish', { room: 'r1', data })        → 42["publish",{...}]     ← to every member: 42["msg",{"room":"r1","data":...}]
 * A publish to a room the sender has not joined is ignored.
 *
 *   node bench/peers/socketio-rooms.mjs --port 0
 * prints `{"msg":"socket.io-rooms is serving","url":"http://127.0.0.1:<port>"}`. Binds 127.0.0.1 only.
 */
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const portFlag = process.argv.indexOf('--port');
const port = portFlag === -1 ? 0 : Number(process.argv[portFlag + 1]);

const httpServer = createServer();
const io = new Server(httpServer, { transports: ['websocket'], serveClient: false });

io.on('connection', (socket) => {
  socket.on('join', (room) => {
    if (typeof room !== 'string') return;
    socket.join(room);
    socket.emit('joined', room);
  });
  socket.on('publish', (msg) => {
    if (msg === null || typeof msg !== 'object' || !socket.rooms.has(msg.room)) return;
    io.to(msg.room).emit('msg', { room: msg.room, data: msg.data });
  });
});

httpServer.listen(port, '127.0.0.1', () => {
  const url = `http://127.0.0.1:${httpServer.address().port}`;
  process.stdout.write(`${JSON.stringify({ level: 'info', msg: 'socket.io-rooms is serving', url })}\n`);
});

const stop = () => {
  io.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
