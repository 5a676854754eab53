/**
 * socket.io 4 as its docs show a broadcast: on each 'msg' a client emits, `io.emit('msg', data)`
 * to every connected socket, the sender included. WebSocket transport only (no long-polling),
 * no per-message deflate (the default), default ping interval (the bench subscribers answer
 * engine.io pings).
 *
 *   node bench/peers/socketio.mjs --port 0
 * prints one JSON line `{"msg":"socket.io is serving","url":"http://127.0.0.1:<port>"}` on stdout.
 * It binds 127.0.0.1 only.
 */
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const portFlag = process.argv.indexOf('--port');
const port = portFlag === -1 ? 0 : Number(process.argv[portFlag + 1]);

const httpServer = createServer();
const io = new Server(httpServer, { transports: ['websocket'], serveClient: false });

io.on('connection', (socket) => {
  socket.on('msg', (data) => io.emit('msg', data));
});

httpServer.listen(port, '127.0.0.1', () => {
  const url = `http://127.0.0.1:${httpServer.address().port}`;
  process.stdout.write(`${JSON.stringify({ level: 'info', msg: 'socket.io is serving', url })}\n`);
});

const stop = () => {
  io.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
