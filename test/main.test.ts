/**
 * The shipped artefact: dist/server.js run as a process from a copy of dist/ with no
 * node_modules anywhere above it, the way people deploy it.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { verifyToken } from '../src/server/access/tokens.js';
import { DEFAULT_CONTENT_SECURITY_POLICY } from '../src/server/config.js';
import { connect, ROOT } from './helpers/plaza.js';

const DIST = join(ROOT, 'dist');

let copy: string;
let serverJs: string;

before(async () => {
  copy = await mkdtemp(join(tmpdir(), 'plaza-dist-'));
  await cp(DIST, copy, { recursive: true });
  serverJs = join(copy, 'server.js');
});
after(() => rm(copy, { recursive: true, force: true }));

interface Running {
  child: ChildProcessWithoutNullStreams;
  url: string;
  lines: string[];
}

/** Starts the bundle and waits for its "serving" log line, which carries the URL. */
async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Running> {
  const child = spawn(process.execPath, [serverJs, '--port', '0', '--host', '127.0.0.1', '--log-format', 'json', ...args], {
    cwd: copy,
    env: { PATH: process.env.PATH, ...env },
  });
  const lines: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no serving line; stderr/stdout: ${lines.join('\n')}`)), 5000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(line);
      const entry = JSON.parse(line) as { msg: string; url?: string };
      if (entry.msg === 'Plaza is serving' && entry.url) {
        clearTimeout(timer);
        resolve(entry.url);
      }
    });
    child.stderr.on('data', (chunk) => lines.push(String(chunk)));
    child.on('exit', (code) => reject(new Error(`exited early with ${code}: ${lines.join('\n')}`)));
  });
  return { child, url, lines };
}

describe('dist/server.js', () => {
  it('runs from a copy of dist/ without node_modules and broadcasts', async () => {
    const { child, url } = await run([]);
    try {
      const wsUrl = url.replace('http:', 'ws:');
      const [a, b] = [await connect(wsUrl), await connect(wsUrl)];
      a.send('over the wire');
      assert.equal((await b.waitFor(1))[0]!.text, 'over the wire');
      const page = await fetch(`${url}/`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
      await Promise.all([a.close(), b.close()]);
    } finally {
      child.kill('SIGKILL');
    }
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`on ${signal} closes clients with 1001 and exits 0`, async () => {
      const { child, url } = await run([]);
      const clients = await Promise.all([1, 2, 3].map(() => connect(url.replace('http:', 'ws:'))));
      const exited = once(child, 'exit');
      const started = Date.now();
      child.kill(signal);
      for (const client of clients) assert.equal(await client.closed, 1001);
      const [code] = await exited;
      assert.equal(code, 0);
      assert.ok(Date.now() - started < 5000, 'exits within a few seconds');
    });
  }

  it('prints the URL it serves even with --log-level warn', async () => {
    const { child, url, lines } = await run(['--log-level', 'warn']);
    try {
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(lines.length, 1, 'nothing but the serving line at warn');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('exits 2 with one line naming the option for an invalid value', () => {
    const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
      [['--port', 'abc'], {}, /^plaza: --port: expected an integer from 0 to 65535, got "abc"\n$/],
      [['--max-payload', '-5'], {}, /^plaza: --max-payload: expected a size in bytes/],
      [[], { PORT: '99999' }, /^plaza: PORT: expected an integer from 0 to 65535, got "99999"\n$/],
      [['--log-level', 'chatty'], {}, /^plaza: --log-level: expected one of silent, error, warn, info, debug/],
      [['--frobnicate'], {}, /^plaza: --frobnicate: unknown option; run with --help/],
      // What a newcomer typed in the first hour (issue 29), answered in the command line's words.
      [['--max-paylod', '1MiB'], {}, /^plaza: --max-paylod: unknown option; did you mean --max-payload\? Run with --help to see every option\n$/],
      [['--compress', 'yes'], {}, /^plaza: --compress: is a switch and takes no separate value \(got "yes"\): write --compress alone for true, or --compress=false\n$/],
      [['--status=yes'], {}, /^plaza: --status: expected true or false, got "yes"\n$/],
      [[], { STATUS: '1' }, /^plaza: STATUS: expected true or false, got "1"\n$/],
      [['--max-payload', '1MiB', '--max-buffered', '1MiB'], {}, /^plaza: --max-buffered: must be at least twice --max-payload \(2097152 bytes\), or no member could receive a message of the largest size; raise --max-buffered or lower --max-payload\n$/],
      [['--data-dir', '/tmp/x', '--redis', 'redis://127.0.0.1:1'], {}, /^plaza: --data-dir: a cluster keeps history in Redis: use either --data-dir \(one server\) or --redis \(a cluster\), not both\n$/],
      [['--tls-cert', '/tmp/cert.pem'], {}, /^plaza: --tls-key: TLS needs both a certificate \(--tls-cert\) and its key \(--tls-key\)\n$/],
      // Paths no request could ever match: the request's path is read with dot segments and \ resolved.
      [['--path', '/a/../b'], {}, /^plaza: --path: a request for "\/a\/..\/b" is read as "\/b" .*; write \/b instead\n$/],
      [['--path', '/a/./b'], {}, /^plaza: --path: .* is read as "\/a\/b"/],
      [['--path', '/%2e%2e'], {}, /^plaza: --path: .* is read as "\/"/],
      [['--path', '/x\\y'], {}, /^plaza: --path: .* is read as "\/x\/y"/],
    ];
    for (const [args, env, expected] of cases) {
      const result = spawnSync(process.execPath, [serverJs, ...args], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });
      assert.equal(result.status, 2, `${args.join(' ')} should exit 2`);
      assert.match(result.stderr, expected);
      assert.equal(result.stderr.trim().split('\n').length, 1);
    }
  });

  it('exits 2 saying "not writable" for a --data-dir where nothing can be created', () => {
    // Tests run as root, which chmod cannot stop; procfs refuses new entries to root too, with
    // ENOENT although the parent exists (as recursive mkdir reports on a read-only filesystem).
    const cases: Array<[string, RegExp]> = [
      [`/proc/plaza-${process.pid}/history`, /^plaza: cannot start: --data-dir \/proc\/plaza-\d+\/history is not writable \(ENOENT\)/],
      ['/proc/self/fdinfo', /^plaza: cannot start: --data-dir \/proc\/self\/fdinfo is not writable \(ENOENT\)/],
      ['/sys/kernel', /^plaza: cannot start: --data-dir \/sys\/kernel is not writable \(EACCES\)/],
    ];
    for (const [dir, expected] of cases) {
      // A timeout, because Node's recursive mkdir used to spin forever under /proc.
      const result = spawnSync(process.execPath, [serverJs, '--port', '0', '--data-dir', dir], { env: { PATH: process.env.PATH }, encoding: 'utf8', timeout: 10_000, killSignal: 'SIGKILL' });
      assert.equal(result.status, 2, `${dir}: exit ${result.status} ${result.signal ?? ''} ${result.stderr}`);
      assert.match(result.stderr, expected);
      assert.equal(result.stderr.trim().split('\n').length, 1);
    }
  });

  it('exits 2 naming the option and the file for a TLS certificate or key that is not one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'plaza-tls-cli-'));
    try {
      const pair = (name: string) => {
        const files = { cert: join(dir, `${name}-cert.pem`), key: join(dir, `${name}-key.pem`) };
        spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', files.key, '-out', files.cert, '-days', '1', '-subj', `/CN=${name}`]);
        return files;
      };
      const good = pair('good');
      const other = pair('other');
      const garbage = join(dir, 'garbage.pem');
      await writeFile(garbage, 'not a pem file\n');
      const cases: Array<[string, string, RegExp]> = [
        [garbage, good.key, /^plaza: --tls-cert: \S+garbage\.pem is not a PEM certificate \(no start line\)/],
        [good.cert, garbage, /^plaza: --tls-key: \S+garbage\.pem is not an unencrypted PEM private key/],
        [good.key, good.cert, /^plaza: --tls-cert: \S+good-key\.pem is not a PEM certificate/],
        [good.cert, other.key, /^plaza: --tls-key: \S+other-key\.pem is not the key of the certificate in \S+good-cert\.pem/],
        [join(dir, 'missing.pem'), good.key, /^plaza: --tls-cert: cannot read \S+missing\.pem \(ENOENT\)/],
      ];
      for (const [cert, key, expected] of cases) {
        const result = spawnSync(process.execPath, [serverJs, '--port', '0', '--tls-cert', cert, '--tls-key', key], { env: { PATH: process.env.PATH }, encoding: 'utf8', timeout: 10_000, killSignal: 'SIGKILL' });
        assert.equal(result.status, 2, `${cert} ${key}: ${result.stderr}`);
        assert.match(result.stderr, expected);
        assert.equal(result.stderr.trim().split('\n').length, 1);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('prints every option with its default on --help', () => {
    const result = spawnSync(process.execPath, [serverJs, '--help'], { encoding: 'utf8' });
    assert.equal(result.status, 0);
    for (const flag of ['--port', '--host', '--exclude-sender', '--max-payload', '--log-level']) assert.match(result.stdout, new RegExp(flag));
    assert.match(result.stdout, /\[default: 65536\]/);
    // The long flags that used to run into their descriptions, and values that used to say <value>.
    assert.match(result.stdout, /\n  --max-rooms-per-connection <n>\n +rooms one connection may be in \[default: 100\]\n/);
    assert.match(result.stdout, /\n  --log-level <silent\|error\|warn\|info\|debug>\n/);
    assert.match(result.stdout, /\n  --log-format <json\|pretty> +json lines, or pretty for people \[default: pretty on a terminal, else json\]\n/);
    // The rules a newcomer could not find in --help (issue 29): the floor of --max-buffered and
    // what happens at --max-rooms.
    assert.match(result.stdout, /\n  --max-buffered <size> +bytes waiting for one client before it is dropped with 1013; at least twice --max-payload, and grows with it when not set \[default: 1048576\]\n/);
    assert.match(result.stdout, /\n  --max-rooms <n> +rooms tracked at once; past it the least recently used room nobody is in is forgotten \(its history too\), and when every room has members a new one gets server_full \[default: 10000\]\n/);
  });

  it('reads --max-payload 1MB as 1,000,000 bytes: a 1,000,001-byte message closes with 1009', async () => {
    const { child, url } = await run(['--max-payload', '1MB']);
    try {
      const [a, b] = [await connect(url.replace('http:', 'ws:')), await connect(url.replace('http:', 'ws:'))];
      a.send('x'.repeat(1_000_000));
      assert.equal((await b.waitFor(1))[0]!.data.length, 1_000_000);
      a.send('x'.repeat(1_000_001));
      assert.equal(await a.closed, 1009);
      await b.close();
    } finally {
      child.kill('SIGKILL');
    }
  });

  describe('token', () => {
    const SECRET = 'a-secret-for-the-token-subcommand-0123456789';
    const token = (args: string[], env: NodeJS.ProcessEnv = { AUTH_SECRET: SECRET }) =>
      spawnSync(process.execPath, [serverJs, 'token', ...args], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });

    it('mints a token the server accepts, with the flags given in either form', () => {
      const result = token(['--sub', 'ada', '--name=Ada L.', '--rooms', 'lobby,team-*', '--ttl', '90s']);
      assert.equal(result.status, 0, result.stderr);
      const grant = verifyToken(result.stdout.trim(), SECRET);
      assert.equal(grant.userId, 'ada');
      assert.equal(grant.name, 'Ada L.');
      assert.ok(grant.mayJoin('team-7') && grant.mayJoin('lobby') && !grant.mayJoin('admins'));
      const left = grant.expiresAt! - Date.now();
      assert.ok(left > 80_000 && left <= 90_000, `expires in 90 s, got ${left} ms`);
      assert.equal(token(['--sub', 'bob', `--auth-secret=${SECRET}`], {}).status, 0);
    });

    it('prints its usage on --help and -h', () => {
      for (const flag of ['--help', '-h']) {
        const result = token([flag]);
        assert.equal(result.status, 0);
        assert.match(result.stdout, /^Usage: node dist\/server\.js token --sub <user id>/);
      }
    });

    it('exits 2 with one line that names the problem, by the same rules as the server', () => {
      const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
        [['--sub'], { AUTH_SECRET: SECRET }, /^plaza token: --sub: needs a value\n$/],
        [['--sub', 'ada', '--frobnicate'], { AUTH_SECRET: SECRET }, /^plaza token: --frobnicate: unknown option/],
        [['--sub', 'ada', 'extra'], { AUTH_SECRET: SECRET }, /^plaza token: "extra": unexpected argument/],
        [['--sub', 'ada', '--ttl', 'soon'], { AUTH_SECRET: SECRET }, /^plaza token: --ttl: expected a duration/],
        [['--sub', 'ada'], {}, /^plaza token: --auth-secret: set AUTH_SECRET/],
        [['--rooms', '*'], { AUTH_SECRET: SECRET }, /^plaza token: --sub: the user id is required/],
      ];
      for (const [args, env, expected] of cases) {
        const result = token(args, env);
        assert.equal(result.status, 2, `${args.join(' ')} should exit 2`);
        assert.match(result.stderr, expected);
        assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      }
    });
  });

  it('refuses to start with a --public-dir past its limit, naming --public-dir (no other flag sets it)', async () => {
    const site = await mkdtemp(join(tmpdir(), 'plaza-crowded-'));
    try {
      await Promise.all(Array.from({ length: 1001 }, (_, i) => writeFile(join(site, `f${i}.txt`), '')));
      const result = spawnSync(process.execPath, [serverJs, '--port', '0', '--public-dir', site], { env: { PATH: process.env.PATH }, encoding: 'utf8', timeout: 10_000 });
      assert.equal(result.status, 1, result.stderr);
      assert.match(result.stderr, /^plaza: cannot start: static folder .* holds more than 1000 files; --public-dir serves at most 1000 files and 52428800 bytes, from memory/);
      assert.doesNotMatch(result.stderr, /maxFiles|maxBytes/);
      assert.equal(result.stderr.trim().split('\n').length, 1);
    } finally {
      await rm(site, { recursive: true, force: true });
    }
  });

  it('lays --public-dir over the built-in files and sends the --content-security-policy given', async () => {
    const site = await mkdtemp(join(tmpdir(), 'plaza-site-'));
    await writeFile(join(site, 'index.html'), '<!doctype html><title>seed</title><script>document.title = "ran"</script>');
    await writeFile(join(site, 'extra.css'), 'body { color: red }');
    const policy = "default-src 'self'; script-src 'self' 'unsafe-inline'";
    try {
      for (const [args, expectedPolicy] of [
        [['--public-dir', site], DEFAULT_CONTENT_SECURITY_POLICY],
        [['--public-dir', site, '--content-security-policy', policy], policy],
        [['--public-dir', site, '--content-security-policy='], null],
      ] as const) {
        const { child, url } = await run([...args]);
        try {
          const page = await fetch(`${url}/`);
          assert.match(await page.text(), /<title>seed<\/title>/, 'the file of the same name wins');
          assert.equal(page.headers.get('content-security-policy'), expectedPolicy);
          assert.equal((await fetch(`${url}/extra.css`)).status, 200);
          const client = await fetch(`${url}/plaza.js`);
          assert.equal(client.status, 200, 'the built-in client stays');
          assert.match(await client.text(), /Plaza/);
          assert.equal((await fetch(`${url}/chat.js`)).status, 200);
        } finally {
          child.kill('SIGKILL');
        }
      }
    } finally {
      await rm(site, { recursive: true, force: true });
    }
  });

  it('exits 1 with a clear message when the port is taken', async () => {
    const { child, url } = await run([]);
    try {
      const port = new URL(url).port;
      const result = spawnSync(process.execPath, [serverJs, '--port', port, '--host', '127.0.0.1'], { encoding: 'utf8' });
      assert.equal(result.status, 1);
      assert.match(result.stderr, new RegExp(`plaza: cannot start: port ${port} is already in use`));
    } finally {
      child.kill('SIGKILL');
    }
  });
});
