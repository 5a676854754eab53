/**
 * `--redis` in its three forms (one Redis, Sentinel, Redis Cluster): read once by config.ts,
 * refused with a message that says what to change, and never echoed with its passwords.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCommandLine } from '../src/server/command-line.js';
import { ConfigError, resolveOptions } from '../src/server/config.js';
import { parseRedisTarget, redactRedisUrl } from '../src/server/redis-target.js';

describe('--redis', () => {
  describe('parseRedisTarget', () => {
    it('takes one Redis as a redis:// or rediss:// URL, passed on as written', () => {
      assert.deepEqual(parseRedisTarget('redis://127.0.0.1:6379'), { kind: 'single', url: 'redis://127.0.0.1:6379' });
      assert.deepEqual(parseRedisTarget('rediss://:pw@cache.example.com:6380/2'), { kind: 'single', url: 'rediss://:pw@cache.example.com:6380/2' });
    });

    it('takes a Redis Cluster as seed addresses, default port 6379, IPv6 in brackets', () => {
      assert.deepEqual(parseRedisTarget('redis+cluster://10.0.0.1:7000,10.0.0.2,[::1]:7002'), {
        kind: 'cluster',
        nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 6379 }, { host: '::1', port: 7002 }],
      });
      assert.deepEqual(parseRedisTarget('redis+cluster://plaza:p%40ss%2Fw0rd@h1:7000'), { kind: 'cluster', nodes: [{ host: 'h1', port: 7000 }], username: 'plaza', password: 'p@ss/w0rd' });
    });

    it('takes Sentinels, a master name, a database and the Sentinels\' own password', () => {
      assert.deepEqual(parseRedisTarget('redis+sentinel://:data%3Apw@s1,s2:26380/mymaster/3?sentinelPassword=s%26p'), {
        kind: 'sentinel',
        sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }],
        name: 'mymaster',
        db: 3,
        password: 'data:pw',
        sentinelPassword: 's&p',
      });
      assert.deepEqual(parseRedisTarget('redis+sentinel://s1/mymaster'), { kind: 'sentinel', sentinels: [{ host: 's1', port: 26379 }], name: 'mymaster', db: 0 });
    });

    it('refuses what it cannot connect to, saying what to write instead', () => {
      const refused: Array<[string, RegExp]> = [
        ['mysql://db:3306', /expected redis:\/\/host:port \(one Redis\), redis\+sentinel:\/\/.* or redis\+cluster:\/\//],
        ['redis://', /names no host/],
        ['redis+cluster://', /needs at least one host, e.g\. redis\+cluster:\/\/10\.0\.0\.1:7000/],
        ['redis+cluster://h1:7000/2', /a Redis Cluster has only database 0/],
        ['redis+cluster://h1?x=1', /takes no parameters/],
        ['redis+cluster://h1:99999', /host 1 of 1 is not a host\[:port\]/],
        ['redis+sentinel://s1:26379', /needs the master name after the hosts/],
        ['redis+sentinel://s1/mymaster/x', /must be a number/],
        ['redis+sentinel://s1/mymaster?password=x', /unknown parameter "password"; the only one is sentinelPassword/],
        ['rediss+cluster://h1', /TLS to a Redis Cluster or Sentinel set is not supported/],
        ['redis+sentinel://:%zz@s1/m', /not valid percent-encoding/],
        [`redis+cluster://${Array.from({ length: 33 }, (_, i) => `h${i}`).join(',')}`, /lists 33 hosts; name at most 32/],
      ];
      for (const [url, message] of refused) assert.throws(() => parseRedisTarget(url), message, url);
    });

    it('does not echo a password typed without percent-encoding in its error', () => {
      assert.throws(() => parseRedisTarget('redis+cluster://:zq/9x@h1'), (error: Error) => !/zq|9x/.test(error.message) && /host 1 of 1/.test(error.message));
    });
  });

  it('is validated once by resolveOptions and named as the flag on the command line', () => {
    assert.equal(resolveOptions({ redis: 'redis+cluster://h1:7000' }).redis, 'redis+cluster://h1:7000');
    assert.throws(() => resolveOptions({ redis: 'redis+cluster://' }), (error: unknown) => error instanceof ConfigError && error.option === 'redis');
    assert.throws(() => parseCommandLine(['--redis', 'redis+sentinel://:topsecret@s1'], {}), (error: Error) => /^--redis: needs the master name/.test(error.message) && !error.message.includes('topsecret'));
    assert.throws(() => parseCommandLine([], { REDIS_URL: 'redis+cluster://h1/5' }), /--redis: a Redis Cluster has only database 0/);
  });

  it('keeps passwords out of what it logs', () => {
    assert.equal(redactRedisUrl('redis://:secret@h:6379/0'), 'redis://:***@h:6379/0');
    assert.equal(redactRedisUrl('redis+cluster://user:se@cret@h1,h2'), 'redis+cluster://user:***@h1,h2');
    assert.equal(redactRedisUrl('redis+sentinel://:a@s1,s2/m?sentinelPassword=b'), 'redis+sentinel://:***@s1,s2/m?sentinelPassword=***');
    assert.equal(redactRedisUrl('redis://user@h'), 'redis://user@h');
    assert.equal(redactRedisUrl('redis+cluster://h1:7000'), 'redis+cluster://h1:7000');
  });
});
