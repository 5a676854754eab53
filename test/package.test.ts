/**
 * The npm package as a user gets it: `npm pack`, installed into a fresh project outside the
 * repository, a TypeScript consumer typechecked against its .d.ts (strict, NodeNext, no
 * skipLibCheck) and run: a server attached to a node:http server with hooks, and the client
 * imported as `plaza-realtime/client`. The package's own dependencies and the consumer's
 * TypeScript come from the npm cache or the registry.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT } from './helpers/plaza.js';
import { INSTALL_TIMEOUT, installed, npm, pack } from './helpers/package.js';

const NAME = 'plaza-realtime';

const CONSUMER = `
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import { createPlaza, refuse, reject, replace, verifyWebhook, signWebhook, type ClientInfo, type PublishContext, type PlazaEvents } from '${NAME}';
import { connect, PlazaError, type PlazaClient } from '${NAME}/client';

const server = createServer((_req, res) => res.end('the app'));
const plaza = createPlaza({
  path: '/live',
  logLevel: 'silent',
  authenticate: (request) => (request.headers['x-user'] ? { id: String(request.headers['x-user']), name: 'Ada' } : refuse(401, 'who are you?')),
  onPublish: ({ data }: PublishContext) => (data === 'spam' ? reject('spam', 'not here') : data === 'shout' ? replace('SHOUT') : undefined),
});
const joins: ClientInfo[] = [];
plaza.on('join', ({ client }: PlazaEvents['join']) => joins.push(client));
await plaza.attach(server);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;

class AsAda extends WebSocket {
  constructor(url: string | URL, protocols?: string | string[]) {
    super(url, protocols, { headers: { 'x-user': 'u1' } });
  }
}
const client: PlazaClient = connect(\`ws://127.0.0.1:\${port}/live\`, { WebSocket: AsAda, rooms: true });
const room = client.join('team');
const received: unknown[] = [];
room.on('message', (data) => received.push(data));
await new Promise<void>((resolve) => room.on('joined', () => resolve()));
const ack = await room.publish('hello');
const refused = await room.publish('spam').then(() => 'published', (error: unknown) => (error instanceof PlazaError ? error.code : 'other'));
await room.publish('shout');
const byServer = await plaza.publish('team', { from: 'the app' });
while (received.length < 3) await new Promise((resolve) => setTimeout(resolve, 10));
const app = await (await fetch(\`http://127.0.0.1:\${port}/\`)).text();
const body = '{"events":[]}';
const verified = verifyWebhook(body, signWebhook('a-secret-of-at-least-32-characters!!', body), 'a-secret-of-at-least-32-characters!!');
client.close();
await plaza.close();
server.close();
console.log(JSON.stringify({ ack: ack.offset, refused, received, byServer: byServer.offset, user: joins[0]?.user, app, verified }));
`;

/**
 * A React app's TypeScript (strict, JSX) against plaza-realtime/react: `useRoom<T>` types the
 * messages' data and what publish takes (the @ts-expect-error lines fail the build if it did
 * not), and the page renders on the server with react-dom/server.
 */
const REACT_CONSUMER = `
import { renderToString } from 'react-dom/server';
import { PlazaProvider, usePlazaStatus, usePresence, useRoom, type RoomView } from '${NAME}/react';
import type { PlazaError, Status } from '${NAME}/client';

interface Line { text: string; at: number }

function Chat() {
  const view: RoomView<Line> = useRoom<Line>('lobby', { history: 10, presence: true, keep: 50 });
  const first: string | undefined = view.messages[0]?.data.text;
  // @ts-expect-error data is a Line, which has no 'body'
  view.messages[0]?.data.body;
  // Type checks only: never called during a render, where nothing holds the room yet.
  const send = () => {
    // @ts-expect-error publish takes a Line
    void view.publish('not a line');
    return view.publish({ text: 'hi', at: 1 }).then((ack) => ack.offset + 1);
  };
  const status: Status = view.status;
  const error: PlazaError | undefined = view.error;
  const { memberCount } = usePresence('lobby');
  const { status: connection } = usePlazaStatus();
  return <p data-status={status + connection} onClick={send}>{first ?? 'none'} {memberCount} {error?.code ?? ''} {view.reset?.reason ?? ''}</p>;
}

console.log(renderToString(<PlazaProvider url="ws://127.0.0.1:9" options={{ name: 'Ada' }}><Chat /></PlazaProvider>));
`;

/** A CommonJS file, as a newcomer writes one after `npm init -y`. */
const COMMONJS_CONSUMER = `
const { createServer } = require('node:http');
const { WebSocket } = require('ws');
const { createPlaza } = require('${NAME}');
const { connect } = require('${NAME}/client');

async function main() {
  const viaImport = (await import('${NAME}')).createPlaza;
  const server = createServer();
  const plaza = createPlaza({ path: '/live', logLevel: 'silent' });
  await plaza.attach(server);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = connect('ws://127.0.0.1:' + server.address().port + '/live', { WebSocket, rooms: true });
  const room = client.join('team');
  const received = [];
  room.on('message', (data) => received.push(data));
  await new Promise((resolve) => room.on('joined', () => resolve()));
  await plaza.publish('team', 'hello from CommonJS');
  while (received.length < 1) await new Promise((resolve) => setTimeout(resolve, 10));
  client.close();
  await plaza.close();
  server.close();
  console.log(JSON.stringify({ viaRequire: typeof createPlaza, viaImport: typeof viaImport, same: viaImport === createPlaza, received }));
}
main().catch((error) => {
  console.error(error);
  process.exit(1);
});
`;

