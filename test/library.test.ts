/**
 * createPlaza() as an application uses it: importing the built library starts nothing; attach()
 * takes only Plaza's path on the application's http(s) server and leaves the rest alone, close()
 * leaves that server open; handleRequest mounts Plaza's routes; publish() answers with codes.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import { Server as SocketIoServer } from 'socket.io';
import { WebSocket, WebSocketServer } from 'ws';
import { ConfigError, OPTION_SPECS } from '../src/server/config.js';
import { createLogger } from '../src/server/logger.js';
import { createPlaza, type Plaza, type PlazaConfig } from '../src/server/plaza.js';
import { PublishError } from '../src/server/rooms/publish-check.js';
import { connect } from './helpers/plaza.js';
import { joined, listening, messages, roomsClient } from './helpers/library.js';
import { ROOT } from './helpers/plaza.js';
import { until } from './helpers/wait.mjs';

const cleanup: Array<() => unknown> = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

/** An application's own server: its routes, and its own WebSocket endpoint on /app-socket. */
async function appServer(handler?: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string; appSockets: WebSocketServer }> {
  const server = createServer(handler ?? ((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(`app: ${req.url}`);
  }));
  const appSockets = new WebSocketServer({ noServer: true });
  appSockets.on('connection', (ws) => ws.on('message', (data) => ws.send(`echo ${String(data)}`)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.push(() => new Promise((resolve) => server.close(resolve)), () => server.closeAllConnections(), () => appSockets.close());
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, appSockets };
}

function quiet(config: PlazaConfig = {}): Plaza {
  const plaza = createPlaza({ logLevel: 'silent', ...config });
  cleanup.push(() => plaza.close());
  return plaza;
}

describe('the library', () => {
  it('starts nothing when imported: no server, no timer, the process exits by itself', () => {
    const script = `const lib = await import(${JSON.stringify(join(ROOT, 'dist/index.js'))}); console.log(Object.keys(lib).sort().join(','));`;
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr, '');
    const exported = result.stdout.trim().split(',');
    for (const name of ['createPlaza', 'allow', 'reject', 'replace', 'refuse', 'verifyWebhook', 'signWebhook', 'signToken', 'PublishError', 'ConfigError', 'ErrorCode', 'CloseCode']) {
      assert.ok(exported.includes(name), `dist/index.js exports ${name}`);
    }
  });

  it('runs the README\'s "Use it as a library" snippet as written, around an app of its own', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Use it as a library'), readme.indexOf('\n## ', readme.indexOf('## Use it as a library') + 5));
    const snippet = /```js\n([\s\S]*?)```/.exec(section)![1]!.replace("from 'plaza-realtime'", `from ${JSON.stringify(pathToFileURL(join(ROOT, 'dist/index.js')).href)}`);
    const program = `
import { createServer } from 'node:http';
import { WebSocket } from 'ws';
const { connect } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist/public/plaza.mjs')).href)});
const server = createServer((_req, res) => res.end('the app'));
const userOf = (request) => (request.headers['x-user'] ? { id: String(request.headers['x-user']), name: 'Ada' } : undefined);
const archived = [];
const archive = (room) => archived.push(room);
${snippet}
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = \`ws://127.0.0.1:\${server.address().port}/live\`;
class AsAda extends WebSocket { constructor(u, p) { super(u, p, { headers: { 'x-user': 'u1' } }); } }
const ada = connect(url, { WebSocket: AsAda, rooms: true });
const room = ada.join('talk');
await new Promise((resolve) => room.on('joined', resolve));
const ack = await room.publish('hi');
const refused = await room.publish({ not: 'text' }).catch((error) => error.code);
const stranger = connect(url, { WebSocket, rooms: true });
const strangerError = await new Promise((resolve) => stranger.on('error', (error) => resolve(error.code)));
room.leave();
while (archived.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
ada.close();
await plaza.close();
server.close();
console.log(JSON.stringify({ ack: ack.offset, refused, strangerError, archived }));
`;
    const file = join(ROOT, 'build', `readme-library-${process.pid}.mjs`);
    writeFileSync(file, program);
    cleanup.push(() => rmSync(file, { force: true }));
    const output = execFileSync(process.execPath, [file], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
    assert.deepEqual(JSON.parse(output.trim().split('\n').at(-1)!), { ack: 1, refused: 'not_text', strangerError: 'unauthorized', archived: ['talk'] });
  });

  it('keeps dist/server.js the self-contained CLI: it imports no package', () => {
    const text = readFileSync(join(ROOT, 'dist/server.js'), 'utf8');
    assert.doesNotMatch(text, /^import [^;]*from\s*["'](?!node:)[^"']+["']/m);
    const library = readFileSync(join(ROOT, 'dist/index.js'), 'utf8');
    assert.match(library, /from\s*"ws"/, 'the library imports ws from its dependencies');
    assert.doesNotMatch(library, /^#!/, 'the library is no script');
  });
});

describe('attach(server)', () => {
  it('takes upgrades on its path only: the application keeps its routes and its own WebSocket endpoint', async () => {
    const { server, url, appSockets } = await appServer();
    server.on('upgrade', (request, socket, head) => {
      if (request.url === '/app-socket') appSockets.handleUpgrade(request, socket, head, (ws) => appSockets.emit('connection', ws, request));
    });
    const plaza = quiet({ path: '/plaza' });
    await plaza.attach(server);
    assert.equal(plaza.state, 'listening');
    assert.equal(plaza.url, url);
    assert.equal(await (await fetch(`${url}/healthz`)).text(), 'app: /healthz', 'the app answers its own routes, even Plaza-like ones');
    const app = new WebSocket(`${url.replace('http', 'ws')}/app-socket`);
    await once(app, 'open');
    app.send('hi');
    const [echo] = await once(app, 'message');
    assert.equal(String(echo), 'echo hi');
    const ada = roomsClient(`${url.replace('http', 'ws')}/plaza`);
    cleanup.push(() => ada.close());
    const room = ada.join('team');
    await joined(room);
    assert.equal((await room.publish('hello')).offset, 1);
    app.close();
  });

  it('takes a path with non-ASCII characters the way clients send it (percent-encoded)', async () => {
    const { server, url } = await appServer();
    const plaza = quiet({ path: '/ünïcode' });
    await plaza.attach(server);
    const ada = roomsClient(`${url.replace('http', 'ws')}/ünïcode`);
    cleanup.push(() => ada.close());
    const room = ada.join('team');
    await joined(room);
    assert.equal((await room.publish('hello')).offset, 1);
  });

  it('shares a server with socket.io, which ends upgrades not answered within a second unless destroyUpgrade is false', async () => {
    const plainUpgrade = (url: string) =>
      new Promise<string>((resolve) => {
        const ws = new WebSocket(url);
        ws.on('open', () => (ws.close(), resolve('open')));
        ws.on('error', () => resolve('failed'));
      });
    for (const destroyUpgrade of [true, false]) {
      const { server, url } = await appServer();
      const io = new SocketIoServer(server, { destroyUpgrade });
      cleanup.push(() => io.close());
      const plaza = quiet({
        path: '/plaza',
        // An authenticate hook that takes longer than socket.io's one second for the slow ones.
        authenticate: async (request) => {
          if (request.url?.includes('slow')) await new Promise((resolve) => setTimeout(resolve, 1500));
          return undefined;
        },
      });
      await plaza.attach(server);
      const polling = await fetch(`${url}/socket.io/?EIO=4&transport=polling`);
      assert.equal(polling.status, 200, 'socket.io answers its own requests');
      assert.match(await polling.text(), /"sid"/);
      assert.equal(await plainUpgrade(`${url.replace('http', 'ws')}/plaza`), 'open');
      assert.equal(await plainUpgrade(`${url.replace('http', 'ws')}/plaza?slow`), destroyUpgrade ? 'failed' : 'open', `destroyUpgrade: ${destroyUpgrade}`);
    }
  });

  it('answers 404 off its path when it is the only one listening for upgrades (nobody else would answer)', async () => {
    const { server } = await appServer();
    const plaza = quiet({ path: '/plaza' });
    await plaza.attach(server);
    await assert.rejects(connect(`ws://127.0.0.1:${plaza.port}/elsewhere`), /upgrade refused with 404/);
  });

  it('close() closes Plaza\'s clients with 1001 and leaves the application\'s server and sockets open', async () => {
    const { server, url, appSockets } = await appServer();
    server.on('upgrade', (request, socket, head) => {
      if (request.url === '/app-socket') appSockets.handleUpgrade(request, socket, head, (ws) => appSockets.emit('connection', ws, request));
    });
    const plaza = createPlaza({ logLevel: 'silent', path: '/plaza', shutdownTimeout: 500 });
    await plaza.attach(server);
    const app = new WebSocket(`${url.replace('http', 'ws')}/app-socket`);
    await once(app, 'open');
    const client = await connect(`${url.replace('http', 'ws')}/plaza`);
    await plaza.close();
    assert.equal(await client.closed, 1001);
    assert.equal(plaza.state, 'closed');
    assert.equal(server.listening, true);
    assert.equal(await (await fetch(`${url}/still`)).text(), 'app: /still');
    app.send('still there');
    const [echo] = await once(app, 'message');
    assert.equal(String(echo), 'echo still there');
    assert.equal(server.listenerCount('upgrade'), 1, 'Plaza took its upgrade listener away');
    app.close();
  });

  it('serves wss when the server it joins is https', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plaza-tls-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    const server = createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (_req, res) => res.end('app'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanup.push(() => new Promise((resolve) => server.close(resolve)), () => server.closeAllConnections());
    const plaza = quiet();
    await plaza.attach(server);
    assert.match(plaza.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const ws = new WebSocket(`wss://127.0.0.1:${plaza.port}/`, 'plaza.v1', { rejectUnauthorized: false });
    await once(ws, 'open');
    assert.equal(ws.protocol, 'plaza.v1');
    ws.close();
  });

  it('logs the address of the server it joined: at once when it listens, else once it does, never a made-up :0', async () => {
    const lines: Array<{ msg: string; url?: string; path?: string }> = [];
    const logger = createLogger({ level: 'warn', format: 'json', write: (line) => lines.push(JSON.parse(line)) });
    const attachedLines = () => lines.filter((line) => line.msg === 'Plaza is attached');

    // As Express does it: app.listen() returns before the server listens, and attach() follows.
    const later = createServer((_req, res) => res.end('app'));
    cleanup.push(() => new Promise((resolve) => later.close(resolve)));
    later.listen(0, '127.0.0.1');
    const early = createPlaza({ path: '/live' }, { logger });
    await early.attach(later);
    assert.equal(later.listening, false, 'attached before the server listens');
    assert.deepEqual(attachedLines(), [], 'no address to tell yet');
    await once(later, 'listening');
    assert.deepEqual(attachedLines(), [{ ...attachedLines()[0], url: `http://127.0.0.1:${(later.address() as { port: number }).port}`, path: '/live' }]);
    await early.close();

    lines.length = 0;
    const { server, url } = await appServer();
    const plaza = createPlaza({}, { logger });
    await plaza.attach(server);
    assert.equal(attachedLines().length, 1);
    assert.equal(attachedLines()[0]!.url, url);
    await plaza.close();

    // Closed before the server ever listened: nothing is announced afterwards.
    lines.length = 0;
    const never = createServer();
    const gone = createPlaza({}, { logger });
    await gone.attach(never);
    await gone.close();
    never.listen(0, '127.0.0.1');
    await once(never, 'listening');
    assert.deepEqual(attachedLines(), []);
    never.close();
  });

  it('is refused with a clear error for something that is no server, a second start, or TLS options', async () => {
    await assert.rejects(quiet().attach({} as Server), TypeError);
    const { server } = await appServer();
    const twice = quiet();
    await twice.attach(server);
    await assert.rejects(twice.listen(), /listen\(\) called on a Plaza that is listening/);
    await assert.rejects(quiet({ tlsCert: '/c.pem', tlsKey: '/k.pem' }).attach(server), (error: ConfigError) => error.option === 'tlsCert');
  });
});

describe('handleRequest', () => {
  it('answers Plaza\'s routes where the application mounts it, and hands everything else to next()', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plaza-public-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'hello.txt'), 'static hello');
    const plaza = quiet({ publicDir: dir });
    const prefix = '/plaza';
    const { server, url } = await appServer((req, res) => {
      if (req.url?.startsWith(`${prefix}/`)) {
        req.url = req.url.slice(prefix.length);
        return plaza.handleRequest(req, res, () => {
          res.writeHead(404, { 'Content-Type': 'text/plain' });
          res.end('the app\'s own 404');
        });
      }
      res.end('app');
    });
    const early = await fetch(`${url}/plaza/healthz`);
    assert.equal(early.status, 404, 'before attach() resolved, next() answers');
    await plaza.attach(server);
    assert.deepEqual(await (await fetch(`${url}/plaza/healthz`)).json(), { status: 'ok' });
    assert.equal((await fetch(`${url}/plaza/metrics`)).status, 200);
    assert.equal(await (await fetch(`${url}/plaza/hello.txt`)).text(), 'static hello');
    const missing = await fetch(`${url}/plaza/nothing-here`);
    assert.equal(await missing.text(), 'the app\'s own 404');
    assert.equal(await (await fetch(`${url}/other`)).text(), 'app');
  });

  it('without next, answers 404 itself for what is not Plaza\'s', async () => {
    const early = quiet();
    const { url: earlyUrl } = await appServer((req, res) => early.handleRequest(req, res));
    assert.equal((await fetch(`${earlyUrl}/healthz`)).status, 503, 'not serving yet, and no next()');
    const plaza = await listening();
    cleanup.push(() => plaza.close());
    const { url } = await appServer((req, res) => plaza.handleRequest(req, res));
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    assert.equal((await fetch(`${url}/nothing`)).status, 404);
  });
});

