import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, DEFAULTS, helpText, OPTION_SPECS, parseCommandLine, resolveOptions } from '../src/server/config.js';

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
      const env = { PORT: '9000', EXCLUDE_SENDER: '1', MAX_PAYLOAD: '64KiB', LOG_LEVEL: 'warn' };
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
  });

  describe('helpText', () => {
    it('lists every flag with its environment variable', () => {
      const text = helpText();
      for (const spec of OPTION_SPECS) {
        assert.match(text, new RegExp(`${spec.flag}\\b`));
        assert.match(text, new RegExp(`env ${spec.env}\\b`));
      }
      assert.match(text, /--port <value> +TCP port \(0 picks a free port\) \[default: 8080\]/);
    });
  });
});
