/**
 * The examples run as their READMEs say. examples/express is copied to a temporary folder, given
 * the packed package instead of its `file:../..` link, installed (express from the npm cache or
 * the registry) and started; Plaza's client from that install logs in through the app's session
 * and talks. examples/webhook-receiver (no dependencies) runs beside `node dist/server.js
 * --webhook-url …` and prints what Plaza's clients did.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import type * as Client from '../src/client/index.js';
import { signWebhook } from '../src/server/webhooks/signature.js';
import { INSTALL_TIMEOUT, npm, pack } from './helpers/package.js';
import { ROOT } from './helpers/plaza.js';
import { joined, until } from './helpers/library.js';

const children: ChildProcessWithoutNullStreams[] = [];
const folders: string[] = [];
after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

/** Starts `node args` in `cwd`; resolves with the process and its stdout lines once `ready` matches a line. */
async function run(args: string[], cwd: string, env: Record<string, string>, ready: RegExp): Promise<{ child: ChildProcessWithoutNullStreams; lines: string[]; match: RegExpExecArray }> {
  const child = spawn(process.execPath, args, { cwd, env: { ...process.env, ...env } });
  children.push(child);
  const lines: string[] = [];
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const check = (line: string) => {
      const found = ready.exec(line);
      if (found) resolve(found);
    };
    createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(line);
      check(line);
    });
    createInterface({ input: child.stderr }).on('line', check);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}: ${stderr}`)));
    setTimeout(() => reject(new Error(`${args.join(' ')} did not start: ${stderr}`)), 20_000).unref();
  });
  return { child, lines, match };
}

describe('examples/express', () => {
  let folder: string;
  let url: string;
  let app: ChildProcessWithoutNullStreams;
  let client: typeof Client;

  before(async () => {
    folder = mkdtempSync(join(tmpdir(), 'plaza-express-'));
    folders.push(folder);
    const { tarball } = pack(folder);
    const example = join(folder, 'express');
    cpSync(join(ROOT, 'examples/express'), example, { recursive: true });
    const manifest = JSON.parse(readFileSync(join(example, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    assert.equal(manifest.dependencies['plaza-realtime'], 'file:../..', 'the example links the repository');
    manifest.dependencies['plaza-realtime'] = `file:${tarball}`;
    writeFileSync(join(example, 'package.json'), JSON.stringify(manifest, null, 2));
    npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], example);
    const started = await run(['server.js'], example, { PORT: '0', HOST: '127.0.0.1' }, /^listening on (http:\/\/\S+)$/);
    app = started.child;
    url = started.match[1]!;
    client = (await import(pathToFileURL(join(example, 'node_modules/plaza-realtime/dist/public/plaza.mjs')).href)) as typeof Client;
  }, { timeout: INSTALL_TIMEOUT + 30_000 });

  async function login(name: string): Promise<string> {
    const response = await fetch(`${url}/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name }) });
    assert.equal(response.status, 200);
    return /sid=[^;]+/.exec(response.headers.get('set-cookie') ?? '')![0];
  }

  function withCookie(cookie: string): typeof WebSocket {
    return class extends WebSocket {
      constructor(address: string | URL, protocols?: string | string[]) {
        super(address, protocols, { headers: { cookie } });
      }
    } as typeof WebSocket;
  }

  it('serves its own pages, Plaza\'s client, and Plaza\'s routes where it mounted them', async () => {
    assert.match(await (await fetch(`${url}/`)).text(), /Express \+ Plaza/);
    const script = await fetch(`${url}/plaza.mjs`);
    assert.match(script.headers.get('content-type') ?? '', /javascript/);
    assert.match(await script.text(), /export/);
    assert.deepEqual(await (await fetch(`${url}/plaza/healthz`)).json(), { status: 'ok' });
    assert.equal((await fetch(`${url}/me`)).status, 401);
  });

  it('lets in whom the app\'s session knows, by the session\'s name, and applies the app\'s rule to messages', async () => {
    const ada = client.connect(`${url.replace('http', 'ws')}/live`, { WebSocket: withCookie(await login('Ada')), rooms: true, name: 'Mallory' });
    const bob = client.connect(`${url.replace('http', 'ws')}/live`, { WebSocket: withCookie(await login('Bob')), rooms: true });
    try {
      const adaRoom = ada.join('lobby');
      const bobRoom = bob.join('lobby');
      await Promise.all([joined(adaRoom), joined(bobRoom)]);
      const got: Array<[unknown, string]> = [];
      bobRoom.on('message', (data, meta) => got.push([data, meta.sender.name]));
      await adaRoom.publish('hello from the session');
      await assert.rejects(adaRoom.publish('x'.repeat(501)), (error: Client.PlazaError) => error.code === 'too_long');
      await assert.rejects(adaRoom.publish({ not: 'text' }), (error: Client.PlazaError) => error.code === 'not_text');
      await until(() => got.length === 1, 5000, 'Bob to hear Ada');
      assert.deepEqual(got, [['hello from the session', 'Ada']]);
    } finally {
      ada.close();
      bob.close();
    }
  });

  it('refuses a WebSocket without a session: 4003, and the client stops with `unauthorized`', async () => {
    const stranger = client.connect(`${url.replace('http', 'ws')}/live`, { WebSocket, rooms: true });
    try {
      const error = await new Promise<Client.PlazaError>((resolve) => stranger.on('error', resolve));
      assert.equal(error.code, 'unauthorized');
      assert.match(error.message, /log in first/);
    } finally {
      stranger.close();
    }
  });

  it('shuts down cleanly on SIGTERM', async () => {
    app.kill('SIGTERM');
    const [code] = await once(app, 'exit');
    assert.equal(code, 0);
  });
});

