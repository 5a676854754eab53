/**
 * Plaza's options: one interface, one DEFAULTS object, one validation pass.
 * The command line and the environment are parsed into the same shape and validated by the
 * same function, so `createPlaza({...})` and `node dist/server.js --flag` can never disagree.
 */

import { FORWARDED_HEADERS, parseTrustedProxies, type ForwardedHeader } from './client-address.js';
import { validateRoomName } from './requests.js';

export type LogLevel = 'silent' | 'error' | 'warn' | 'info' | 'debug';
export type LogFormat = 'json' | 'pretty';

export interface PlazaOptions {
  /** TCP port to listen on; 0 picks a free one. @default 8080 */
  port: number;
  /** Interface to bind. Empty means every interface (IPv6 and IPv4 where available). @default '' */
  host: string;
  /** Folder of the built chat page and client (dist/public); mapped once at start-up. @default '' (no static files) */
  publicDir: string;
  /** Do not echo a message back to the connection that sent it. @default false */
  excludeSender: boolean;
  /** Largest WebSocket message accepted, in bytes; a larger one closes its sender with 1009. @default 65536 */
  maxPayload: number;
  /** Least severe log level written. @default 'info' */
  logLevel: LogLevel;
  /** JSON lines for machines or one readable line per event for people. @default 'pretty' on a terminal, else 'json' */
  logFormat: LogFormat;
  /** The room plain WebSocket clients talk in (v1 clients join it by name). @default 'lobby' */
  defaultRoom: string;
  /** Messages kept per room for late joiners and recovery; 0 keeps none. @default 100 */
  historySize: number;
  /** Messages older than this (ms) leave history. @default 3600000 (1 hour) */
  historyTtl: number;
  /** Bytes of history kept across all rooms; the oldest messages go first past it. @default 67108864 (64 MiB) */
  historyMaxBytes: number;
  /** Rooms tracked at once (with members or history); joins past it get `server_full`. @default 10000 */
  maxRooms: number;
  /** Rooms one connection may be in at once. @default 100 */
  maxRoomsPerConnection: number;
  /** Longest room name, in characters. @default 128 */
  maxRoomName: number;
  /** Members listed in a presence snapshot (memberCount is always exact). @default 100 */
  maxPresence: number;
  /** Folder for append-only history files so a restart keeps epochs, offsets and history. @default '' (history in memory) */
  dataDir: string;
  /** Bytes of history files kept on disk; the oldest segments are deleted past it. @default 268435456 (256 MiB) */
  dataMaxBytes: number;
  /** Redis URL that joins this server to a cluster (history, offsets and presence live in Redis). @default '' (embedded, no Redis) */
  redis: string;
  /** A cluster node's members vanish from presence this long (ms) after the node stops refreshing them. @default 15000 */
  presenceTtl: number;
  /** Bearer key that enables the HTTP API under /api/ (and the status page). @default '' (API off: 404) */
  apiKey: string;
  /** Largest HTTP API request body, in bytes. @default 1048576 (1 MiB) */
  apiMaxBody: number;
  /** Serve the live status page at /status without the API key. @default false (only with the key) */
  status: boolean;
  /** Ping every client this often (ms) from one sweep timer; a client that misses two is cut off. 0 turns it off. @default 30000 */
  heartbeatMs: number;
  /** Bytes that may wait for one client before it is closed with 1013 as a slow consumer. @default 1048576 (1 MiB) */
  maxBuffered: number;
  /** Messages per second one connection may send (token bucket); 0 turns the limit off. @default 100 */
  rateLimit: number;
  /** Messages one connection may send in a burst above the rate. @default 200 */
  rateBurst: number;
  /** Open WebSocket connections in all; upgrades past it get 503. @default 100000 */
  maxConnections: number;
  /** Open WebSocket connections from one IP address; upgrades past it get 429. 0: no limit. @default 0 */
  maxConnectionsPerIp: number;
  /** Browser origins allowed to connect (exact match, e.g. https://example.com); empty allows all. @default [] */
  allowedOrigins: string[];
  /** Reverse proxies (addresses or CIDR blocks, IPv4 or IPv6) whose forwarded-for header names the client for limits and logs. @default [] (trust none: the TCP peer is the client) */
  trustProxy: string[];
  /** The header those proxies append the client to: `x-forwarded-for` or `forwarded` (RFC 7239). @default 'x-forwarded-for' */
  trustProxyHeader: ForwardedHeader;
  /** HMAC secret that turns on signed tokens (JWT HS256) for every WebSocket; at least 32 characters. @default '' (no auth) */
  authSecret: string;
  /** PEM certificate file: serve https and wss. Needs tlsKey. @default '' */
  tlsCert: string;
  /** PEM private key file for tlsCert. @default '' */
  tlsKey: string;
  /** Time a client gets to finish the TLS handshake, and then to send a request's headers (ms), against slowloris; the whole request gets 3×. @default 10000 */
  headersTimeout: number;
  /** Fragments one message may arrive in before the sender is closed with 1008. @default 1024 */
  maxFragments: number;
  /** How long close() waits for clients to finish their closing handshake before cutting them off, in ms. @default 5000 */
  shutdownTimeout: number;
}

