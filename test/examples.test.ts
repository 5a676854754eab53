/**
 * The examples run as their READMEs say, the way a newcomer runs them (issue 29). Each
 * examples/<name>/README.md opens with a ```sh block of the exact commands, typed at the root of
 * a fresh clone; the last one starts the example, which prints `listening on <url>`. Every
 * example gets the same walk: the commands work from a fresh clone, npm says nothing about
 * install scripts, and Ctrl-C leaves nothing running and the clone as it was. What an example
 * promises beyond that is in EXAMPLES under its folder's name; a new example needs at least an
 * entry there (the test fails without one). The webhook receiver also runs beside
 * `node dist/server.js` the way its README's second block says, with forged and replayed POSTs.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { WebSocket } from 'ws';
import type * as Client from '../src/client/index.js';
import { signWebhook } from '../src/server/webhooks/signature.js';
import { launchChromium, skipWithoutChromium, watchErrors } from './helpers/browser.js';
import { allCommandLines, freshClone, processesIn, readmeCommands, shellEnvironment, typeCommands, type Typed } from './helpers/fresh-clone.js';
import { INSTALL_TIMEOUT } from './helpers/package.js';
import { ROOT } from './helpers/plaza.js';
import { joined } from './helpers/library.js';
import { until } from './helpers/wait.mjs';

/** A running example: the clone it runs in, the commands typed, and the URL it printed. */
interface Example {
  clone: string;
  typed: Typed;
  url: string;
  /** Plaza's client, from the clone's build. */
  client: typeof Client;
}

interface ExampleTests {
  /** Environment beyond PORT=0 and HOST=127.0.0.1, so that every port it opens is a free one. */
  env?: Record<string, string>;
  /** Defines the example's own `it`s; they run in order, on the example as its commands started it. */
  tests(example: () => Example): void;
}

const EXAMPLES: Record<string, ExampleTests> = {
  express: { tests: expressTests },
  'react-chat': { tests: reactChatTests },
  'webhook-receiver': { env: { RECEIVER_PORT: '0' }, tests: webhookTests },
};

