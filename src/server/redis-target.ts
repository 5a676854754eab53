/**
 * What `--redis` names: one Redis, a Sentinel set or a Redis Cluster, read once from its URL
 * (config.ts validates with it; the Redis backplane connects to what it returns), and the URL
 * with its passwords hidden for logs and /readyz.
 */

/** One address of a Redis server or Sentinel. */
export interface RedisAddress {
  host: string;
  port: number;
}

/** What `--redis` names, parsed once; the cluster backplane connects to it. */
export type RedisTarget =
  | { kind: 'single'; url: string }
  | { kind: 'sentinel'; sentinels: RedisAddress[]; name: string; db: number; username?: string; password?: string; sentinelPassword?: string }
  | { kind: 'cluster'; nodes: RedisAddress[]; username?: string; password?: string };

/** Seed addresses a cluster or Sentinel URL may list; more would only slow start-up. */
const MAX_REDIS_SEEDS = 32;

/**
 * Reads `--redis` in one of three forms (user name and password optional, percent-encoded):
 * - `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS: one Redis;
 * - `redis+sentinel://[[user]:password@]s1[:26379],s2…/<master name>[/db][?sentinelPassword=…]`:
 *   the master that the Sentinels name, followed through failovers; the password is the data
 *   nodes', `sentinelPassword` the Sentinels' own (if they have one);
 * - `redis+cluster://[[user]:password@]h1[:6379],h2…`: a Redis Cluster found from these seeds.
 * @throws Error saying what to change (without echoing the password).
 */
export function parseRedisTarget(url: string): RedisTarget {
  const scheme = /^([a-z+]+):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'redis' || scheme === 'rediss') {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new Error(`expected a URL such as redis://127.0.0.1:6379; check the host, the port and that a password's special characters are percent-encoded`);
    }
    if (!parsed.hostname) throw new Error('names no host; write redis://host:port, e.g. redis://127.0.0.1:6379');
    return { kind: 'single', url };
  }
  if (scheme === 'rediss+sentinel' || scheme === 'rediss+cluster') {
    throw new Error(`TLS to a Redis Cluster or Sentinel set is not supported; use ${scheme.slice(0, 5)}+${scheme.split('+')[1]}:// on a private network, or rediss:// to one Redis`);
  }
  if (scheme !== 'redis+sentinel' && scheme !== 'redis+cluster') {
    throw new Error('expected redis://host:port (one Redis), redis+sentinel://s1:26379,s2:26379/mymaster (Sentinel) or redis+cluster://h1:7000,h2:7001 (Redis Cluster)');
  }
  const rest = url.slice(scheme.length + 3);
  const at = rest.lastIndexOf('@', rest.search(/[/?]|$/));
  const userinfo = at === -1 ? '' : rest.slice(0, at);
  const afterUser = rest.slice(at + 1);
  const [hostPart = '', pathPart = ''] = splitOnce(afterUser.split('?')[0]!, '/');
  const query = new URLSearchParams(afterUser.includes('?') ? afterUser.slice(afterUser.indexOf('?') + 1) : '');
  const defaultPort = scheme === 'redis+sentinel' ? 26379 : 6379;
  const addresses = hostPart.split(',').filter((item) => item !== '').map((item, i, all) => parseAddress(item, defaultPort, `host ${i + 1} of ${all.length}`));
  if (addresses.length === 0) throw new Error(`${scheme}:// needs at least one host, e.g. ${scheme === 'redis+sentinel' ? 'redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster' : 'redis+cluster://10.0.0.1:7000,10.0.0.2:7000'}`);
  if (addresses.length > MAX_REDIS_SEEDS) throw new Error(`lists ${addresses.length} hosts; name at most ${MAX_REDIS_SEEDS} (a few are enough to find the rest)`);
  const credentials = parseUserinfo(userinfo);
  if (scheme === 'redis+cluster') {
    if (pathPart !== '' && pathPart !== '0') throw new Error('a Redis Cluster has only database 0: remove the path after the hosts');
    if ([...query.keys()].length > 0) throw new Error(`redis+cluster:// takes no parameters (got ${[...query.keys()].join(', ')})`);
    return { kind: 'cluster', nodes: addresses, ...credentials };
  }
  const [name = '', dbText = '0'] = splitOnce(pathPart, '/');
  if (!/^[\w.-]{1,128}$/.test(name)) throw new Error('needs the master name after the hosts, as the Sentinels know it: redis+sentinel://s1:26379,s2:26379/mymaster');
  if (!/^\d{1,5}$/.test(dbText || '0')) throw new Error('the database after the master name must be a number, e.g. /mymaster/0');
  for (const key of query.keys()) if (key !== 'sentinelPassword') throw new Error(`unknown parameter "${key}"; the only one is sentinelPassword`);
  const sentinelPassword = query.get('sentinelPassword') ?? undefined;
  return { kind: 'sentinel', sentinels: addresses, name, db: Number(dbText || '0'), ...credentials, ...(sentinelPassword && { sentinelPassword }) };
}

function splitOnce(text: string, separator: string): [string, string] {
  const i = text.indexOf(separator);
  return i === -1 ? [text, ''] : [text.slice(0, i), text.slice(i + 1)];
}

/** `which` names the address in errors: the text itself might hold a password typed without percent-encoding. */
function parseAddress(text: string, defaultPort: number, which: string): RedisAddress {
  const match = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d{1,5}))?$/i.exec(text);
  const port = match?.[2] === undefined ? defaultPort : Number(match[2]);
  if (!match || port < 1 || port > 65535) throw new Error(`${which} is not a host[:port]: write a host name or address and a port from 1 to 65535, IPv6 in brackets, and percent-encode a password's special characters`);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

function parseUserinfo(userinfo: string): { username?: string; password?: string } {
  if (userinfo === '') return {};
  try {
    const [user, password] = splitOnce(userinfo, ':');
    return { ...(user && { username: decodeURIComponent(user) }), ...(userinfo.includes(':') && { password: decodeURIComponent(password) }) };
  } catch {
    throw new Error('the user name or password is not valid percent-encoding; encode special characters, e.g. %40 for @');
  }
}

/** `url` with its passwords replaced by ***, for logs and /readyz reasons. */
export function redactRedisUrl(url: string): string {
  return url
    .replace(/^([a-z+]+:\/\/[^:@/]*:).*@/i, '$1***@')
    .replace(/([?&]sentinelPassword=)[^&]*/i, '$1***');
}

