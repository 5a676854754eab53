import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { loadStaticFiles, type StaticFiles } from '../../src/server/http/static.js';
import { rawGet, sendRaw } from '../helpers/raw-http.js';

const SECRET = 'TOP-SECRET-outside-the-folder-7f3a';
const DOTFILE_SECRET = 'DOTFILE-SECRET-c41b';
const INDEX = '<!doctype html><title>Plaza</title><script src="/app.js"></script>';
// Long and repetitive, so that gzip and brotli both pay off.
const APP_JS = 'console.log("plaza");\n'.repeat(200);
const STYLE = 'body { margin: 0; }\n'.repeat(100);
const SMALL_TEXT = 'hi';
const DEFAULT_CSP =
  "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; " +
  "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

let dir: string;
let root: string;

/** A plain client request; the body is returned as sent (no automatic decompression). */
function fetchRaw(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function listen(files: StaticFiles): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => files.handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

function assertSecurityHeaders(headers: IncomingHttpHeaders | Record<string, string>): void {
  assert.equal(headers['x-content-type-options'], 'nosniff');
  assert.equal(headers['referrer-policy'], 'no-referrer');
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'plaza-static-'));
  root = join(dir, 'public');
  await mkdir(join(root, 'dir'), { recursive: true });
  await mkdir(join(root, 'sub'));
  await mkdir(join(root, 'emptydir'));
  await mkdir(join(root, '.hidden'));
  // Next to the served folder: nothing may ever reveal it.
  await writeFile(join(dir, 'secret'), SECRET);
  await writeFile(join(root, 'index.html'), INDEX);
  await writeFile(join(root, 'app.js'), APP_JS);
  await writeFile(join(root, 'plaza.js'), APP_JS);
  await writeFile(join(root, 'plaza.mjs'), `export const x = 1;\n${APP_JS}`);
  await writeFile(join(root, 'style.css'), STYLE);
  await writeFile(join(root, 'data.json'), '{"a":1}');
  await writeFile(join(root, 'logo.png'), Buffer.alloc(2000));
  await writeFile(join(root, 'blob.constructor'), 'x');
  await writeFile(join(root, 'dir', 'file.txt'), SMALL_TEXT);
  await writeFile(join(root, 'sub', 'index.html'), '<p>sub</p>');
  await writeFile(join(root, '.env'), DOTFILE_SECRET);
  await writeFile(join(root, '.hidden', 'x.txt'), DOTFILE_SECRET);
  await symlink(join(dir, 'secret'), join(root, 'outside-link'));
  await symlink(join(root, '.env'), join(root, 'dotlink.txt'));
  await symlink(join(root, 'dir', 'file.txt'), join(root, 'alias.txt'));
  await symlink(join(root, 'dir'), join(root, 'dirlink'));
  await symlink(join(dir, 'missing'), join(root, 'dangling'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('loadStaticFiles', () => {
  it('maps regular files and inside symlinks to files, skipping dotfiles and other links', async () => {
    const files = await loadStaticFiles({ root });
    // index.html app.js plaza.js plaza.mjs style.css data.json logo.png blob.constructor
    // dir/file.txt sub/index.html alias.txt
    assert.equal(files.size, 11);
  });

  it('throws a TypeError for a relative root', async () => {
    await assert.rejects(loadStaticFiles({ root: 'dist/public' }), TypeError);
  });

  it('throws a TypeError for a multi-line Content-Security-Policy', async () => {
    await assert.rejects(loadStaticFiles({ root, contentSecurityPolicy: "default-src 'self'\r\nX-Evil: 1" }), TypeError);
  });

  it('throws PLAZA_ERR_STATIC_ROOT, saying what to do, when the folder is missing', async () => {
    await assert.rejects(loadStaticFiles({ root: join(dir, 'nope') }), {
      name: 'StaticFilesError',
      code: 'PLAZA_ERR_STATIC_ROOT',
      message: /npm run build/,
    });
  });

  it('throws PLAZA_ERR_STATIC_LIMIT past maxFiles', async () => {
    await assert.rejects(loadStaticFiles({ root, maxFiles: 10 }), { code: 'PLAZA_ERR_STATIC_LIMIT', message: /more than 10 files; --public-dir serves at most 10 files and \d+ bytes/ });
  });

  it('throws PLAZA_ERR_STATIC_LIMIT past maxBytes', async () => {
    await assert.rejects(loadStaticFiles({ root, maxBytes: 1000 }), { code: 'PLAZA_ERR_STATIC_LIMIT', message: /more than 1000 bytes; --public-dir serves at most \d+ files and 1000 bytes, from memory: put fewer files there/ });
  });

  it('lays later folders over earlier ones: a file of the same path wins, the others stay', async () => {
    const overlay = await mkdtemp(join(tmpdir(), 'plaza-static-overlay-'));
    try {
      await writeFile(join(overlay, 'index.html'), '<title>seed page</title>');
      await mkdir(join(overlay, 'dir'));
      await writeFile(join(overlay, 'dir', 'file.txt'), 'replaced');
      await writeFile(join(overlay, 'seed.js'), 'seed();');
      const files = await loadStaticFiles({ root: [root, overlay] });
      assert.equal(files.size, 12, 'the 11 files of the first folder, two replaced, plus seed.js');
      const { server, port } = await listen(files);
      try {
        assert.equal((await fetchRaw(port, '/')).body.toString(), '<title>seed page</title>');
        assert.equal((await fetchRaw(port, '/dir/file.txt')).body.toString(), 'replaced');
        assert.equal((await fetchRaw(port, '/seed.js')).body.toString(), 'seed();');
        assert.equal((await fetchRaw(port, '/plaza.js')).body.toString(), APP_JS, 'files only the first folder has stay');
        assert.equal((await fetchRaw(port, '/sub/')).body.toString(), '<p>sub</p>');
      } finally {
        await close(server);
      }
      // The limits hold for what is served, after the merge.
      await assert.rejects(loadStaticFiles({ root: [root, overlay], maxFiles: 11 }), { code: 'PLAZA_ERR_STATIC_LIMIT', message: /more than 11 files/ });
      await assert.rejects(loadStaticFiles({ root: [root, join(dir, 'nope')] }), { code: 'PLAZA_ERR_STATIC_ROOT', message: /--public-dir/ });
      await assert.rejects(loadStaticFiles({ root: [] }), TypeError);
      await assert.rejects(loadStaticFiles({ root: [root, 'relative'] }), TypeError);
    } finally {
      await rm(overlay, { recursive: true, force: true });
    }
  });

  it('reads the folder once: later changes on disk are not served', async () => {
    const copy = await mkdtemp(join(tmpdir(), 'plaza-static-once-'));
    try {
      await writeFile(join(copy, 'a.txt'), 'before');
      const files = await loadStaticFiles({ root: copy });
      await writeFile(join(copy, 'a.txt'), 'after');
      await writeFile(join(copy, 'b.txt'), 'new');
      const { server, port } = await listen(files);
      try {
        assert.equal((await fetchRaw(port, '/a.txt')).body.toString(), 'before');
        assert.equal((await fetchRaw(port, '/b.txt')).status, 404);
      } finally {
        await close(server);
      }
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  });
});

describe('#handle', () => {
  let server: Server;
  let port: number;

  before(async () => {
    ({ server, port } = await listen(await loadStaticFiles({ root })));
  });

  after(async () => {
    await close(server);
  });

  it('sends each type with the right Content-Type, charset for text, and Content-Length', async () => {
    const expected: [string, string, string | Buffer][] = [
      ['/index.html', 'text/html; charset=utf-8', INDEX],
      ['/app.js', 'text/javascript; charset=utf-8', APP_JS],
      ['/plaza.mjs', 'text/javascript; charset=utf-8', `export const x = 1;\n${APP_JS}`],
      ['/style.css', 'text/css; charset=utf-8', STYLE],
      ['/data.json', 'application/json', '{"a":1}'],
      ['/dir/file.txt', 'text/plain; charset=utf-8', SMALL_TEXT],
      ['/logo.png', 'image/png', Buffer.alloc(2000)],
      ['/blob.constructor', 'application/octet-stream', 'x'],
    ];
    for (const [path, type, content] of expected) {
      const reply = await fetchRaw(port, path);
      assert.equal(reply.status, 200, path);
      assert.equal(reply.headers['content-type'], type, path);
      assert.deepEqual(reply.body, Buffer.from(content), path);
      assert.equal(reply.headers['content-length'], String(reply.body.length), path);
    }
  });

  it('serves /index.html for / and a nested index.html for its folder path', async () => {
    assert.equal((await fetchRaw(port, '/')).body.toString(), INDEX);
    assert.equal((await fetchRaw(port, '/?v=2')).body.toString(), INDEX);
    assert.equal((await fetchRaw(port, '/sub/')).body.toString(), '<p>sub</p>');
  });

  it('serves a symlink that points to a file inside the folder', async () => {
    const reply = await fetchRaw(port, '/alias.txt');
    assert.equal(reply.status, 200);
    assert.equal(reply.body.toString(), SMALL_TEXT);
  });

  it('answers 404 for folders without an index and for unknown paths', async () => {
    for (const path of ['/dir', '/dir/', '/emptydir/', '/sub', '/nope.js', '/INDEX.HTML', '/dirlink/file.txt', '/dangling']) {
      const reply = await fetchRaw(port, path);
      assert.equal(reply.status, 404, path);
      assert.equal(reply.headers['content-type'], 'text/plain; charset=utf-8', path);
      assert.equal(reply.body.toString(), 'Not Found\n', path);
      assert.equal(reply.headers['content-length'], String(reply.body.length), path);
      assertSecurityHeaders(reply.headers);
    }
  });

  it('answers HEAD with the GET headers and no body', async () => {
    const get = await fetchRaw(port, '/app.js');
    const head = await sendRaw(port, rawGet('/app.js').replace('GET', 'HEAD'));
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['content-length'], String(APP_JS.length));
    assert.equal(head.headers['etag'], get.headers.etag);
    assert.equal(head.headers['content-type'], get.headers['content-type']);
    const missing = await sendRaw(port, rawGet('/nope').replace('GET', 'HEAD'));
    assert.equal(missing.status, 404);
    assert.equal(missing.body.length, 0);
    assert.equal(missing.headers['content-length'], '10');
  });

  it('answers other methods with 405 and Allow: GET, HEAD', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
      const reply = await fetchRaw(port, '/index.html', {}, method);
      assert.equal(reply.status, 405, method);
      assert.equal(reply.headers.allow, 'GET, HEAD', method);
      assert.equal(reply.body.toString(), 'Method Not Allowed\n', method);
      assertSecurityHeaders(reply.headers);
    }
  });

  describe('ETag', () => {
    it('sends a strong ETag that changes with the content coding', async () => {
      const plain = await fetchRaw(port, '/app.js');
      const gzipped = await fetchRaw(port, '/app.js', { 'Accept-Encoding': 'gzip' });
      assert.match(String(plain.headers.etag), /^"[\w-]{27}"$/);
      assert.equal(gzipped.headers.etag, String(plain.headers.etag).replace(/"$/, '-gzip"'));
      assert.notEqual((await fetchRaw(port, '/style.css')).headers.etag, plain.headers.etag);
    });

    it('answers 304 without a body when If-None-Match matches', async () => {
      const { headers } = await fetchRaw(port, '/app.js');
      const etag = String(headers.etag);
      for (const ifNoneMatch of [etag, `W/${etag}`, `"other", ${etag}`, `"a",W/${etag} , "b"`, '*']) {
        const reply = await fetchRaw(port, '/app.js', { 'If-None-Match': ifNoneMatch });
        assert.equal(reply.status, 304, ifNoneMatch);
        assert.equal(reply.body.length, 0, ifNoneMatch);
        assert.equal(reply.headers.etag, etag, ifNoneMatch);
        assert.equal(reply.headers['cache-control'], 'public, max-age=3600', ifNoneMatch);
        assertSecurityHeaders(reply.headers);
      }
    });

    it('answers 200 when If-None-Match names another representation', async () => {
      const { headers } = await fetchRaw(port, '/app.js', { 'Accept-Encoding': 'gzip' });
      for (const ifNoneMatch of ['"other"', String(headers.etag), String(headers.etag).replace(/"/g, '')]) {
        const reply = await fetchRaw(port, '/app.js', { 'If-None-Match': ifNoneMatch });
        assert.equal(reply.status, 200, ifNoneMatch);
        assert.equal(reply.body.toString(), APP_JS, ifNoneMatch);
      }
    });

    it('answers 304 for the compressed variant the client holds', async () => {
      const { headers } = await fetchRaw(port, '/app.js', { 'Accept-Encoding': 'gzip' });
      const reply = await fetchRaw(port, '/app.js', { 'Accept-Encoding': 'gzip', 'If-None-Match': String(headers.etag) });
      assert.equal(reply.status, 304);
      assert.equal(reply.headers.vary, 'Accept-Encoding');
    });
  });

  describe('compression', () => {
    it('sends gzip when accepted, with the right length and Vary', async () => {
      const reply = await fetchRaw(port, '/app.js', { 'Accept-Encoding': 'gzip' });
      assert.equal(reply.headers['content-encoding'], 'gzip');
      assert.equal(reply.headers.vary, 'Accept-Encoding');
      assert.equal(reply.headers['content-type'], 'text/javascript; charset=utf-8');
      assert.equal(reply.headers['content-length'], String(reply.body.length));
      assert.ok(reply.body.length < APP_JS.length / 10);
      assert.equal(gunzipSync(reply.body).toString(), APP_JS);
    });

    it('prefers brotli when both are accepted', async () => {
      const reply = await fetchRaw(port, '/style.css', { 'Accept-Encoding': 'gzip, deflate, br' });
      assert.equal(reply.headers['content-encoding'], 'br');
      assert.equal(reply.headers['content-length'], String(reply.body.length));
      assert.equal(brotliDecompressSync(reply.body).toString(), STYLE);
    });

    it('honours q=0 and the * wildcard', async () => {
      const cases: [string, string | undefined][] = [
        ['br;q=0, gzip', 'gzip'],
        ['gzip;q=0', undefined],
        ['gzip;q=0, br;q=0, *', undefined],
        ['*', 'br'],
        ['*, br;q=0', 'gzip'],
        ['identity', undefined],
        ['GZIP; Q=0.5', 'gzip'],
        ['gzip;q=nonsense', undefined],
      ];
      for (const [accept, encoding] of cases) {
        const reply = await fetchRaw(port, '/app.js', { 'Accept-Encoding': accept });
        assert.equal(reply.headers['content-encoding'], encoding, accept);
        assert.equal(reply.headers.vary, 'Accept-Encoding', accept);
      }
    });

    it('sends identity without Vary when compressing would not help', async () => {
      for (const path of ['/dir/file.txt', '/logo.png']) {
        const reply = await fetchRaw(port, path, { 'Accept-Encoding': 'gzip, br' });
        assert.equal(reply.headers['content-encoding'], undefined, path);
        assert.equal(reply.headers.vary, undefined, path);
      }
    });
  });

  describe('compression of a large file', () => {
    // Far past what a first answer waits to be compressed, and compressible.
    const BIG = 'a line of a large log file that compresses well\n'.repeat(8000);
    let bigRoot: string;
    before(async () => {
      bigRoot = join(dir, 'big');
      await mkdir(bigRoot);
      await writeFile(join(bigRoot, 'big.txt'), BIG);
    });

    it('is not compressed at load: sent as it is until its compression, started by the first request, is done', async () => {
      const files = await loadStaticFiles({ root: bigRoot });
      const { server, port } = await listen(files);
      try {
        const first = await fetchRaw(port, '/big.txt', { 'Accept-Encoding': 'gzip, br' });
        assert.equal(first.headers['content-encoding'], undefined);
        assert.equal(first.body.toString(), BIG);
        assert.equal(first.headers.vary, 'Accept-Encoding', 'the answer will vary');
        let later: Reply = first;
        const deadline = Date.now() + 10_000;
        while (later.headers['content-encoding'] === undefined && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          later = await fetchRaw(port, '/big.txt', { 'Accept-Encoding': 'gzip, br' });
        }
        assert.equal(later.headers['content-encoding'], 'br');
        assert.equal(brotliDecompressSync(later.body).toString(), BIG);
        assert.notEqual(later.headers.etag, first.headers.etag);
      } finally {
        await close(server);
      }
    });
  });

  describe('headers', () => {
    it('sends nosniff and no-referrer on every response', async () => {
      for (const path of ['/', '/app.js', '/style.css', '/logo.png', '/nope', '/%zz']) {
        assertSecurityHeaders((await fetchRaw(port, path)).headers);
      }
    });

    it('sends the default CSP and X-Frame-Options: DENY on HTML only', async () => {
      for (const path of ['/', '/sub/']) {
        const { headers } = await fetchRaw(port, path);
        assert.equal(headers['content-security-policy'], DEFAULT_CSP, path);
        assert.equal(headers['x-frame-options'], 'DENY', path);
      }
      for (const path of ['/app.js', '/style.css', '/nope']) {
        const { headers } = await fetchRaw(port, path);
        assert.equal(headers['content-security-policy'], undefined, path);
        assert.equal(headers['x-frame-options'], undefined, path);
      }
    });

    it('sends the configured CSP', async () => {
      const custom = await listen(await loadStaticFiles({ root, contentSecurityPolicy: "default-src 'none'" }));
      try {
        assert.equal((await fetchRaw(custom.port, '/')).headers['content-security-policy'], "default-src 'none'");
      } finally {
        await close(custom.server);
      }
    });

    it('sends no CSP when the policy is empty, and still X-Frame-Options', async () => {
      const none = await listen(await loadStaticFiles({ root, contentSecurityPolicy: '' }));
      try {
        const { headers } = await fetchRaw(none.port, '/');
        assert.equal(headers['content-security-policy'], undefined);
        assert.equal(headers['x-frame-options'], 'DENY');
      } finally {
        await close(none.server);
      }
    });

    it('makes pages and the embeddable bundles revalidate, and lets other assets be cached an hour', async () => {
      const expected: [string, string][] = [
        ['/', 'no-cache'],
        ['/index.html', 'no-cache'],
        ['/sub/index.html', 'no-cache'],
        ['/plaza.js', 'no-cache'],
        ['/plaza.mjs', 'no-cache'],
        ['/app.js', 'public, max-age=3600'],
        ['/style.css', 'no-cache'],
        ['/logo.png', 'public, max-age=3600'],
      ];
      for (const [path, cacheControl] of expected) {
        assert.equal((await fetchRaw(port, path)).headers['cache-control'], cacheControl, path);
      }
    });

    it('lets other origins load .js and .mjs, and nothing else', async () => {
      for (const path of ['/plaza.js', '/plaza.mjs', '/app.js']) {
        const { headers } = await fetchRaw(port, path, { Origin: 'https://elsewhere.example' });
        assert.equal(headers['access-control-allow-origin'], '*', path);
        assert.equal(headers['cross-origin-resource-policy'], 'cross-origin', path);
      }
      for (const path of ['/', '/style.css', '/data.json']) {
        const { headers } = await fetchRaw(port, path, { Origin: 'https://elsewhere.example' });
        assert.equal(headers['access-control-allow-origin'], undefined, path);
        assert.equal(headers['cross-origin-resource-policy'], undefined, path);
      }
    });
  });
});

describe('security', () => {
  let server: Server;
  let port: number;

  before(async () => {
    ({ server, port } = await listen(await loadStaticFiles({ root })));
  });

  after(async () => {
    await close(server);
  });

  function assertNoLeak(raw: Buffer, target: string): void {
    const text = raw.toString('latin1');
    assert.ok(!text.includes(SECRET), `${target} leaked the secret`);
    assert.ok(!text.includes(DOTFILE_SECRET), `${target} leaked a dotfile`);
    assert.ok(!text.includes('root:'), `${target} leaked /etc/passwd`);
  }

  // 404: the target decodes to a path that is simply not a key of the map (traversal, dot
  //      segments, double encoding, dotfiles, links leaving the folder).
  // 400: the target cannot be decoded once into a clean path (NUL, backslash, broken %-escape,
  //      invalid or overlong UTF-8) or is not a path at all.
  // 414: longer than 2048 characters.
  const cases: [string, number][] = [
    ['/../secret', 404],
    ['/../../../../../../etc/passwd', 404],
    ['/%2e%2e/secret', 404],
    ['/%2E%2E/%2E%2E/secret', 404],
    ['/%2e%2e%2fsecret', 404],
    ['/%252e%252e/secret', 404],
    ['/%252e%252e%252fsecret', 404],
    ['/..%5csecret', 400],
    ['/..%5Csecret', 400],
    ['/..\\secret', 400],
    ['/%00', 400],
    ['/index.html%00.js', 400],
    ['/%c0%ae%c0%ae/secret', 400],
    ['/%e0%80%ae%e0%80%ae/secret', 400],
    ['/%ed%a0%80', 400],
    ['/%ff', 400],
    ['//etc/passwd', 404],
    ['//secret', 404],
    ['/./index.html', 404],
    ['/dir/../index.html', 404],
    ['/secret', 404],
    ['/outside-link', 404],
    ['/.env', 404],
    ['/%2eenv', 404],
    ['/.hidden/x.txt', 404],
    ['/dotlink.txt', 404],
    ['http://x/../secret', 404],
    ['http://x/%2e%2e/secret', 404],
    ['http://x', 200],
    ['http://x/index.html?a=../secret', 200],
    ['*', 400],
    ['/%zz', 400],
    ['/%', 400],
    ['/%2', 400],
    [`/${'a'.repeat(5000)}`, 414],
    [`/${'%2e%2e/'.repeat(400)}secret`, 414],
  ];

  for (const [target, status] of cases) {
    it(`answers ${status} to GET ${target.length > 60 ? `${target.slice(0, 40)}… (${target.length} chars)` : target}`, async () => {
      const reply = await sendRaw(port, rawGet(target));
      assert.equal(reply.status, status);
      assertNoLeak(reply.raw, target);
      assertSecurityHeaders(reply.headers);
      if (status === 200) assert.equal(reply.body.toString(), INDEX);
      else assert.equal(reply.headers['content-type'], 'text/plain; charset=utf-8');
    });
  }

  it('serves a percent-encoded name that decodes to a real file', async () => {
    const reply = await sendRaw(port, rawGet('/%69ndex.html'));
    assert.equal(reply.status, 200);
    assert.equal(reply.body.toString(), INDEX);
  });

  it('never reaches the handler with a raw NUL in the target: Node answers 400', async () => {
    const reply = await sendRaw(port, Buffer.from(rawGet('/index.html\0.js'), 'latin1'));
    assert.equal(reply.status, 400);
    assertNoLeak(reply.raw, 'raw NUL');
  });

  it('answers 405 to a traversal attempt with another method', async () => {
    const reply = await sendRaw(port, rawGet('/../secret').replace('GET', 'POST'));
    assert.equal(reply.status, 405);
    assertNoLeak(reply.raw, 'POST /../secret');
  });
});