describe('the npm package', () => {
  let dir: string;
  let packed: { tarball: string; files: string[] };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'plaza-package-'));
    packed = pack(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('holds the library, its types, the CLI, the client bundles and the license, and nothing of the sources or tests', () => {
    for (const file of [
      'package.json', 'LICENSE', 'README.md', 'CHANGELOG.md', 'PROTOCOL.md', 'docs/server.md', 'docs/client.md',
      'dist/index.js', 'dist/server.js', 'dist/public/plaza.js', 'dist/public/plaza.mjs', 'dist/public/index.html',
      'dist/types/server/index.d.ts', 'dist/types/client/index.d.ts', 'dist/types/shared/protocol.d.ts',
      'dist/react.js', 'dist/types/react/index.d.ts', 'docs/react.md',
      // docs/scaling.md links it: the placement config operators copy.
      'docs/scaling.md', 'docs/placement/haproxy.cfg',
    ]) {
      assert.ok(packed.files.includes(file), `the package holds ${file}`);
    }
    const strays = packed.files.filter((file) => /^(src|test|build|bench|examples|public)\//.test(file) || file.endsWith('.map'));
    assert.deepEqual(strays, []);
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(manifest.name, NAME);
    assert.equal(manifest.private, undefined);
    assert.equal(manifest.license, 'MIT');
    assert.match(readFileSync(join(ROOT, 'LICENSE'), 'utf8'), /^MIT License/);
  });

  it('installs into a fresh project, where a strict TypeScript consumer typechecks against it and runs', { timeout: INSTALL_TIMEOUT + 60_000 }, () => {
    const project = join(dir, 'consumer');
    execFileSync('mkdir', ['-p', join(project, 'src')]);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, types: ['node'], lib: ['ES2022'], outDir: 'out', rootDir: 'src' },
      include: ['src'],
    }));
    writeFileSync(join(project, 'src/consumer.ts'), CONSUMER);
    npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', packed.tarball,
      `typescript@${installed('typescript')}`, `@types/node@${installed('@types/node')}`, `ws@${installed('ws')}`, `@types/ws@${installed('@types/ws')}`], project);
    execFileSync(process.execPath, [join(project, 'node_modules/typescript/bin/tsc'), '-p', project], { cwd: project, encoding: 'utf8' });
    const output = execFileSync(process.execPath, [join(project, 'out/consumer.js')], { cwd: project, encoding: 'utf8', timeout: 30_000 });
    assert.deepEqual(JSON.parse(output), {
      ack: 1,
      refused: 'spam',
      received: ['hello', 'SHOUT', { from: 'the app' }],
      byServer: 3,
      user: 'u1',
      app: 'the app',
      verified: true,
    });
    const help = execFileSync(join(project, 'node_modules/.bin/plaza'), ['--help'], { encoding: 'utf8' });
    assert.match(help, /--webhook-url/);
  });

  it('gives a React app typed hooks at plaza-realtime/react: a strict TSX consumer typechecks and renders on the server', { timeout: INSTALL_TIMEOUT + 60_000 }, () => {
    const project = join(dir, 'react-consumer');
    execFileSync('mkdir', ['-p', join(project, 'src')]);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'react-consumer', private: true, type: 'module' }));
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', jsx: 'react-jsx', strict: true, skipLibCheck: false, types: ['node'], lib: ['ES2022', 'DOM'], outDir: 'out', rootDir: 'src' },
      include: ['src'],
    }));
    writeFileSync(join(project, 'src/page.tsx'), REACT_CONSUMER);
    npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', packed.tarball,
      `typescript@${installed('typescript')}`, `@types/node@${installed('@types/node')}`, `react@${installed('react')}`, `react-dom@${installed('react-dom')}`,
      `@types/react@${installed('@types/react')}`, `@types/react-dom@${installed('@types/react-dom')}`], project);
    execFileSync(process.execPath, [join(project, 'node_modules/typescript/bin/tsc'), '-p', project], { cwd: project, encoding: 'utf8' });
    const output = execFileSync(process.execPath, [join(project, 'out/page.js')], { cwd: project, encoding: 'utf8', timeout: 30_000 });
    assert.equal(output.trim(), '<p data-status="connectingconnecting">none<!-- --> <!-- -->0<!-- --> <!-- --> </p>');
  });

  it('loads with require() in a CommonJS project, as `npm init -y` makes one, where the README says it does', { timeout: INSTALL_TIMEOUT + 30_000 }, () => {
    // README, "Use it as a library": the package is ES modules; from CommonJS, require() works on
    // Node 20.19+ and 22.12+ (Node's require of ES modules), import() on any Node.
    const project = join(dir, 'commonjs');
    execFileSync('mkdir', ['-p', project]);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'commonjs-consumer', private: true, type: 'commonjs' }));
    writeFileSync(join(project, 'consumer.js'), COMMONJS_CONSUMER);
    npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', packed.tarball, `ws@${installed('ws')}`], project);
    const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
    const requireWorks = (major === 20 && minor >= 19) || (major === 22 && minor >= 12) || major >= 23;
    const result = spawnSync(process.execPath, [join(project, 'consumer.js')], { cwd: project, encoding: 'utf8', timeout: 30_000 });
    if (!requireWorks) {
      assert.match(result.stderr, /ERR_REQUIRE_ESM/, 'older Node refuses require() of the package, as the README warns');
      return;
    }
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { viaRequire: 'function', viaImport: 'function', same: true, received: ['hello from CommonJS'] });
    assert.equal(result.stderr, '', 'no warning either');
  });
});
