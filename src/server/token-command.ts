/**
 * `node dist/server.js token --sub alice --rooms 'lobby,team-*' --ttl 1h`: mints a token for
 * trying auth out. Real deployments sign tokens in their own backend with the same secret.
 * Flags follow the server's own rules (readFlags in config.ts).
 */
import { parseDuration, signToken, type TokenClaims } from './access/tokens.js';
import { readFlags } from './command-line.js';
import { ConfigError } from './config.js';

const USAGE = `Usage: node dist/server.js token --sub <user id> [--name <display name>] [--rooms <list>] [--publish <list>] [--ttl 1h] [--auth-secret <secret> | env AUTH_SECRET]
  --rooms and --publish are comma lists of room names, prefix-* patterns or * (default --rooms: *).
  --ttl is a duration: 90s, 30m, 1h, 7d, or plain seconds (default 1h).
  The token goes on the WebSocket URL as ?token=…, or on the chat page's address as #token=….
`;

const FLAGS = ['--sub', '--name', '--rooms', '--publish', '--ttl', '--auth-secret'].map((flag) => ({ flag }));

export function mintToken(argv: readonly string[], env: NodeJS.ProcessEnv): string {
  const { help, values } = readFlags(argv, FLAGS);
  if (help) return USAGE;
  const secret = values.get('--auth-secret') ?? env.AUTH_SECRET ?? '';
  if (secret.length < 32) throw new ConfigError('--auth-secret', 'set AUTH_SECRET (or --auth-secret) to the server\'s secret, at least 32 characters');
  const sub = values.get('--sub');
  if (!sub) throw new ConfigError('--sub', 'the user id is required');
  const ttl = parseDuration(values.get('--ttl') ?? '1h');
  if (ttl === undefined || ttl <= 0) throw new ConfigError('--ttl', 'expected a duration such as 90s, 30m, 1h or 7d');
  const now = Math.floor(Date.now() / 1000);
  const claims: TokenClaims = { sub, iat: now, exp: now + ttl, rooms: values.get('--rooms') ?? '*' };
  const name = values.get('--name');
  if (name) claims.name = name;
  const publish = values.get('--publish');
  if (publish) claims.publish = publish;
  return `${signToken(claims, secret)}\n`;
}