export const DEFAULTS: Readonly<PlazaOptions> = Object.freeze({
  port: 8080,
  host: '',
  publicDir: '',
  excludeSender: false,
  maxPayload: 64 * 1024,
  logLevel: 'info',
  logFormat: process.stdout.isTTY ? 'pretty' : 'json',
  shutdownTimeout: 5000,
  heartbeatMs: 30_000,
  maxBuffered: 1024 * 1024,
  rateLimit: 100,
  rateBurst: 200,
  maxConnections: 100_000,
  maxConnectionsPerIp: 0,
  allowedOrigins: [],
  trustProxy: [],
  trustProxyHeader: 'x-forwarded-for',
  authSecret: '',
  tlsCert: '',
  tlsKey: '',
  maxFragments: 1024,
  headersTimeout: 10_000,
  redis: '',
  presenceTtl: 15_000,
  apiKey: '',
  apiMaxBody: 1024 * 1024,
  status: false,
  defaultRoom: 'lobby',
  historySize: 100,
  historyTtl: 60 * 60 * 1000,
  historyMaxBytes: 64 * 1024 * 1024,
  maxRooms: 10_000,
  maxRoomsPerConnection: 100,
  maxRoomName: 128,
  maxPresence: 100,
  dataDir: '',
  dataMaxBytes: 256 * 1024 * 1024,
});

type Kind = 'integer' | 'bytes' | 'boolean' | 'string' | 'choice' | 'list';

interface OptionSpec {
  key: keyof PlazaOptions;
  flag: string;
  env: string;
  kind: Kind;
  help: string;
  min?: number;
  max?: number;
  choices?: readonly string[];
  /** Never echo the value in errors or help. */
  secret?: boolean;
}

