/**
 * The peer most tutorials ship: a `ws` server whose message handler loops over `wss.clients`
 * and calls `send` on each (the broadcast example of the ws README). Every message goes to every
 * open client, the sender included, exactly as Plaza's default room does.
 *
 *   node bench/peers/bare-ws.mjs --port 0 [--deflate]
 * prints one JSON line `{"msg":"bare-ws is serving","url":"http://127.0.0.1:<port>"}` on stdout.
 * It binds 127.0.0.1 only: this is a benchmark target, never a service.
 */
import { WebSocket, WebSocketServer } from 'ws';

const portFlag = process.argv.indexOf('--port');
const port = portFlag === -1 ? 0 : Number(process.argv[portFlag + 1]);

// --deflate: ws's permessage-deflate with its defaults, as an application turns it on (the
// compression scenario); every recipient's copy is then compressed on its own.
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: process.argv.includes('--deflate') });

wss.on('connection', (ws) => {
  ws.on('error', () => ws.terminate());
  ws.on('message', (data, isBinary) => {
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
});

wss.on('listening', () => {
  const url = `http://127.0.0.1:${wss.address().port}`;
  process.stdout.write(`${JSON.stringify({ level: 'info', msg: 'bare-ws is serving', url })}\n`);
});

const stop = () => {
  for (const client of wss.clients) client.terminate();
  wss.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
