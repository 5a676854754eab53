/**
 * README.md's "Three ways to use it", walked the way a newcomer reads it, with the snippets
 * taken from the README itself: `node dist/server.js`, the chat page at http://localhost:8080/
 * and opened from disk in two more browsers, the plain-client snippet in a browser and in its
 * Node 20 `ws` form, and the embed snippet in a page from another origin. docs/client.md's Node
 * example runs as written too. System Chromium via playwright-core.
 *
 * The README's port is 8080. When something else holds it on this machine, the walk uses the
 * README's other documented way, `PORT=<free>` and `?server=ws://localhost:<port>`, and says so.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, ROOT, skipWithoutChromium, watchErrors } from '../helpers/browser.js';
import { until } from '../helpers/wait.mjs';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const SECTION = README.slice(README.indexOf('## Three ways to use it'), README.indexOf('\n## ', README.indexOf('## Three ways to use it') + 5));

/** The fenced blocks of `text` in `language`, without their indentation. */
function blocks(text: string, language: string): string[] {
  return [...text.matchAll(new RegExp(`^( *)\`\`\`${language}\\n([\\s\\S]*?)^\\1\`\`\``, 'gm'))].map(([, indent, body]) =>
    body!.split('\n').map((line) => line.slice(indent!.length)).join('\n'),
  );
}

/** A folder that stands for "a project with `ws` installed": node_modules from this repository. */
function projectFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'plaza-readme-'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

interface Running {
  child: ChildProcess;
  port: number;
}

/** `node dist/server.js` from the repository folder, as written; resolves once it serves. */
function startServer(env: NodeJS.ProcessEnv = {}): Promise<Running | 'port taken'> {
  const child = spawn(process.execPath, ['dist/server.js'], { cwd: ROOT, env: { PATH: process.env.PATH, ...env } });
  const output: string[] = [];
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line);
      const entry = JSON.parse(line) as { msg: string; url?: string };
      if (entry.msg === 'Plaza is serving' && entry.url) resolve({ child, port: Number(new URL(entry.url).port) });
    });
    child.stderr!.on('data', (chunk) => output.push(String(chunk)));
    child.on('exit', (code) => {
      if (code === 1 && /port \d+ is already in use/.test(output.join('\n'))) resolve('port taken');
      else reject(new Error(`dist/server.js exited with ${code}: ${output.join('\n')}`));
    });
  });
}