describe('publish(room, data)', () => {
  it('publishes as the server: every member gets it, in order with client messages, and it resolves with its place', async () => {
    const plaza = await listening();
    cleanup.push(() => plaza.close());
    const ada = roomsClient(`ws://127.0.0.1:${plaza.port}/`);
    cleanup.push(() => ada.close());
    const room = ada.join('orders');
    await joined(room);
    const got = messages(room);
    await room.publish('from ada');
    const result = await plaza.publish('orders', { id: 17, status: 'shipped' });
    assert.deepEqual({ room: result.room, offset: result.offset, delivered: result.delivered }, { room: 'orders', offset: 2, delivered: 1 });
    await until(() => got.length === 2, 3000, 'both messages');
    assert.deepEqual(got[1]!.data, { id: 17, status: 'shipped' });
    assert.deepEqual(got[1]!.meta.sender, { session: 'server', name: 'server' });
    assert.equal((await plaza.publish('empty-room', 1)).delivered, 0, 'a room need not have members');
  });

  it('rejects with a PublishError carrying the code a client would get', async () => {
    const early = quiet();
    await assert.rejects(early.publish('a', 1), (error: PublishError) => error instanceof PublishError && error.code === 'unavailable');
    const plaza = await listening({ maxPayload: 1024 });
    cleanup.push(() => plaza.close());
    const cases: Array<[string, unknown, string]> = [
      ['', 1, 'bad_room'],
      ['no spaces', 1, 'bad_room'],
      ['plaza:status', 1, 'forbidden'],
      ['a', undefined, 'bad_request'],
      ['a', () => 1, 'bad_request'],
      ['a', 'x'.repeat(2000), 'too_large'],
    ];
    for (const [room, data, code] of cases) {
      await assert.rejects(plaza.publish(room, data), (error: PublishError) => error.code === code, `${room} ${String(data).slice(0, 10)}`);
    }
    await plaza.close();
    await assert.rejects(plaza.publish('a', 1), (error: PublishError) => error.code === 'unavailable');
  });

  it('answers server_full when every room slot is taken by rooms with members', async () => {
    const plaza = await listening({ maxRooms: 1 });
    cleanup.push(() => plaza.close());
    const ada = roomsClient(`ws://127.0.0.1:${plaza.port}/`);
    cleanup.push(() => ada.close());
    await joined(ada.join('only'));
    await assert.rejects(plaza.publish('another', 1), (error: PublishError) => error.code === 'server_full');
    assert.equal((await plaza.publish('only', 1)).offset, 1);
  });
});

describe('createPlaza(config)', () => {
  it('takes every command-line option by the camelCase of its flag (--max-payload is maxPayload)', () => {
    for (const spec of OPTION_SPECS) {
      assert.equal(spec.flag.slice(2).replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase()), spec.key);
    }
  });

  it('checks hooks and their bounds once, naming what to fix', () => {
    assert.throws(() => createPlaza({ onPublish: 'yes' as never }), (error: ConfigError) => error.option === 'onPublish' && /function/.test(error.message));
    assert.throws(() => createPlaza({ hookTimeout: 0 }), (error: ConfigError) => error.option === 'hookTimeout');
    assert.throws(() => createPlaza({ maxHookCalls: 1.5 }), (error: ConfigError) => error.option === 'maxHookCalls');
    assert.throws(() => createPlaza({ path: 'plaza' }), (error: ConfigError) => error.option === 'path');
    assert.throws(() => createPlaza({ onJion: () => {} } as PlazaConfig), (error: ConfigError) => error.option === 'onJion');
  });
});