/** Every option a person can set from outside, in --help order. */
export const OPTION_SPECS: readonly OptionSpec[] = [
  { key: 'port', flag: '--port', env: 'PORT', kind: 'integer', min: 0, max: 65535, help: 'TCP port (0 picks a free port)' },
  { key: 'host', flag: '--host', env: 'HOST', kind: 'string', help: 'interface to bind (default: all)' },
  { key: 'excludeSender', flag: '--exclude-sender', env: 'EXCLUDE_SENDER', kind: 'boolean', help: 'do not echo messages back to their sender' },
  { key: 'maxPayload', flag: '--max-payload', env: 'MAX_PAYLOAD', kind: 'bytes', min: 1, max: 100 * 1024 * 1024, help: 'largest message in bytes (suffixes KiB, MiB); larger closes with 1009' },
  { key: 'logLevel', flag: '--log-level', env: 'LOG_LEVEL', kind: 'choice', choices: ['silent', 'error', 'warn', 'info', 'debug'], help: 'least severe log level written' },
  { key: 'logFormat', flag: '--log-format', env: 'LOG_FORMAT', kind: 'choice', choices: ['json', 'pretty'], help: 'json lines, or pretty for people (default: pretty on a terminal)' },
  { key: 'shutdownTimeout', flag: '--shutdown-timeout', env: 'SHUTDOWN_TIMEOUT', kind: 'integer', min: 0, max: 600_000, help: 'ms to wait for clients to close on shutdown' },
  { key: 'defaultRoom', flag: '--default-room', env: 'DEFAULT_ROOM', kind: 'string', help: 'room plain WebSocket clients talk in' },
  { key: 'historySize', flag: '--history-size', env: 'HISTORY_SIZE', kind: 'integer', min: 0, max: 100_000, help: 'messages kept per room (0: none)' },
  { key: 'historyTtl', flag: '--history-ttl', env: 'HISTORY_TTL', kind: 'integer', min: 1000, max: 30 * 24 * 3600 * 1000, help: 'ms a message stays in history' },
  { key: 'historyMaxBytes', flag: '--history-max-bytes', env: 'HISTORY_MAX_BYTES', kind: 'bytes', min: 0, max: 64 * 1024 ** 3, help: 'bytes of history kept in memory across rooms' },
  { key: 'maxRooms', flag: '--max-rooms', env: 'MAX_ROOMS', kind: 'integer', min: 1, max: 10_000_000, help: 'rooms tracked at once' },
  { key: 'maxRoomsPerConnection', flag: '--max-rooms-per-connection', env: 'MAX_ROOMS_PER_CONNECTION', kind: 'integer', min: 1, max: 100_000, help: 'rooms one connection may be in' },
  { key: 'maxRoomName', flag: '--max-room-name', env: 'MAX_ROOM_NAME', kind: 'integer', min: 1, max: 1024, help: 'longest room name in characters' },
  { key: 'maxPresence', flag: '--max-presence', env: 'MAX_PRESENCE', kind: 'integer', min: 0, max: 100_000, help: 'members listed in a presence snapshot' },
  { key: 'dataDir', flag: '--data-dir', env: 'DATA_DIR', kind: 'string', help: 'keep history in append-only files here (default: memory only)' },
  { key: 'dataMaxBytes', flag: '--data-max-bytes', env: 'DATA_MAX_BYTES', kind: 'bytes', min: 1024 * 1024, max: 1024 ** 4, help: 'bytes of history files kept on disk' },
  { key: 'heartbeatMs', flag: '--heartbeat-ms', env: 'HEARTBEAT_MS', kind: 'integer', min: 0, max: 3_600_000, help: 'ms between pings; two missed cut the client off (0: off)' },
  { key: 'maxBuffered', flag: '--max-buffered', env: 'MAX_BUFFERED', kind: 'bytes', min: 1024, max: 1024 ** 3, help: 'bytes waiting for one client before it is dropped with 1013' },
  { key: 'rateLimit', flag: '--rate-limit', env: 'RATE_LIMIT', kind: 'integer', min: 0, max: 1_000_000, help: 'messages/s per connection (0: no limit)' },
  { key: 'rateBurst', flag: '--rate-burst', env: 'RATE_BURST', kind: 'integer', min: 1, max: 1_000_000, help: 'messages per connection in a burst above the rate' },
  { key: 'maxConnections', flag: '--max-connections', env: 'MAX_CONNECTIONS', kind: 'integer', min: 1, max: 10_000_000, help: 'open connections in all (past it: 503)' },
  { key: 'maxConnectionsPerIp', flag: '--max-connections-per-ip', env: 'MAX_CONNECTIONS_PER_IP', kind: 'integer', min: 0, max: 10_000_000, help: 'open connections per IP (past it: 429; 0: no limit)' },
  { key: 'allowedOrigins', flag: '--allowed-origins', env: 'ALLOWED_ORIGINS', kind: 'list', help: 'comma list of browser origins allowed to connect (default: all)' },
  { key: 'trustProxy', flag: '--trust-proxy', env: 'TRUST_PROXY', kind: 'list', help: 'comma list of proxy addresses/CIDRs whose forwarded-for header names the client (default: none)' },
  { key: 'trustProxyHeader', flag: '--trust-proxy-header', env: 'TRUST_PROXY_HEADER', kind: 'choice', choices: FORWARDED_HEADERS, help: 'header those proxies append the client to' },
  { key: 'authSecret', flag: '--auth-secret', env: 'AUTH_SECRET', kind: 'string', secret: true, help: 'HMAC secret (32+ chars) that requires signed tokens' },
  { key: 'tlsCert', flag: '--tls-cert', env: 'TLS_CERT', kind: 'string', help: 'PEM certificate file: serve https/wss' },
  { key: 'tlsKey', flag: '--tls-key', env: 'TLS_KEY', kind: 'string', help: 'PEM private key file for --tls-cert' },
  { key: 'headersTimeout', flag: '--headers-timeout', env: 'HEADERS_TIMEOUT', kind: 'integer', min: 100, max: 600_000, help: 'ms a client gets to finish the TLS handshake and to send request headers' },
  { key: 'maxFragments', flag: '--max-fragments', env: 'MAX_FRAGMENTS', kind: 'integer', min: 1, max: 1_000_000, help: 'fragments one message may arrive in' },
  { key: 'redis', flag: '--redis', env: 'REDIS_URL', kind: 'string', secret: true, help: 'redis://host:port that joins a cluster of Plaza servers' },
  { key: 'presenceTtl', flag: '--presence-ttl', env: 'PRESENCE_TTL', kind: 'integer', min: 1000, max: 3_600_000, help: 'ms before a dead node\'s members leave cluster presence' },
  { key: 'apiKey', flag: '--api-key', env: 'API_KEY', kind: 'string', secret: true, help: 'enables the HTTP API (Authorization: Bearer <key>)' },
  { key: 'apiMaxBody', flag: '--api-max-body', env: 'API_MAX_BODY', kind: 'bytes', min: 1, max: 100 * 1024 * 1024, help: 'largest HTTP API request body' },
  { key: 'status', flag: '--status', env: 'STATUS', kind: 'boolean', help: 'serve the live status page at /status to anyone' },
  { key: 'publicDir', flag: '--public-dir', env: 'PUBLIC_DIR', kind: 'string', help: 'folder of static files to serve (default: public/ beside server.js)' },
];

