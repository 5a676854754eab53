import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { helpText, parseCommandLine, readFlags } from '../src/server/command-line.js';
import { MAX_WELCOME } from '../src/server/bounds.js';
import { ConfigError, DEFAULT_CONTENT_SECURITY_POLICY, DEFAULTS, OPTION_SPECS, resolveOptions } from '../src/server/config.js';

function serve(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const result = parseCommandLine(argv, env);
  assert.equal(result.command, 'serve');
  return result.options;
}

describe('config', () => {
  describe('resolveOptions', () => {
    it('fills every option from DEFAULTS', () => {
      assert.deepEqual(resolveOptions({}), { ...DEFAULTS });
      assert.equal(DEFAULTS.port, 8080);
      assert.equal(DEFAULTS.maxPayload, 65536);
      assert.equal(DEFAULTS.excludeSender, false);
    });

    it('keeps --max-buffered at least twice --max-payload: grown when not set, refused when set too low', () => {
      assert.equal(resolveOptions({ maxPayload: 1024 * 1024 }).maxBuffered, 2 * 1024 * 1024);
      assert.equal(resolveOptions({ maxPayload: 1024 }).maxBuffered, DEFAULTS.maxBuffered);
      assert.throws(() => resolveOptions({ maxPayload: 1024 * 1024, maxBuffered: 1024 * 1024 }), {
        message: 'maxBuffered: must be at least twice `maxPayload` (2097152 bytes), or no member could receive a message of the largest size; raise `maxBuffered` or lower `maxPayload`',
      });
      // On the command line, every option the message names is named by its flag.
      assert.throws(() => serve(['--max-payload', '1MiB', '--max-buffered', '1MiB']), {
        message: '--max-buffered: must be at least twice --max-payload (2097152 bytes), or no member could receive a message of the largest size; raise --max-buffered or lower --max-payload',
      });
    });

    it('throws a ConfigError naming the option and what is allowed', () => {
      assert.throws(() => resolveOptions({ port: 70000 }), {
        name: 'ConfigError',
        code: 'PLAZA_ERR_CONFIG',
        message: 'port: expected an integer from 0 to 65535, got 70000',
      });
      assert.throws(() => resolveOptions({ maxPayload: 0 }), /maxPayload: expected a size in bytes/);
      assert.throws(() => resolveOptions({ logLevel: 'loud' as never }), /logLevel: expected one of silent, error, warn, info, debug/);
      assert.throws(() => resolveOptions({ excludeSender: 'yes' as never }), /excludeSender: expected true or false/);
    });

    it('rejects unknown options, so typos do not pass silently', () => {
      assert.throws(() => resolveOptions({ prot: 1 } as never), /prot: unknown option; known options are port, host/);
    });

    it('ignores undefined values instead of overriding defaults', () => {
      assert.equal(resolveOptions({ port: undefined }).port, 8080);
    });

    it('defaults to the strict Content-Security-Policy and takes another one-line policy or none', () => {
      assert.equal(DEFAULTS.contentSecurityPolicy, DEFAULT_CONTENT_SECURITY_POLICY);
      assert.match(DEFAULT_CONTENT_SECURITY_POLICY, /script-src 'self';/);
      assert.equal(resolveOptions({ contentSecurityPolicy: "script-src 'unsafe-inline'" }).contentSecurityPolicy, "script-src 'unsafe-inline'");
      assert.equal(resolveOptions({ contentSecurityPolicy: '' }).contentSecurityPolicy, '');
      assert.throws(() => resolveOptions({ contentSecurityPolicy: "default-src 'self'\r\nX-Injected: 1" }), {
        code: 'PLAZA_ERR_CONFIG',
        message: /^contentSecurityPolicy: must be one line/,
      });
    });

    it(`bounds --welcome at ${MAX_WELCOME} characters`, () => {
      assert.equal(resolveOptions({ welcome: 'x'.repeat(MAX_WELCOME) }).welcome.length, MAX_WELCOME);
      assert.throws(() => resolveOptions({ welcome: 'x'.repeat(MAX_WELCOME + 1) }), /welcome: expected a string of at most 4096 characters/);
      assert.throws(() => serve(['--welcome', 'x'.repeat(MAX_WELCOME + 1)]), /^ConfigError: --welcome: expected a string of at most 4096 characters/);
    });
  });

  describe('parseCommandLine', () => {
    it('reads flags in both --flag value and --flag=value forms', () => {
      const options = serve(['--port', '0', '--host=127.0.0.1', '--max-payload', '1MiB', '--log-level=debug']);
      assert.equal(options.port, 0);
      assert.equal(options.host, '127.0.0.1');
      assert.equal(options.maxPayload, 1024 * 1024);
      assert.equal(options.logLevel, 'debug');
    });

    it('treats a bare boolean flag as true', () => {
      assert.equal(serve(['--exclude-sender']).excludeSender, true);
      assert.equal(serve(['--exclude-sender', '--port', '1']).excludeSender, true);
      assert.equal(serve(['--exclude-sender=false']).excludeSender, false);
    });

    it('reads the environment, and flags win over it', () => {
      const env = { PORT: '9000', EXCLUDE_SENDER: 'true', MAX_PAYLOAD: '64KiB', LOG_LEVEL: 'warn' };
      const fromEnv = serve([], env);
      assert.equal(fromEnv.port, 9000);
      assert.equal(fromEnv.excludeSender, true);
      assert.equal(fromEnv.maxPayload, 65536);
      assert.equal(fromEnv.logLevel, 'warn');
      assert.equal(serve(['--port', '9001'], env).port, 9001);
    });

    it('names the flag or variable in errors', () => {
      assert.throws(() => serve(['--port', 'abc']), { message: '--port: expected an integer from 0 to 65535, got "abc"' });
      assert.throws(() => serve(['--port', '65536']), /^ConfigError: --port: expected an integer from 0 to 65535, got "65536"$/);
      assert.throws(() => serve([], { PORT: '-1' }), { message: 'PORT: expected an integer from 0 to 65535, got "-1"' });
      assert.throws(() => serve(['--max-payload', '12 parsecs']), /--max-payload: expected a size in bytes/);
      assert.throws(() => serve(['--log-level', 'loud']), { message: '--log-level: expected one of silent, error, warn, info, debug, got "loud"' });
      assert.throws(() => serve(['--port']), { message: '--port: needs a value: an integer from 0 to 65535' });
      assert.throws(() => serve(['--nope']), (error: unknown) => error instanceof ConfigError && /--nope: unknown option; run with --help/.test(error.message));
    });

    it('recognises --help and -h', () => {
      assert.deepEqual(parseCommandLine(['--help'], {}), { command: 'help' });
      assert.deepEqual(parseCommandLine(['--port', '1', '-h'], {}), { command: 'help' });
    });

    it('reads KB/MB/GB as powers of 1000 and KiB/MiB/GiB as powers of 1024, in any case', () => {
      assert.equal(serve(['--max-payload', '1MB']).maxPayload, 1_000_000);
      assert.equal(serve(['--max-payload', '1mb']).maxPayload, 1_000_000);
      assert.equal(serve(['--max-payload', '64KB']).maxPayload, 64_000);
      assert.equal(serve(['--max-payload', '64KiB']).maxPayload, 65_536);
      assert.equal(serve(['--max-payload', '1MiB']).maxPayload, 1_048_576);
      assert.equal(serve(['--max-payload', '100 B']).maxPayload, 100);
      assert.equal(serve([], { HISTORY_MAX_BYTES: '1GB' }).historyMaxBytes, 1_000_000_000);
      assert.equal(serve([], { HISTORY_MAX_BYTES: '1GiB' }).historyMaxBytes, 1024 ** 3);
    });

    it('refuses a bare K, M or G, which could mean either, and says which suffixes exist', () => {
      for (const text of ['64K', '1m', '1G', '1.5MB']) {
        assert.throws(() => serve(['--max-payload', text]), {
          message: `--max-payload: expected a size in bytes from 1 to 104857600: a number, or one with KiB/MiB/GiB (×1024) or KB/MB/GB (×1000), e.g. 65536, 64KiB, 1MB, got ${JSON.stringify(text)}`,
        });
      }
    });

    it('takes a boolean alone or as --flag=value, never the next word', () => {
      assert.equal(serve(['--status']).status, true);
      assert.equal(serve(['--status=false']).status, false);
      assert.equal(serve(['--status=FALSE', '--port=1']).status, false);
      assert.equal(serve(['--status=true']).status, true);
      // The word after a switch is named as what it most likely was: a value for the switch.
      assert.throws(() => serve(['--status', 'false']), { message: '--status: is a switch and takes no separate value (got "false"): write --status alone for true, or --status=false' });
      assert.throws(() => serve(['--port', '1', '--compress', 'yes']), { message: '--compress: is a switch and takes no separate value (got "yes"): write --compress alone for true, or --compress=false' });
    });

    it('takes only true or false for a boolean, from a flag or the environment', () => {
      for (const text of ['yes', 'no', '1', '0', 'on', 'off', '']) {
        assert.throws(() => serve([`--status=${text}`]), { message: `--status: expected true or false, got ${JSON.stringify(text)}` });
      }
      for (const text of ['yes', '1', 'off']) {
        assert.throws(() => serve([], { COMPRESS: text }), { message: `COMPRESS: expected true or false, got ${JSON.stringify(text)}` });
      }
      assert.equal(serve([], { COMPRESS: 'true' }).compress, true);
    });

    it('suggests the flag a mistyped one is closest to, and only when it is close', () => {
      const cases: Array<[string, string | undefined]> = [
        ['--max-paylod', '--max-payload'],
        ['--prot', '--port'],
        ['--Port', '--port'],
        ['--webhook-secrets', '--webhook-secret'],
        ['--maxpayload', '--max-payload'],
        ['--frobnicate', undefined],
        ['--tls', undefined],
      ];
      for (const [typed, suggestion] of cases) {
        assert.throws(() => serve([typed, '1']), {
          message: suggestion
            ? `${typed}: unknown option; did you mean ${suggestion}? Run with --help to see every option`
            : `${typed}: unknown option; run with --help to see every option`,
        });
      }
    });

    it('refuses a stray word, a flag where a value belongs, and short flags it does not know', () => {
      assert.throws(() => serve(['8080']), /^ConfigError: "8080": unexpected argument/);
      assert.throws(() => serve(['--port', '--host', 'x']), { message: '--port: needs a value: an integer from 0 to 65535' });
      assert.throws(() => serve(['-p', '1']), { message: '-p: unknown option; run with --help to see every option' });
      // A value that starts with a dash is fine when it is not a flag (the range check refuses it).
      assert.throws(() => serve(['--port', '-1']), { message: '--port: expected an integer from 0 to 65535, got "-1"' });
      assert.equal(serve(['--default-room=-x-']).defaultRoom, '-x-');
    });
  });

  describe('readFlags', () => {
    const rules = [{ flag: '--sub' }, { flag: '--quiet', boolean: true }];
    it('returns the last value of each flag, and help for --help or -h anywhere', () => {
      assert.deepEqual(readFlags(['--sub', 'a', '--sub=b', '--quiet'], rules), { help: false, values: new Map([['--sub', 'b'], ['--quiet', 'true']]) });
      assert.equal(readFlags(['--sub', 'a', '-h'], rules).help, true);
      assert.equal(readFlags(['--help', '--nope'], rules).help, true);
    });
    it('names what is wrong', () => {
      assert.throws(() => readFlags(['--sub'], rules), { message: '--sub: needs a value' });
      assert.throws(() => readFlags(['--nope'], rules), { message: '--nope: unknown option; run with --help to see every option' });
    });
  });

  describe('helpText', () => {
    it('lists every flag with its environment variable', () => {
      const text = helpText();
      for (const spec of OPTION_SPECS) {
        assert.match(text, new RegExp(`${spec.flag}\\b`));
        assert.match(text, new RegExp(`env ${spec.env}\\b`));
      }
      assert.match(text, /--port <port> +TCP port \(0 picks a free port\) \[default: 8080\]/);
    });

    it('never runs a flag into its description: at least two spaces, or the description on the next line', () => {
      const lines = helpText().split('\n');
      for (const spec of OPTION_SPECS) {
        const i = lines.findIndex((line) => line.startsWith(`  ${spec.flag} `) || line === `  ${spec.flag}` || line.startsWith(`  ${spec.flag}  `));
        assert.ok(i >= 0, `${spec.flag} has a line`);
        const line = lines[i]!;
        const rest = line.slice(2 + spec.flag.length).replace(/^ <[^>]+>/, '');
        if (rest === '') assert.match(lines[i + 1]!, new RegExp(`^ {20,}${spec.help.slice(0, 10).replace(/[()[\]\\^$.|?*+]/g, '\\$&')}`));
        else assert.match(rest, /^ {2,}\S/, `${spec.flag}: ${JSON.stringify(line)}`);
      }
    });

    it('shows the allowed values of a choice and placeholders that say what a value is', () => {
      const text = helpText();
      assert.match(text, /--log-level <silent\|error\|warn\|info\|debug>\n +least severe log level written \[default: info\]/);
      assert.match(text, /--log-format <json\|pretty> +json lines, or pretty for people \[default: pretty on a terminal, else json\]/);
      assert.doesNotMatch(text, /\(default: .*\) \[default: /, 'one default per option');
      assert.match(text, /--heartbeat-ms <ms> /);
      assert.match(text, /--max-payload <size> /);
      assert.match(text, /KB\/MB\/GB \(×1000\): 64KiB is 65536 bytes, 1MB is 1000000/);
      assert.doesNotMatch(text, /<value>/);
    });
  });
});
