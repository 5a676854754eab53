/**
 * Bun's built-in pub/sub (uWebSockets underneath): every connection subscribes to one topic and
 * every message it sends is published to that topic with `server.publish`, which, unlike
 * `ws.publish`, includes the sender, as Plaza's default room does. No compression.
 *
 *   bench/node_modules/.bin/bun bench/peers/bun-pubsub.mjs --port 0
 * prints `{"msg":"bun-pubsub is serving","url":"http://127.0.0.1:<port>"}`. Binds 127.0.0.1 only.
 */
const flag = process.argv.indexOf('--port');
const server = Bun.serve({
  hostname: '127.0.0.1',
  port: flag === -1 ? 0 : Number(process.argv[flag + 1]),
  fetch: (request, srv) => (srv.upgrade(request) ? undefined : new Response('WebSocket only\n', { status: 426 })),
  websocket: {
    perMessageDeflate: false,
    open: (ws) => ws.subscribe('lobby'),
    message: (ws, message) => server.publish('lobby', message),
  },
});
process.stdout.write(`${JSON.stringify({ level: 'info', msg: 'bun-pubsub is serving', url: `http://127.0.0.1:${server.port}` })}\n`);
process.on('SIGTERM', () => process.exit(0));