/** A bad option value. `option` is the flag (CLI) or property name (API) to fix. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'PLAZA_ERR_CONFIG';
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`${option}: ${message}`);
  }
}

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2 };

function describeAllowed(spec: OptionSpec): string {
  switch (spec.kind) {
    case 'integer':
      return `an integer from ${spec.min} to ${spec.max}`;
    case 'bytes':
      return `a size in bytes from ${spec.min} to ${spec.max} (e.g. 65536, 64KiB, 1MiB)`;
    case 'boolean':
      return 'true or false (1/0, yes/no)';
    case 'choice':
      return `one of ${spec.choices?.join(', ')}`;
    case 'string':
      return 'a string';
    case 'list':
      return 'a comma-separated list';
  }
}

/** Turns text from argv or env into the option's type; undefined when the text is not of that type. */
function fromText(spec: OptionSpec, text: string): unknown {
  const t = text.trim();
  switch (spec.kind) {
    case 'integer':
      return /^-?\d+$/.test(t) ? Number(t) : undefined;
    case 'bytes': {
      const m = /^(\d+)\s*([a-z]*)$/i.exec(t);
      const unit = m ? BYTE_UNITS[m[2]!.toLowerCase()] : undefined;
      return m && unit ? Number(m[1]) * unit : undefined;
    }
    case 'boolean':
      if (/^(1|true|yes|on)$/i.test(t)) return true;
      if (/^(0|false|no|off)$/i.test(t)) return false;
      return undefined;
    case 'list':
      return t === '' ? [] : t.split(',').map((item) => item.trim()).filter(Boolean);
    default:
      return text;
  }
}

function checkValue(spec: OptionSpec, value: unknown): boolean {
  switch (spec.kind) {
    case 'integer':
    case 'bytes':
      return Number.isSafeInteger(value) && (value as number) >= spec.min! && (value as number) <= spec.max!;
    case 'boolean':
      return typeof value === 'boolean';
    case 'choice':
      return typeof value === 'string' && spec.choices!.includes(value);
    case 'string':
      return typeof value === 'string';
    case 'list':
      return Array.isArray(value) && value.every((item) => typeof item === 'string');
  }
}

/**
 * Merges `options` over DEFAULTS and validates every field once.
 * @throws ConfigError naming the property and what is allowed.
 */
export function resolveOptions(options: Partial<PlazaOptions> = {}): PlazaOptions {
  if (options === null || typeof options !== 'object') {
    throw new ConfigError('options', 'expected an object of Plaza options');
  }
  const known = new Set<string>(Object.keys(DEFAULTS));
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new ConfigError(key, `unknown option; known options are ${[...known].join(', ')}`);
  }
  const resolved = { ...DEFAULTS, ...dropUndefined(options) } as PlazaOptions;
  for (const spec of OPTION_SPECS) {
    const value = resolved[spec.key];
    if (!checkValue(spec, value)) {
      throw new ConfigError(spec.key, `expected ${describeAllowed(spec)}, got ${spec.secret ? 'another type' : JSON.stringify(value)}`);
    }
  }
  checkCombinations(resolved);
  try {
    validateRoomName(resolved.defaultRoom, resolved.maxRoomName);
  } catch {
    throw new ConfigError('defaultRoom', `expected a room name of 1 to ${resolved.maxRoomName} letters, digits or _ - . : @ # / + = ~, got ${JSON.stringify(resolved.defaultRoom)}`);
  }
  return resolved;
}