const folders = readdirSync(join(ROOT, 'examples'), { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name);

it('has tests for every example', () => {
  assert.deepEqual(folders.filter((name) => !(name in EXAMPLES)), [], 'add an entry to EXAMPLES in test/examples.test.ts');
});

/** The examples with tests, each cloned and started at once: their installs overlap, not queue. */
const started = new Map<string, { clone: string; cleanStatus: string; typed: Typed; ready: Promise<Example> }>();
before(() => {
  for (const name of folders.filter((folder) => folder in EXAMPLES)) {
    const clone = freshClone();
    const cleanStatus = execFileSync('git', ['status', '--porcelain'], { cwd: clone, encoding: 'utf8' });
    const commands = readmeCommands(join(clone, 'examples', name, 'README.md'));
    // npm from its cache when it can (the commands are the README's; only the shell differs).
    const typed = typeCommands(commands, clone, shellEnvironment({ PORT: '0', HOST: '127.0.0.1', npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false', ...EXAMPLES[name]!.env }));
    const ready = typed.waitFor(/listening on (https?:\/\/[^\s)]+)/, INSTALL_TIMEOUT).then(async ([, url]) => ({
      clone,
      typed,
      url: url!,
      client: (await import(pathToFileURL(join(clone, 'dist/public/plaza.mjs')).href)) as typeof Client,
    }));
    ready.catch(() => undefined); // awaited by the example's own tests, which report it
    started.set(name, { clone, cleanStatus, typed, ready });
  }
});
after(() => {
  for (const { clone, typed } of started.values()) {
    typed.signal('SIGKILL');
    for (const { pid } of processesIn(clone)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    rmSync(clone, { recursive: true, force: true });
  }
});

for (const name of folders.filter((folder) => folder in EXAMPLES)) {
  const { tests } = EXAMPLES[name]!;
  describe(`examples/${name}, from a fresh clone, as its README says`, () => {
    let example: Example | undefined;
    let cleanStatus = '';

    before(async () => {
      cleanStatus = started.get(name)!.cleanStatus;
      example = await started.get(name)!.ready;
    }, { timeout: INSTALL_TIMEOUT + 10_000 });

    it('answers at the URL it printed', async () => {
      assert.equal((await fetch(example!.url)).status, 200);
    });

    it('installs and builds without npm warning about install scripts', () => {
      const said = [...example!.typed.stdout, ...example!.typed.stderr].filter((line) => /install-scripts|allowScripts/.test(line));
      assert.deepEqual(said, []);
    });

    tests(() => example!);

    it('stops on Ctrl-C, leaving nothing running from the clone, nothing on its port, and the clone as it was', async () => {
      const { typed, clone, url } = example!;
      typed.signal('SIGINT');
      if (typed.child.exitCode === null && typed.child.signalCode === null) await once(typed.child, 'exit');
      await until(() => processesIn(clone).length === 0, 10_000, `nothing left running: ${JSON.stringify(processesIn(clone))}`);
      await assert.rejects(fetch(url), 'nothing answers at the URL any more');
      assert.equal(execFileSync('git', ['status', '--porcelain'], { cwd: clone, encoding: 'utf8' }), cleanStatus, 'no file left behind (a package-lock.json, say)');
    });
  });
}

function expressTests(example: () => Example): void {
  const ws = () => `${example().url.replace('http', 'ws')}/live`;

  async function login(name: string): Promise<string> {
    const response = await fetch(`${example().url}/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name }) });
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
    const { url } = example();
    assert.match(await (await fetch(`${url}/`)).text(), /Express \+ Plaza/);
    const script = await fetch(`${url}/plaza.mjs`);
    assert.match(script.headers.get('content-type') ?? '', /javascript/);
    assert.match(await script.text(), /export/);
    assert.deepEqual(await (await fetch(`${url}/plaza/healthz`)).json(), { status: 'ok' });
    assert.equal((await fetch(`${url}/me`)).status, 401);
  });

  it('logs the address Plaza is attached to, not a made-up :0', () => {
    const { typed, url } = example();
    const lines = [...typed.stdout, ...typed.stderr];
    const attached = lines.filter((line) => line.includes('Plaza is attached')).map((line) => JSON.parse(line) as { url: string; path: string });
    assert.deepEqual(attached.map(({ url: address, path }) => ({ url: address, path })), [{ url, path: '/live' }]);
    assert.deepEqual(lines.filter((line) => /:0\b/.test(line)), []);
  });

  it('lets in whom the app\'s session knows, by the session\'s name, and applies the app\'s rule to messages', async () => {
    const { connect } = example().client;
    const ada = connect(ws(), { WebSocket: withCookie(await login('Ada')), rooms: true, name: 'Mallory' });
    const bob = connect(ws(), { WebSocket: withCookie(await login('Bob')), rooms: true });
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
    const stranger = example().client.connect(ws(), { WebSocket, rooms: true });
    try {
      const error = await new Promise<Client.PlazaError>((resolve) => stranger.on('error', resolve));
      assert.equal(error.code, 'unauthorized');
      assert.match(error.message, /log in first/);
    } finally {
      stranger.close();
    }
  });

  describe('in Chromium', { skip: skipWithoutChromium(), timeout: 60_000 }, () => {
    let browser: Browser;
    before(async () => {
      browser = await launchChromium();
    });
    after(() => browser?.close());

    it('shows the login form alone, then the message form alone, and carries a conversation', async () => {
      const open = async () => {
        const page = await (await browser.newContext()).newPage();
        const errors = watchErrors(page);
        await page.goto(example().url);
        return { page, errors };
      };
      const ada = await open();
      // The hidden attribute wins over the forms' display: flex (issue 29).
      await ada.page.locator('#login').waitFor();
      assert.equal(await ada.page.locator('#say').isVisible(), false, 'no "Say something" before logging in');
      await ada.page.fill('#name', 'Ada');
      await ada.page.press('#name', 'Enter');
      await ada.page.locator('#say').waitFor();
      assert.equal(await ada.page.locator('#login').isVisible(), false, 'the login form goes once logged in');

      const bob = await open();
      await bob.page.fill('#name', 'Bob');
      await bob.page.press('#name', 'Enter');
      await bob.page.locator('#say').waitFor();
      await ada.page.fill('#text', 'hello Bob');
      await ada.page.press('#text', 'Enter');
      await bob.page.locator('#log li', { hasText: 'Ada: hello Bob' }).waitFor();
      // The page asks /me whether it is logged in (401 until it is), and there is no favicon.
      const unexpected = (errors: string[]) => errors.filter((error) => !/^console: Failed to load resource: the server responded with a status of 40[14]/.test(error));
      assert.deepEqual([...unexpected(ada.errors), ...unexpected(bob.errors)], []);
    });
  });
}

function reactChatTests(example: () => Example): void {
  it('is the chat in under 70 lines of app.jsx, on plaza-realtime/react', () => {
    const app = readFileSync(join(example().clone, 'examples/react-chat/app.jsx'), 'utf8');
    assert.ok(app.split('\n').length < 70, `app.jsx has ${app.split('\n').length} lines`);
    assert.match(app, /from 'plaza-realtime\/react'/);
  });

  it('serves the page, its WebSocket and /healthz from one Plaza on one port', async () => {
    const { url, client } = example();
    assert.match(await (await fetch(`${url}/`)).text(), /<script src="\/app.js">/);
    assert.equal((await fetch(`${url}/app.js`)).status, 200);
    assert.deepEqual(await (await fetch(`${url}/healthz`)).json(), { status: 'ok' });
    const probe = client.connect(url.replace('http', 'ws'), { WebSocket, rooms: true, name: 'Probe' });
    try {
      await joined(probe.join('lobby'));
    } finally {
      probe.close();
    }
  });

  describe('in Chromium', { skip: skipWithoutChromium(), timeout: 60_000 }, () => {
    let browser: Browser;
    before(async () => {
      browser = await launchChromium();
    });
    after(() => browser?.close());

    it('takes a name, then carries a conversation between two pages and shows who is online', async () => {
      const open = async (name: string) => {
        const page = await (await browser.newContext()).newPage();
        const errors = watchErrors(page);
        await page.goto(example().url);
        await page.fill('#name', name);
        await page.press('#name', 'Enter');
        await page.locator('#status[data-status="open"]').waitFor();
        return { page, errors };
      };
      const ada = await open('Ada');
      const bob = await open('Bob');
      await ada.page.locator('#online li', { hasText: 'Bob' }).waitFor();
      await ada.page.fill('#text', 'hello Bob');
      await ada.page.press('#text', 'Enter');
      await bob.page.locator('#log li', { hasText: 'Adahello Bob' }).waitFor();
      await bob.page.fill('#text', '<b>not bold</b>');
      await bob.page.press('#text', 'Enter');
      await ada.page.locator('#log li', { hasText: 'Bob<b>not bold</b>' }).waitFor();
      assert.deepEqual(await ada.page.locator('#log li').allTextContents(), ['Adahello Bob', 'Bob<b>not bold</b>']);
      assert.equal(await ada.page.locator('#log li b').count(), 2, 'a peer\'s markup stays text');
      assert.deepEqual((await bob.page.locator('#online li').allTextContents()).sort(), ['Ada', 'Bob']);
      assert.deepEqual([...ada.errors, ...bob.errors], []);
    });
  });
}

function webhookTests(example: () => Example): void {
  it('prints the events of Plaza\'s webhooks on stdout', async () => {
    const { client, url, typed } = example();
    const ada = client.connect(`${url.replace('http', 'ws')}/`, { WebSocket, rooms: true, name: 'Ada' });
    try {
      const room = ada.join('team');
      await joined(room);
      room.leave();
      const events = () => typed.stdout.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { type: string; room: string; member?: { name: string } });
      await until(() => events().length === 4, 10_000, `four events, got ${JSON.stringify(typed.stdout)}`);
      assert.deepEqual(events().map((e) => `${e.type} ${e.room}${e.member ? ` ${e.member.name}` : ''}`), [
        'room_occupied team', 'member_joined team Ada', 'member_left team Ada', 'room_vacated team',
      ]);
    } finally {
      ada.close();
    }
  });

  it('gives both the secret in their environment, never on a command line', () => {
    const running = processesIn(example().clone);
    const receiver = running.find((p) => /^\S*node \S*receiver\.js$/.test(p.cmdline));
    const plaza = running.find((p) => /^\S*node \S*dist\/server\.js --webhook-url/.test(p.cmdline));
    assert.ok(receiver && plaza, JSON.stringify(running));
    const secretOf = (pid: number) => /(?:^|\0)WEBHOOK_SECRET=([^\0]*)/.exec(readFileSync(`/proc/${pid}/environ`, 'utf8'))?.[1];
    const secret = secretOf(receiver.pid);
    assert.match(secret ?? '', /^[0-9a-f]{64}$/, 'a new random secret for the run');
    assert.equal(secretOf(plaza.pid), secret);
    assert.deepEqual(allCommandLines().filter((line) => line.includes(secret!)), []);
  });
}

describe('examples/webhook-receiver beside a Plaza of one\'s own', () => {
  const SECRET = 'examples-test-webhook-secret-0123456789';
  const children: ChildProcessWithoutNullStreams[] = [];
  after(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
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

  it('prints every event Plaza sends, once, and refuses what Plaza did not sign', async () => {
    // As its README says: the secret in both environments, none on a command line.
    const receiver = await run(['receiver.js'], join(ROOT, 'examples/webhook-receiver'), { PORT: '0', WEBHOOK_SECRET: SECRET }, /^listening on (http:\/\/\S+)$/);
    const hook = receiver.match[1]!;
    const plaza = await run(
      ['dist/server.js', '--port', '0', '--host', '127.0.0.1', '--log-format', 'json', '--webhook-url', hook],
      ROOT,
      { WEBHOOK_SECRET: SECRET },
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
