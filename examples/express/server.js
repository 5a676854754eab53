// An Express app with Plaza attached to its server. The app keeps its routes and its own login
// session; Plaza takes WebSocket upgrades on /live only, and its `authenticate` hook asks the
// app's session store who is connecting. Run: npm install && npm start, then open the URL.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { createPlaza, refuse, reject } from 'plaza-realtime';

const sessions = new Map(); // session id → { id, name }; a real app keeps these in its store
const MAX_SESSIONS = 10_000;

/** The app's session, from its cookie: the same lookup for HTTP requests and WebSocket upgrades. */
function sessionOf(request) {
  const sid = /(?:^|;\s*)sid=([A-Za-z0-9_-]+)/.exec(request.headers.cookie ?? '')?.[1];
  return sid === undefined ? undefined : sessions.get(sid);
}

const app = express();
app.use(express.json({ limit: '4kb' }));
app.use(express.static(fileURLToPath(new URL('./public/', import.meta.url))));

// Plaza's client for the page, from the package (the same file Plaza serves at /plaza.mjs).
const clientFile = createRequire(import.meta.url).resolve('plaza-realtime/public/plaza.mjs');
app.get('/plaza.mjs', (_req, res) => res.type('text/javascript').sendFile(clientFile));

app.post('/login', (req, res) => {
  const name = typeof req.body?.name === 'string' ? req.body.name.trim().slice(0, 40) : '';
  if (!name) return res.status(400).json({ error: 'send {"name": "…"}' });
  if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value);
  const sid = randomBytes(18).toString('base64url');
  sessions.set(sid, { id: `user-${randomBytes(4).toString('hex')}`, name });
  res.cookie('sid', sid, { httpOnly: true, sameSite: 'lax' }).json({ name });
});

app.get('/me', (req, res) => {
  const user = sessionOf(req);
  return user ? res.json(user) : res.status(401).json({ error: 'not logged in' });
});

const plaza = createPlaza({
  path: '/live',
  logLevel: process.env.LOG_LEVEL ?? 'warn',
  // Who is connecting: the app's own session, or nobody. The name comes from the session, so
  // nobody can post as someone else.
  authenticate: (request) => {
    const user = sessionOf(request);
    return user ? { id: user.id, name: user.name } : refuse(401, 'log in first: POST /login');
  },
  // The app's rules for messages, before any of them gets an offset.
  onPublish: ({ data }) => {
    if (typeof data !== 'string' || data.trim() === '') return reject('not_text', 'send a line of text');
    if (data.length > 500) return reject('too_long', 'at most 500 characters');
    return undefined;
  },
});

// Plaza's own routes (/plaza/healthz, /plaza/metrics, …) where the app wants them.
app.use('/plaza', plaza.handleRequest);

const host = process.env.HOST ?? '127.0.0.1';
const server = app.listen(Number(process.env.PORT ?? 3000), host);
await plaza.attach(server);
if (!server.listening) await once(server, 'listening');
console.log(`listening on http://${host}:${server.address().port}`);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    await plaza.close();
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