function checkCombinations(options: PlazaOptions): void {
  if (options.authSecret && options.authSecret.length < 32) {
    throw new ConfigError('authSecret', `must be at least 32 characters (got ${options.authSecret.length}); use a long random string, e.g. from \`openssl rand -base64 33\``);
  }
  if (options.redis && options.dataDir) {
    throw new ConfigError('dataDir', 'a cluster keeps history in Redis: use either --data-dir (one server) or --redis (a cluster), not both');
  }
  if (options.redis && !/^rediss?:\/\//.test(options.redis)) {
    throw new ConfigError('redis', 'expected a URL such as redis://127.0.0.1:6379 (or rediss:// for TLS)');
  }
  if (Boolean(options.tlsCert) !== Boolean(options.tlsKey)) {
    throw new ConfigError(options.tlsCert ? 'tlsKey' : 'tlsCert', 'TLS needs both a certificate (--tls-cert) and its key (--tls-key)');
  }
  try {
    parseTrustedProxies(options.trustProxy);
  } catch (error) {
    throw new ConfigError('trustProxy', (error as Error).message);
  }
  for (const origin of options.allowedOrigins) {
    if (!/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new ConfigError('allowedOrigins', `${JSON.stringify(origin)} is not an origin; write scheme://host[:port] with no path, e.g. https://example.com`);
    }
  }
}

function dropUndefined<T extends object>(object: T): Partial<T> {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export type CommandLine = { command: 'help' } | { command: 'serve'; options: PlazaOptions };

/**
 * Reads options from the environment, then from flags (flags win).
 * Accepts `--flag value`, `--flag=value`, and bare `--flag` for booleans.
 * @throws ConfigError naming the flag or variable and what is allowed.
 */
export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv): CommandLine {
  const raw: Partial<Record<keyof PlazaOptions, unknown>> = {};
  for (const spec of OPTION_SPECS) {
    const text = env[spec.env];
    if (text === undefined || text === '') continue;
    raw[spec.key] = parseText(spec, text, spec.env);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') return { command: 'help' };
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const spec = OPTION_SPECS.find((s) => s.flag === flag);
    if (!spec) throw new ConfigError(arg, 'unknown option; run with --help to see every option');
    let text: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1);
    if (text === undefined) {
      const next = argv[i + 1];
      if (spec.kind === 'boolean' && (next === undefined || next.startsWith('--'))) text = 'true';
      else if (next === undefined) throw new ConfigError(flag, `needs a value: ${describeAllowed(spec)}`);
      else text = argv[++i]!;
    }
    raw[spec.key] = parseText(spec, text, flag);
  }
  try {
    return { command: 'serve', options: resolveOptions(raw as Partial<PlazaOptions>) };
  } catch (error) {
    // Name the flag the person typed, not the internal property.
    if (error instanceof ConfigError) {
      const spec = OPTION_SPECS.find((s) => s.key === error.option);
      if (spec) throw new ConfigError(spec.flag, error.message.slice(error.option.length + 2));
    }
    throw error;
  }
}

function parseText(spec: OptionSpec, text: string, source: string): unknown {
  const value = fromText(spec, text);
  if (value === undefined || !checkValue(spec, value)) {
    throw new ConfigError(source, `expected ${describeAllowed(spec)}, got ${spec.secret ? 'something else' : JSON.stringify(text)}`);
  }
  return value;
}

export function helpText(): string {
  const rows = OPTION_SPECS.map((spec) => {
    const left = `  ${spec.flag}${spec.kind === 'boolean' ? '' : ' <value>'}`;
    const fallback = DEFAULTS[spec.key];
    const shown = fallback === '' || (Array.isArray(fallback) && fallback.length === 0) ? '' : ` [default: ${fallback}]`;
    return `${left.padEnd(30)}${spec.help}${shown}\n${' '.repeat(30)}env ${spec.env}`;
  });
  return [
    'Plaza: a real-time broadcast server for the web.',
    '',
    'Usage: node dist/server.js [options]',
    '       node dist/server.js token --sub <user> [--rooms <list>] [--ttl 1h]   (mint a test token)',
    '',
    'Options (flags win over environment variables):',
    ...rows,
    '  --help                      print this help and exit',
    '',
  ].join('\n');
}
