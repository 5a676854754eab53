// Receives Plaza's webhooks: checks each signature, drops repeats, prints one JSON line per
// event. It uses nothing but node:http and node:crypto, so every step is one you can write in
// any language (docs/server.md, "Webhooks", has the same recipe in Python).
//
//   export WEBHOOK_SECRET=<32+ characters>      (Plaza reads the same variable: keep it off command lines)
//   PORT=4000 node receiver.js
//   node dist/server.js --webhook-url http://127.0.0.1:4000/plaza-events
// `npm start` (start.js) runs both for you.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

const SECRET = process.env.WEBHOOK_SECRET ?? '';
if (SECRET.length < 32) {
  console.error('set WEBHOOK_SECRET to the secret Plaza signs with (--webhook-secret, 32+ characters)');
  process.exit(2);
}
/** A signature older (or newer) than this is refused, so a recorded request cannot be replayed later. */
const TOLERANCE_SECONDS = 300;
/** Plaza sends at most 1 MiB of events per POST; anything larger is not Plaza. */
const MAX_BODY = 2 * 1024 * 1024;
/** Retries can deliver an event twice: the ids of the last events seen, to drop repeats. */
const seen = new Set();
const MAX_SEEN = 10_000;

/** 1. take t and v1 from the header; 2. HMAC-SHA256(secret, `${t}.${raw body}`); 3. compare in constant time; 4. check t. */
function verify(header, body) {
  const parts = Object.fromEntries(String(header ?? '').split(',').map((part) => part.trim().split('=', 2)));
  if (!/^\d+$/.test(parts.t ?? '') || !/^[0-9a-f]{64}$/.test(parts.v1 ?? '')) return false;
  const expected = createHmac('sha256', SECRET).update(`${parts.t}.`).update(body).digest();
  if (!timingSafeEqual(Buffer.from(parts.v1, 'hex'), expected)) return false;
  return Math.abs(Date.now() / 1000 - Number(parts.t)) <= TOLERANCE_SECONDS;
}

const server = createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/plaza-events') return res.writeHead(404).end();
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY) req.destroy();
    else chunks.push(chunk);
  });
  req.on('end', () => {
    const body = Buffer.concat(chunks); // the raw bytes: verify before parsing anything
    if (!verify(req.headers['plaza-signature'], body)) return res.writeHead(400).end('bad signature\n');
    const { node, events } = JSON.parse(body.toString('utf8'));
    for (const event of events) {
      if (seen.has(event.id)) continue;
      seen.add(event.id);
      if (seen.size > MAX_SEEN) seen.delete(seen.values().next().value);
      // Your work goes here: update a room list, persist a message, send a push notification…
      console.log(JSON.stringify({ node, ...event }));
    }
    // Answer fast with 2xx; Plaza retries anything else, and gives up after --webhook-retries.
    res.writeHead(204).end();
  });
});

server.listen(Number(process.env.PORT ?? 4000), process.env.HOST ?? '127.0.0.1', () => {
  console.error(`listening on http://${process.env.HOST ?? '127.0.0.1'}:${server.address().port}/plaza-events`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => server.close(() => process.exit(0)));