describe("README: three ways to use it", { skip: skipWithoutChromium(), timeout: 120_000 }, () => {
  let server: Running;
  let browser: Browser;
  let embed: Server | undefined;
  const contexts: BrowserContext[] = [];
  const folders: string[] = [];
  const children: ChildProcess[] = [];
  /** The README's host and port, or the documented alternative when 8080 is taken here. */
  let wsBase = 'ws://localhost:8080';
  let pageQuery = '';
  const pages: Array<{ page: Page; errors: string[] }> = [];

  before(async () => {
    let started = await startServer();
    if (started === 'port taken') {
      // PORT=0: the server picks a free port and says which (the free-port rule, helpers/processes.mjs).
      started = await startServer({ PORT: '0' });
      if (started === 'port taken') throw new Error('PORT=0 found no free port');
      process.stderr.write(`# port 8080 is taken here; walking the README with PORT=${started.port} and ?server=\n`);
      wsBase = `ws://localhost:${started.port}`;
      pageQuery = `?server=${encodeURIComponent(wsBase)}`;
    }
    server = started;
    children.push(server.child);
    browser = await launchChromium();
  });

  after(async () => {
    for (const context of contexts) await context.close();
    await browser?.close();
    if (embed) await new Promise((resolve) => embed?.close(resolve));
    for (const child of children) child.kill('SIGKILL');
    for (const dir of folders) rmSync(dir, { recursive: true, force: true });
  });

  async function openPage(url: string, name: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 800, height: 600 } });
    contexts.push(context);
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto(url);
    await page.locator('#status[data-status="open"]').waitFor();
    await page.fill('#name', name);
    await page.locator('#name').dispatchEvent('change');
    pages.push({ page, errors });
    return page;
  }

  async function say(page: Page, text: string): Promise<void> {
    await page.fill('#message', text);
    await page.press('#message', 'Enter');
  }

  const shows = (page: Page, text: string) => page.locator('[role="log"] .msg .text', { hasText: text }).last().waitFor();

  it('1. chat: the page at http://localhost:8080/ and the page opened from disk in two more browsers', async () => {
    assert.match(SECTION, /open `http:\/\/localhost:8080\/` in two browsers/);
    assert.match(SECTION, /run `node dist\/server\.js`[^]*open `dist\/public\/index\.html` in two browsers/);
    const served = await openPage(`${wsBase.replace('ws:', 'http:')}/`, 'Served');
    const file = pathToFileURL(join(ROOT, 'dist/public/index.html')).href + pageQuery;
    const fromDisk = [await openPage(file, 'Disk A'), await openPage(file, 'Disk B')];
    await say(fromDisk[0]!, 'Hello from a page opened from disk');
    for (const page of [served, fromDisk[1]!]) await shows(page, 'Hello from a page opened from disk');
    await say(fromDisk[1]!, 'And hello back');
    for (const page of [served, fromDisk[0]!]) await shows(page, 'And hello back');
    await say(served, 'The served page hears both');
    for (const page of fromDisk) await shows(page, 'The served page hears both');
  });

  it('2. a broadcast hub: the plain-client snippet in a browser, and in its Node 20 form with ws', async () => {
    const [browserForm, nodeForm] = blocks(SECTION, 'js');
    assert.ok(browserForm && nodeForm, 'two js snippets');
    assert.match(nodeForm, /^import \{ WebSocket \} from 'ws';\n/);
    const withPort = (code: string) => code.replaceAll('ws://localhost:8080', wsBase);

    // In a browser: the page's global WebSocket.
    const context = await browser.newContext();
    contexts.push(context);
    const tab = await context.newPage();
    const logged: string[] = [];
    tab.on('console', (message) => logged.push(message.text()));
    // A page of a local origin: Chromium keeps public ones (about:blank) off localhost sockets.
    await tab.goto(`${wsBase.replace('ws:', 'http:')}/healthz`);
    await tab.evaluate(withPort(browserForm));
    for (const { page } of pages) await shows(page, 'hello everyone');

    // On Node 20 the browser form fails as the README says.
    if (Number(process.versions.node.split('.')[0]) < 22) {
      const bare = spawnSync(process.execPath, ['--input-type=module', '-e', withPort(browserForm)], { encoding: 'utf8', timeout: 10_000 });
      assert.match(bare.stderr, /ReferenceError: WebSocket is not defined/);
    }

    // The ws form, as an .mjs file in a project that has ws installed.
    const dir = projectFolder();
    folders.push(dir);
    writeFileSync(join(dir, 'hub.mjs'), withPort(nodeForm));
    const child = spawn(process.execPath, ['hub.mjs'], { cwd: dir, env: { PATH: process.env.PATH } });
    children.push(child);
    const printed: string[] = [];
    child.stdout.on('data', (chunk) => printed.push(String(chunk)));
    child.stderr.on('data', (chunk) => printed.push(String(chunk)));
    // Its 'hello everyone' reaches the chat pages (a second one, after the browser's).
    await until(() => printed.join('').includes('hello everyone'), 5000, 'the hub client to hear itself');
    await say(pages[0]!.page, 'Hello, Node 20 client');
    await until(() => printed.join('').includes('Hello, Node 20 client'), 5000, 'the Node client to print a chat message');
    await until(() => logged.includes('Hello, Node 20 client'), 5000, 'the browser snippet to log it too');
    assert.doesNotMatch(printed.join(''), /Error/);
  });

  it('3. embed: the snippet in a page from another origin, and the module form', async () => {
    const [html] = blocks(SECTION, 'html');
    assert.ok(html);
    const httpBase = wsBase.replace('ws:', 'http:');
    // The README's placeholder host stands for the server the reader runs.
    const page = html.replaceAll('https://plaza.example.com', httpBase).replaceAll('wss://plaza.example.com', wsBase);
    embed = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><meta charset="utf-8"><title>embed</title>\n${page}`);
    });
    await new Promise<void>((resolve) => embed!.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(embed.address() as AddressInfo).port}`;
    assert.notEqual(origin, new URL(httpBase).origin);

    const context = await browser.newContext();
    contexts.push(context);
    const tab = await context.newPage();
    const errors = watchErrors(tab);
    const logged: string[] = [];
    tab.on('console', (message) => logged.push(message.text()));
    await tab.goto(`${origin}/`);
    // The snippet's own `const plaza`, in the page's global scope.
    await tab.waitForFunction('plaza.status === "open"');
    await say(pages[1]!.page, 'Hello, embedded page');
    await until(() => logged.includes('Hello, embedded page'), 5000, 'the embedded page to log a chat message');

    const module = /`import \{ connect \} from '(https:\/\/plaza\.example\.com\/plaza\.mjs)'`/.exec(SECTION);
    assert.ok(module, 'the module form is in the README');
    const exported = await tab.evaluate(async (url) => typeof (await import(url)).connect, module[1]!.replace('https://plaza.example.com', httpBase));
    assert.equal(exported, 'function');
    assert.deepEqual(errors, []);
  });

  it("docs/client.md: the Node example runs as written from the Plaza folder", async () => {
    const doc = readFileSync(join(ROOT, 'docs/client.md'), 'utf8');
    const example = blocks(doc, 'js').find((code) => code.includes("from './dist/public/plaza.mjs'"));
    assert.ok(example, 'docs/client.md has the Node example');
    // "In the Plaza folder": a folder with dist/public/plaza.mjs and ws installed.
    const dir = projectFolder();
    folders.push(dir);
    mkdirSync(join(dir, 'dist/public'), { recursive: true });
    copyFileSync(join(ROOT, 'dist/public/plaza.mjs'), join(dir, 'dist/public/plaza.mjs'));
    const port = new URL(wsBase.replace('ws:', 'http:')).port || '8080';
    const script = `${example.replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`)}
plaza.on('welcome', (welcome) => { console.log('welcome', welcome.session); plaza.close(); });
`;
    writeFileSync(join(dir, 'client.mjs'), script);
    const result = spawnSync(process.execPath, ['client.mjs'], { cwd: dir, encoding: 'utf8', timeout: 10_000 });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^welcome \S+\n$/);
  });

  it('reports no errors on any chat page', () => {
    for (const { errors } of pages) assert.deepEqual(errors, []);
  });
});