describe('examples/webhook-receiver', () => {
  const SECRET = 'examples-test-webhook-secret-0123456789';

  it('prints every event Plaza sends, once, and refuses what Plaza did not sign', async () => {
    const receiver = await run(['receiver.js'], join(ROOT, 'examples/webhook-receiver'), { PORT: '0', WEBHOOK_SECRET: SECRET }, /^listening on (http:\/\/\S+)$/);
    const hook = receiver.match[1]!;
    const plaza = await run(
      ['dist/server.js', '--port', '0', '--host', '127.0.0.1', '--log-format', 'json', '--webhook-url', hook, '--webhook-secret', SECRET],
      ROOT,
      {},
      /"url":"(http:\/\/[^"]+)"/,
    );
    const { connect } = (await import(pathToFileURL(join(ROOT, 'dist/public/plaza.mjs')).href)) as typeof Client;
    const ada = connect(`${plaza.match[1]!.replace('http', 'ws')}/`, { WebSocket, rooms: true, name: 'Ada' });
    const room = ada.join('team');
    await joined(room);
    room.leave();
    const events = () => receiver.lines.map((line) => JSON.parse(line) as { type: string; room: string; member?: { name: string }; id: string });
    await until(() => events().length === 4, 10_000, 'four events');
    assert.deepEqual(events().map((e) => `${e.type} ${e.room}${e.member ? ` ${e.member.name}` : ''}`), [
      'room_occupied team', 'member_joined team Ada', 'member_left team Ada', 'room_vacated team',
    ]);
    ada.close();

    // A forged POST is refused; a replayed one (same ids) is accepted and not printed again.
    const body = JSON.stringify({ node: 'x', events: [{ id: events()[0]!.id, type: 'room_occupied', room: 'team', time: Date.now() }] });
    assert.equal(await post(hook, body, signWebhook(`${SECRET}-wrong`, body)), 400);
    assert.equal(await post(hook, body, signWebhook(SECRET, body)), 204);
    const forged = JSON.stringify({ node: 'x', events: [{ id: 'new', type: 'room_vacated', room: 'forged', time: Date.now() }] });
    assert.equal(await post(hook, forged, signWebhook(SECRET, body)), 400, 'a signature of another body');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(events().length, 4);
    plaza.child.kill('SIGTERM');
    receiver.child.kill('SIGTERM');
    await Promise.all([once(plaza.child, 'exit'), once(receiver.child, 'exit')]);
  });
});

function post(url: string, body: string, signature: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Plaza-Signature': signature } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end(body);
  });
}
