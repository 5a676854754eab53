/**
 * Plaza's options, the schema: one interface, one DEFAULTS object, the spec of every option
 * (flag, variable, kind, range) and one validation pass, with the hooks' bounds beside it.
 * command-line.ts reads flags and environment text into the same shape and this validates it,
 * so `createPlaza({...})` and `node dist/server.js --flag` can never disagree.
 */

import { FORWARDED_HEADERS, parseTrustedProxies, type ForwardedHeader } from './access/client-address.js';
import { isReservedRoom, RESERVED_PREFIX, ROOM_NAME_RULE, roomNameProblem } from '../shared/room-name.js';
import { reachablePath } from './access/request-target.js';
import { parseRedisTarget } from './redis-target.js';
import { MAX_CLAIM_PATH, parseClaimPath } from './access/claim-path.js';
import { jwksUrlProblem } from './access/key-fetch.js';
import { algorithmsProblem, ASYMMETRIC_ALGORITHMS, DEFAULT_ALGORITHMS } from './access/token-algorithms.js';
import { MAX_HOOK_CALLS, MAX_HOOK_TIMEOUT, MAX_WELCOME } from './bounds.js';

/**
 * Only this server's own scripts, styles and images (and data: images), WebSockets to anywhere
 * (the chat page may talk to another Plaza), no plugins, no framing, no <base>, forms to self.
 */
export const DEFAULT_CONTENT_SECURITY_POLICY =
  "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; " +
  "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

export type LogLevel = 'silent' | 'error' | 'warn' | 'info' | 'debug';
export type LogFormat = 'json' | 'pretty';

export interface PlazaOptions {
  /** TCP port to listen on; 0 picks a free one. @default 8080 */
  port: number;
  /** Interface to bind. Empty means every interface (IPv6 and IPv4 where available). @default '' */
  host: string;
  /**
   * Folder of static files, mapped once at start-up. `node dist/server.js` lays it over the
   * built-in chat page and client (dist/public): a file of the same path wins, the rest stay.
   * @default '' (the CLI serves the built-in files; createPlaza() serves none)
   */
  publicDir: string;
  /**
   * Content-Security-Policy header sent with every HTML page; '' sends none. The default allows
   * only the server's own scripts, styles and sockets: pages with inline scripts or styles from
   * a CDN need their own policy.
   * @default "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
   */
  contentSecurityPolicy: string;
  /**
   * Text sent to every client when it connects: plain clients get it as a text frame, plaza.v1
   * clients as a `notice` envelope. It belongs to no room and is never kept in history.
   * @default '' (none)
   */
  welcome: string;
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
  /**
   * Publish ids remembered per room, so a retried publish is answered with its first ack instead
   * of being published twice (Plaza's client retries after a reconnect; the HTTP API's
   * Idempotency-Key). Kept in memory, in the --data-dir journal, or in Redis with the room.
   * 0 turns the check off (every publish is new).
   * @default 1000
   */
  publishIdWindow: number;
  /** Publish ids older than this (ms) are forgotten; a retry later than this is published again. @default 120000 (2 min) */
  publishIdTtl: number;
  /** Publish ids remembered in one server's memory across rooms (a cluster's window is in Redis, bounded per room; a node keeps this many of its own for Redis outages); the oldest go first. @default 100000 */
  publishIdMaxEntries: number;
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
  /**
   * Redis that joins this server to a cluster (history, offsets and presence live in Redis):
   * `redis://host:port` (one Redis), `redis+sentinel://s1:26379,s2:26379/mymaster` (the master a
   * Sentinel set names) or `redis+cluster://h1:7000,h2:7001` (a Redis Cluster, sharded pub/sub).
   * See parseRedisTarget.
   * @default '' (embedded, no Redis)
   */
  redis: string;
  /** A cluster node's members vanish from presence this long (ms) after the node stops refreshing them. @default 15000 */
  presenceTtl: number;
  /** Cluster: publishes on their way through Redis at once, per node; past it a publish is refused (`unavailable`) at once. @default 10000 */
  redisMaxInflight: number;
  /** Cluster: bytes of those publishes, per node; past it the same. @default 16777216 (16 MiB) */
  redisMaxInflightBytes: number;
  /** Cluster: how long (ms) a POST for an SSE stream another node holds waits for that node's answer; then 503. @default 5000 */
  sseRelayTimeout: number;
  /** Cluster: POSTs for SSE streams of other nodes waiting for an answer at once, per node; past it 503. @default 1000 */
  sseMaxRelays: number;
  /** Bearer key that enables the HTTP API under /api/ (and the status page). @default '' (API off: 404) */
  apiKey: string;
  /** Largest HTTP API request body, in bytes. @default 1048576 (1 MiB) */
  apiMaxBody: number;
  /** Serve the live status page at /status without the API key. @default false (only with the key) */
  status: boolean;
  /** Ping every client this often (ms) from one sweep timer; a client that misses two is cut off. 0 turns it off. @default 30000 */
  heartbeatMs: number;
  /** Bytes that may wait for one client before it is closed with 1013 as a slow consumer; at least twice maxPayload. @default 1048576 (1 MiB), or twice maxPayload if that is more */
  maxBuffered: number;
  /**
   * Longest a frame may wait (ms) to share a write with later ones: at low rates every message
   * otherwise costs one write per client. Adds up to this much latency. 0 writes at the end of
   * each event-loop turn.
   * @default 0
   */
  writeDelay: number;
  /**
   * Negotiate permessage-deflate (with no context takeover both ways) and compress each message
   * once for every client that accepted it; others get it uncompressed. What clients send
   * compressed is inflated up to --max-payload.
   * @default false
   */
  compress: boolean;
  /** With --compress: messages shorter than this (bytes) are sent uncompressed. @default 512 */
  compressMinBytes: number;
  /** Messages per second one connection may send (token bucket); 0 turns the limit off. @default 100 */
  rateLimit: number;
  /** Messages one connection may send in a burst above the rate. @default 200 */
  rateBurst: number;
  /** New rooms one connection may create per second (a join of a room this server does not track yet); 0: no limit. @default 10 */
  roomCreationRate: number;
  /** New rooms one connection may create in a burst above that rate. @default 100 */
  roomCreationBurst: number;
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
  /**
   * URL of an identity provider's public keys (JWKS, e.g. https://example.auth0.com/.well-known/jwks.json):
   * turns on tokens signed by that provider (RS256, ES256, EdDSA…) for every WebSocket. https, or
   * http to 127.0.0.1, ::1 or localhost only. Keys are cached as the provider's cache headers say.
   * @default '' (none)
   */
  authJwksUrl: string;
  /** PEM file with the one public key (or certificate) tokens are signed for; instead of authJwksUrl. @default '' (none) */
  authPublicKey: string;
  /** Algorithms accepted for tokens checked with authJwksUrl or authPublicKey; never `none` or HS*. @default ['RS256', 'ES256', 'EdDSA'] */
  authAlgorithms: string[];
  /** The `iss` every token must carry (exact match). @default '' (not checked) */
  authIssuer: string;
  /** A value every token's `aud` must hold (a string, or one of a list). @default '' (not checked) */
  authAudience: string;
  /**
   * Where in a token the rooms it may join are: a claim name, a dotted path into nested claims
   * (`plaza.rooms`, Keycloak style) or a quoted name with dots (`"https://example.com/rooms"`, Auth0 style).
   * @default 'rooms'
   */
  authRoomsClaim: string;
  /** Where the rooms it may publish to are, the same way; absent from a token: the rooms it may join. @default 'publish' */
  authPublishClaim: string;
  /** Least time (ms) between two fetches of the JWKS: a token with an unknown `kid` makes one fetch at most this often. @default 30000 */
  authJwksCooldown: number;
  /** How long one fetch of the JWKS may take (ms). @default 5000 */
  authJwksTimeout: number;
  /** Largest JWKS accepted, in bytes. @default 262144 (256 KiB) */
  authJwksMaxBytes: number;
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
  /**
   * The path that takes WebSocket upgrades; the built-in chat and status pages connect to `/`.
   * Non-ASCII is kept percent-encoded, as requests carry it; dot segments and `\` are refused. @default '/'
   */
  path: string;
  /** URL that receives signed POSTs about rooms and members (docs/server.md, "Webhooks"). @default '' (no webhooks) */
  webhookUrl: string;
  /** HMAC-SHA256 secret the webhooks are signed with; at least 32 characters; needed with webhookUrl. @default '' */
  webhookSecret: string;
  /** Which events are sent: room_occupied, room_vacated, member_joined, member_left, message_published. @default ['room_occupied', 'room_vacated', 'member_joined', 'member_left'] */
  webhookEvents: WebhookEventType[];
  /** Bytes of webhook events waiting to be delivered; past it new events are dropped and counted. @default 16777216 (16 MiB) */
  webhookMaxQueue: number;
  /** How long one webhook POST may take (ms), the answer's body included, before it counts as failed and is retried. @default 5000 */
  webhookTimeout: number;
  /** Retries of a failed webhook POST, with growing backoff, before its events are dropped and counted. @default 5 */
  webhookRetries: number;
}

/** The webhook events, in the order --help lists them. */
export const WEBHOOK_EVENTS = ['room_occupied', 'room_vacated', 'member_joined', 'member_left', 'message_published'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];

export const DEFAULTS: Readonly<PlazaOptions> = Object.freeze({
  port: 8080,
  host: '',
  publicDir: '',
  contentSecurityPolicy: DEFAULT_CONTENT_SECURITY_POLICY,
  welcome: '',
  excludeSender: false,
  maxPayload: 64 * 1024,
  logLevel: 'info',
  logFormat: process.stdout.isTTY ? 'pretty' : 'json',
  shutdownTimeout: 5000,
  heartbeatMs: 30_000,
  maxBuffered: 1024 * 1024,
  writeDelay: 0,
  compress: false,
  compressMinBytes: 512,
  rateLimit: 100,
  rateBurst: 200,
  roomCreationRate: 10,
  roomCreationBurst: 100,
  maxConnections: 100_000,
  maxConnectionsPerIp: 0,
  allowedOrigins: [],
  trustProxy: [],
  trustProxyHeader: 'x-forwarded-for',
  authSecret: '',
  authJwksUrl: '',
  authPublicKey: '',
  authAlgorithms: [...DEFAULT_ALGORITHMS],
  authIssuer: '',
  authAudience: '',
  authRoomsClaim: 'rooms',
  authPublishClaim: 'publish',
  authJwksCooldown: 30_000,
  authJwksTimeout: 5000,
  authJwksMaxBytes: 256 * 1024,
  tlsCert: '',
  tlsKey: '',
  maxFragments: 1024,
  headersTimeout: 10_000,
  redis: '',
  presenceTtl: 15_000,
  redisMaxInflight: 10_000,
  redisMaxInflightBytes: 16 * 1024 * 1024,
  sseRelayTimeout: 5000,
  sseMaxRelays: 1000,
  apiKey: '',
  apiMaxBody: 1024 * 1024,
  status: false,
  defaultRoom: 'lobby',
  historySize: 100,
  historyTtl: 60 * 60 * 1000,
  historyMaxBytes: 64 * 1024 * 1024,
  maxRooms: 10_000,
  publishIdWindow: 1000,
  publishIdTtl: 120_000,
  publishIdMaxEntries: 100_000,
  maxRoomsPerConnection: 100,
  maxRoomName: 128,
  maxPresence: 100,
  dataDir: '',
  dataMaxBytes: 256 * 1024 * 1024,
  path: '/',
  webhookUrl: '',
  webhookSecret: '',
  webhookEvents: ['room_occupied', 'room_vacated', 'member_joined', 'member_left'] as WebhookEventType[],
  webhookMaxQueue: 16 * 1024 * 1024,
  webhookTimeout: 5000,
  webhookRetries: 5,
});

type Kind = 'integer' | 'bytes' | 'boolean' | 'string' | 'choice' | 'list';

export interface OptionSpec {
  key: keyof PlazaOptions;
  flag: string;
  env: string;
  kind: Kind;
  help: string;
  /** Smallest and largest value; for strings, the longest length. */
  min?: number;
  max?: number;
  choices?: readonly string[];
  /** Never echo the value in errors or help. */
  secret?: boolean;
  /** What --help shows after the flag, e.g. `<ms>`; by default one per kind. */
  value?: string;
  /** What --help shows as the default when DEFAULTS cannot say it (it depends on the terminal). */
  defaultText?: string;
}


/** Every option a person can set from outside, in --help order. */
export const OPTION_SPECS: readonly OptionSpec[] = [
  { key: 'port', flag: '--port', env: 'PORT', kind: 'integer', min: 0, max: 65535, value: '<port>', help: 'TCP port (0 picks a free port)' },
  { key: 'host', flag: '--host', env: 'HOST', kind: 'string', value: '<address>', help: 'interface to bind (default: all)' },
  { key: 'excludeSender', flag: '--exclude-sender', env: 'EXCLUDE_SENDER', kind: 'boolean', help: 'do not echo messages back to their sender' },
  { key: 'maxPayload', flag: '--max-payload', env: 'MAX_PAYLOAD', kind: 'bytes', min: 1, max: 100 * 1024 * 1024, help: 'largest message in bytes; larger closes with 1009' },
  { key: 'logLevel', flag: '--log-level', env: 'LOG_LEVEL', kind: 'choice', choices: ['silent', 'error', 'warn', 'info', 'debug'], help: 'least severe log level written' },
  { key: 'logFormat', flag: '--log-format', env: 'LOG_FORMAT', kind: 'choice', choices: ['json', 'pretty'], defaultText: 'pretty on a terminal, else json', help: 'json lines, or pretty for people' },
  { key: 'shutdownTimeout', flag: '--shutdown-timeout', env: 'SHUTDOWN_TIMEOUT', kind: 'integer', min: 0, max: 600_000, value: '<ms>', help: 'ms to wait for clients to close on shutdown' },
  { key: 'defaultRoom', flag: '--default-room', env: 'DEFAULT_ROOM', kind: 'string', value: '<room>', help: 'room plain WebSocket clients talk in' },
  { key: 'historySize', flag: '--history-size', env: 'HISTORY_SIZE', kind: 'integer', min: 0, max: 100_000, help: 'messages kept per room (0: none)' },
  { key: 'historyTtl', flag: '--history-ttl', env: 'HISTORY_TTL', kind: 'integer', min: 1000, max: 30 * 24 * 3600 * 1000, value: '<ms>', help: 'ms a message stays in history' },
  { key: 'historyMaxBytes', flag: '--history-max-bytes', env: 'HISTORY_MAX_BYTES', kind: 'bytes', min: 0, max: 64 * 1024 ** 3, help: 'bytes of history kept in memory across rooms' },
  { key: 'maxRooms', flag: '--max-rooms', env: 'MAX_ROOMS', kind: 'integer', min: 1, max: 10_000_000, help: 'rooms tracked at once; past it the least recently used room nobody is in is forgotten (its history too), and when every room has members a new one gets server_full' },
  { key: 'publishIdWindow', flag: '--publish-id-window', env: 'PUBLISH_ID_WINDOW', kind: 'integer', min: 0, max: 100_000, help: 'publish ids remembered per room so a retry is not published twice (0: off)' },
  { key: 'publishIdTtl', flag: '--publish-id-ttl', env: 'PUBLISH_ID_TTL', kind: 'integer', min: 1000, max: 24 * 3600 * 1000, value: '<ms>', help: 'ms a publish id is remembered; a later retry is published again' },
  { key: 'publishIdMaxEntries', flag: '--publish-id-max-entries', env: 'PUBLISH_ID_MAX_ENTRIES', kind: 'integer', min: 1, max: 10_000_000, help: 'publish ids remembered across all rooms of one server (the oldest go first)' },
  { key: 'maxRoomsPerConnection', flag: '--max-rooms-per-connection', env: 'MAX_ROOMS_PER_CONNECTION', kind: 'integer', min: 1, max: 100_000, help: 'rooms one connection may be in' },
  { key: 'maxRoomName', flag: '--max-room-name', env: 'MAX_ROOM_NAME', kind: 'integer', min: 1, max: 1024, help: 'longest room name in characters' },
  { key: 'maxPresence', flag: '--max-presence', env: 'MAX_PRESENCE', kind: 'integer', min: 0, max: 100_000, help: 'members listed in a presence snapshot' },
  { key: 'dataDir', flag: '--data-dir', env: 'DATA_DIR', kind: 'string', value: '<dir>', help: 'keep history in append-only files here (default: memory only)' },
  { key: 'dataMaxBytes', flag: '--data-max-bytes', env: 'DATA_MAX_BYTES', kind: 'bytes', min: 1024 * 1024, max: 1024 ** 4, help: 'bytes of history files kept on disk' },
  { key: 'heartbeatMs', flag: '--heartbeat-ms', env: 'HEARTBEAT_MS', kind: 'integer', min: 0, max: 3_600_000, value: '<ms>', help: 'ms between pings; two missed cut the client off (0: off)' },
  { key: 'maxBuffered', flag: '--max-buffered', env: 'MAX_BUFFERED', kind: 'bytes', min: 1024, max: 1024 ** 3, help: 'bytes waiting for one client before it is dropped with 1013; at least twice --max-payload, and grows with it when not set' },
  { key: 'writeDelay', flag: '--write-delay', env: 'WRITE_DELAY', kind: 'integer', min: 0, max: 1000, value: '<ms>', help: 'ms a frame may wait to share a write with later ones (0: end of each event-loop turn)' },
  { key: 'compress', flag: '--compress', env: 'COMPRESS', kind: 'boolean', help: 'permessage-deflate: compress each message once for the clients that accept it' },
  { key: 'compressMinBytes', flag: '--compress-min-bytes', env: 'COMPRESS_MIN_BYTES', kind: 'bytes', min: 0, max: 100 * 1024 * 1024, help: 'with --compress: shorter messages are sent uncompressed' },
  { key: 'rateLimit', flag: '--rate-limit', env: 'RATE_LIMIT', kind: 'integer', min: 0, max: 1_000_000, help: 'messages/s per connection (0: no limit)' },
  { key: 'rateBurst', flag: '--rate-burst', env: 'RATE_BURST', kind: 'integer', min: 1, max: 1_000_000, help: 'messages per connection in a burst above the rate' },
  { key: 'roomCreationRate', flag: '--room-creation-rate', env: 'ROOM_CREATION_RATE', kind: 'integer', min: 0, max: 1_000_000, help: 'new rooms one connection may create per second (0: no limit)' },
  { key: 'roomCreationBurst', flag: '--room-creation-burst', env: 'ROOM_CREATION_BURST', kind: 'integer', min: 1, max: 1_000_000, help: 'new rooms one connection may create in a burst' },
  { key: 'maxConnections', flag: '--max-connections', env: 'MAX_CONNECTIONS', kind: 'integer', min: 1, max: 10_000_000, help: 'open connections in all (past it: 503)' },
  { key: 'maxConnectionsPerIp', flag: '--max-connections-per-ip', env: 'MAX_CONNECTIONS_PER_IP', kind: 'integer', min: 0, max: 10_000_000, help: 'open connections per IP (past it: 429; 0: no limit)' },
  { key: 'allowedOrigins', flag: '--allowed-origins', env: 'ALLOWED_ORIGINS', kind: 'list', value: '<origin,…>', help: 'comma list of browser origins allowed to connect (default: all)' },
  { key: 'trustProxy', flag: '--trust-proxy', env: 'TRUST_PROXY', kind: 'list', value: '<address,…>', help: 'comma list of proxy addresses/CIDRs whose forwarded-for header names the client (default: none)' },
  { key: 'trustProxyHeader', flag: '--trust-proxy-header', env: 'TRUST_PROXY_HEADER', kind: 'choice', choices: FORWARDED_HEADERS, help: 'header those proxies append the client to' },
  { key: 'authSecret', flag: '--auth-secret', env: 'AUTH_SECRET', kind: 'string', secret: true, value: '<secret>', help: 'HMAC secret (32+ chars) that requires signed tokens' },
  { key: 'authJwksUrl', flag: '--auth-jwks-url', env: 'AUTH_JWKS_URL', kind: 'string', max: 2048, value: '<url>', help: 'identity provider\'s JWKS URL: requires tokens it signed (https; http to loopback only)' },
  { key: 'authPublicKey', flag: '--auth-public-key', env: 'AUTH_PUBLIC_KEY', kind: 'string', value: '<file>', help: 'PEM public key or certificate that requires tokens signed for it (instead of --auth-jwks-url)' },
  { key: 'authAlgorithms', flag: '--auth-algorithms', env: 'AUTH_ALGORITHMS', kind: 'list', value: '<alg,…>', help: `algorithms accepted with those keys: ${ASYMMETRIC_ALGORITHMS.join(', ')}` },
  { key: 'authIssuer', flag: '--auth-issuer', env: 'AUTH_ISSUER', kind: 'string', max: 2048, value: '<iss>', help: 'the "iss" every token must carry' },
  { key: 'authAudience', flag: '--auth-audience', env: 'AUTH_AUDIENCE', kind: 'string', max: 2048, value: '<aud>', help: 'a value every token\'s "aud" must hold' },
  { key: 'authRoomsClaim', flag: '--auth-rooms-claim', env: 'AUTH_ROOMS_CLAIM', kind: 'string', max: MAX_CLAIM_PATH, value: '<path>', help: 'claim with the rooms a token may join: name, nested.path or "https://quoted/name"' },
  { key: 'authPublishClaim', flag: '--auth-publish-claim', env: 'AUTH_PUBLISH_CLAIM', kind: 'string', max: MAX_CLAIM_PATH, value: '<path>', help: 'claim with the rooms a token may publish to (absent: its rooms)' },
  { key: 'authJwksCooldown', flag: '--auth-jwks-cooldown', env: 'AUTH_JWKS_COOLDOWN', kind: 'integer', min: 100, max: 3_600_000, value: '<ms>', help: 'least ms between two fetches of the JWKS (an unknown kid fetches at most this often)' },
  { key: 'authJwksTimeout', flag: '--auth-jwks-timeout', env: 'AUTH_JWKS_TIMEOUT', kind: 'integer', min: 100, max: 60_000, value: '<ms>', help: 'ms one fetch of the JWKS may take' },
  { key: 'authJwksMaxBytes', flag: '--auth-jwks-max-bytes', env: 'AUTH_JWKS_MAX_BYTES', kind: 'bytes', min: 1024, max: 16 * 1024 * 1024, help: 'largest JWKS accepted' },
  { key: 'tlsCert', flag: '--tls-cert', env: 'TLS_CERT', kind: 'string', value: '<file>', help: 'PEM certificate file: serve https/wss' },
  { key: 'tlsKey', flag: '--tls-key', env: 'TLS_KEY', kind: 'string', value: '<file>', help: 'PEM private key file for --tls-cert' },
  { key: 'headersTimeout', flag: '--headers-timeout', env: 'HEADERS_TIMEOUT', kind: 'integer', min: 100, max: 600_000, value: '<ms>', help: 'ms a client gets to finish the TLS handshake and to send request headers' },
  { key: 'maxFragments', flag: '--max-fragments', env: 'MAX_FRAGMENTS', kind: 'integer', min: 1, max: 1_000_000, help: 'fragments one message may arrive in' },
  { key: 'redis', flag: '--redis', env: 'REDIS_URL', kind: 'string', secret: true, value: '<url>', help: 'joins a cluster of Plaza servers: redis://host:port, redis+sentinel://s1,s2,s3/master or redis+cluster://h1:7000,h2:7001' },
  { key: 'presenceTtl', flag: '--presence-ttl', env: 'PRESENCE_TTL', kind: 'integer', min: 1000, max: 3_600_000, value: '<ms>', help: 'ms before a dead node\'s members leave cluster presence' },
  { key: 'redisMaxInflight', flag: '--redis-max-inflight', env: 'REDIS_MAX_INFLIGHT', kind: 'integer', min: 1, max: 1_000_000, help: 'publishes on their way through Redis at once (past it: unavailable)' },
  { key: 'redisMaxInflightBytes', flag: '--redis-max-inflight-bytes', env: 'REDIS_MAX_INFLIGHT_BYTES', kind: 'bytes', min: 1024, max: 1024 ** 3, help: 'bytes of publishes on their way through Redis at once' },
  { key: 'sseRelayTimeout', flag: '--sse-relay-timeout', env: 'SSE_RELAY_TIMEOUT', kind: 'integer', min: 100, max: 600_000, value: '<ms>', help: 'ms a POST for an SSE stream on another node waits for its answer (then 503)' },
  { key: 'sseMaxRelays', flag: '--sse-max-relays', env: 'SSE_MAX_RELAYS', kind: 'integer', min: 1, max: 1_000_000, help: 'POSTs for SSE streams on other nodes waiting at once (past it: 503)' },
  { key: 'apiKey', flag: '--api-key', env: 'API_KEY', kind: 'string', secret: true, value: '<key>', help: 'enables the HTTP API (Authorization: Bearer <key>)' },
  { key: 'apiMaxBody', flag: '--api-max-body', env: 'API_MAX_BODY', kind: 'bytes', min: 1, max: 100 * 1024 * 1024, help: 'largest HTTP API request body' },
  { key: 'status', flag: '--status', env: 'STATUS', kind: 'boolean', help: 'serve the live status page at /status to anyone' },
  { key: 'publicDir', flag: '--public-dir', env: 'PUBLIC_DIR', kind: 'string', value: '<dir>', help: 'folder of static files laid over the built-in page and client (same name wins)' },
  { key: 'contentSecurityPolicy', flag: '--content-security-policy', env: 'CONTENT_SECURITY_POLICY', kind: 'string', value: '<policy>', defaultText: 'strict: only this server\'s own scripts, styles and sockets', help: 'Content-Security-Policy of HTML pages (\'\': none)' },
  { key: 'welcome', flag: '--welcome', env: 'WELCOME', kind: 'string', max: MAX_WELCOME, value: '<text>', help: 'text sent to every client on connect (plaza.v1: a notice envelope)' },
  { key: 'path', flag: '--path', env: 'PLAZA_PATH', kind: 'string', max: 256, value: '<path>', help: 'path that takes WebSocket upgrades (the built-in pages need /)' },
  { key: 'webhookUrl', flag: '--webhook-url', env: 'WEBHOOK_URL', kind: 'string', max: 2048, value: '<url>', help: 'receives signed POSTs about rooms and members' },
  { key: 'webhookSecret', flag: '--webhook-secret', env: 'WEBHOOK_SECRET', kind: 'string', secret: true, value: '<secret>', help: 'HMAC secret (32+ chars) the webhooks are signed with' },
  { key: 'webhookEvents', flag: '--webhook-events', env: 'WEBHOOK_EVENTS', kind: 'list', choices: WEBHOOK_EVENTS, value: '<event,…>', help: `comma list of webhook events: ${WEBHOOK_EVENTS.join(', ')}` },
  { key: 'webhookMaxQueue', flag: '--webhook-max-queue', env: 'WEBHOOK_MAX_QUEUE', kind: 'bytes', min: 1024, max: 1024 ** 3, help: 'bytes of webhook events waiting; past it new ones are dropped' },
  { key: 'webhookTimeout', flag: '--webhook-timeout', env: 'WEBHOOK_TIMEOUT', kind: 'integer', min: 100, max: 120_000, value: '<ms>', help: 'ms one webhook POST may take' },
  { key: 'webhookRetries', flag: '--webhook-retries', env: 'WEBHOOK_RETRIES', kind: 'integer', min: 0, max: 20, help: 'retries of a failed webhook POST before its events are dropped' },
];

/** The bounds on the application's hooks (createPlaza only: hooks are code, so they have no flags). */
export interface HookBounds {
  /** ms one call may take (`hookTimeout`). @default 5000 */
  timeout: number;
  /** Calls running at once, across the server (`maxHookCalls`). @default 1000 */
  maxCalls: number;
}

export const HOOK_DEFAULTS: Readonly<HookBounds> = Object.freeze({ timeout: 5000, maxCalls: 1000 });

/**
 * Checks `hookTimeout` and `maxHookCalls`, the options that come with the hooks; createPlaza
 * calls it in the same pass as resolveOptions (hooks/split-config.ts: resolveConfig).
 * @throws ConfigError naming the option the app passed and what is allowed.
 */
export function resolveHookBounds(options: { hookTimeout?: unknown; maxHookCalls?: unknown }): HookBounds {
  const timeout = options.hookTimeout ?? HOOK_DEFAULTS.timeout;
  const maxCalls = options.maxHookCalls ?? HOOK_DEFAULTS.maxCalls;
  if (!Number.isSafeInteger(timeout) || (timeout as number) < 1 || (timeout as number) > MAX_HOOK_TIMEOUT) {
    throw new ConfigError('hookTimeout', `expected an integer from 1 to ${MAX_HOOK_TIMEOUT} (ms), got ${JSON.stringify(timeout)}`);
  }
  if (!Number.isSafeInteger(maxCalls) || (maxCalls as number) < 1 || (maxCalls as number) > MAX_HOOK_CALLS) {
    throw new ConfigError('maxHookCalls', `expected an integer from 1 to ${MAX_HOOK_CALLS}, got ${JSON.stringify(maxCalls)}`);
  }
  return { timeout: timeout as number, maxCalls: maxCalls as number };
}

/**
 * A bad option value. `option` is the flag (CLI) or property name (API) to fix; other options
 * the message names are in backquotes (`maxPayload`), which the command line turns into flags.
 */
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

export function describeAllowed(spec: OptionSpec): string {
  switch (spec.kind) {
    case 'integer':
      return `an integer from ${spec.min} to ${spec.max}`;
    case 'bytes':
      return `a size in bytes from ${spec.min} to ${spec.max}: a number, or one with KiB/MiB/GiB (×1024) or KB/MB/GB (×1000), e.g. 65536, 64KiB, 1MB`;
    case 'boolean':
      return 'true or false';
    case 'choice':
      return `one of ${spec.choices?.join(', ')}`;
    case 'string':
      return spec.max === undefined ? 'a string' : `a string of at most ${spec.max} characters`;
    case 'list':
      return spec.choices ? `a comma-separated list of ${spec.choices.join(', ')}` : 'a comma-separated list';
  }
}

export function checkValue(spec: OptionSpec, value: unknown): boolean {
  switch (spec.kind) {
    case 'integer':
    case 'bytes':
      return Number.isSafeInteger(value) && (value as number) >= spec.min! && (value as number) <= spec.max!;
    case 'boolean':
      return typeof value === 'boolean';
    case 'choice':
      return typeof value === 'string' && spec.choices!.includes(value);
    case 'string':
      return typeof value === 'string' && (spec.max === undefined || value.length <= spec.max);
    case 'list':
      return Array.isArray(value) && value.every((item) => typeof item === 'string' && (!spec.choices || spec.choices.includes(item)));
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
  // Unless set, --max-buffered grows with --max-payload so one largest message can always wait.
  if (options.maxBuffered === undefined && Number.isSafeInteger(resolved.maxPayload)) {
    resolved.maxBuffered = Math.max(DEFAULTS.maxBuffered, 2 * resolved.maxPayload);
  }
  for (const spec of OPTION_SPECS) {
    const value = resolved[spec.key];
    if (!checkValue(spec, value)) {
      throw new ConfigError(spec.key, `expected ${describeAllowed(spec)}, got ${spec.secret ? 'another type' : JSON.stringify(value)}`);
    }
  }
  checkCombinations(resolved);
  if (roomNameProblem(resolved.defaultRoom, resolved.maxRoomName) !== undefined) {
    throw new ConfigError('defaultRoom', `expected a room name of 1 to ${resolved.maxRoomName} characters: ${ROOM_NAME_RULE}; got ${JSON.stringify(resolved.defaultRoom)}`);
  }
  // Compared with each upgrade's path as parsed, so it must be spelled that way too.
  const path = reachablePath(resolved.path);
  if ('problem' in path) throw new ConfigError('path', path.problem);
  resolved.path = path.path;
  // Plain clients talk there: in a room of the server's own, they would skip the hooks.
  if (isReservedRoom(resolved.defaultRoom)) throw new ConfigError('defaultRoom', `rooms named ${RESERVED_PREFIX}… are the server's own; choose another name, got ${JSON.stringify(resolved.defaultRoom)}`);
  return resolved;
}

function checkCombinations(options: PlazaOptions): void {
  if (options.authSecret && options.authSecret.length < 32) {
    throw new ConfigError('authSecret', `must be at least 32 characters (got ${options.authSecret.length}); use a long random string, e.g. from \`openssl rand -hex 32\``);
  }
  checkTokenOptions(options);
  if (options.redis && options.dataDir) {
    throw new ConfigError('dataDir', 'a cluster keeps history in Redis: use either `dataDir` (one server) or `redis` (a cluster), not both');
  }
  if (options.redis) {
    try {
      parseRedisTarget(options.redis);
    } catch (error) {
      throw new ConfigError('redis', (error as Error).message);
    }
  }
  // A member must be able to hold one message of the largest size (as a v1 envelope, which is
  // larger than the payload) waiting for it, or every such message would close its receivers.
  if (options.maxBuffered < 2 * options.maxPayload) {
    throw new ConfigError('maxBuffered', `must be at least twice \`maxPayload\` (${2 * options.maxPayload} bytes), or no member could receive a message of the largest size; raise \`maxBuffered\` or lower \`maxPayload\``);
  }
  if (Boolean(options.tlsCert) !== Boolean(options.tlsKey)) {
    throw new ConfigError(options.tlsCert ? 'tlsKey' : 'tlsCert', 'TLS needs both a certificate (`tlsCert`) and its key (`tlsKey`)');
  }
  if (/[\r\n]/.test(options.contentSecurityPolicy)) {
    throw new ConfigError('contentSecurityPolicy', 'must be one line: a header value cannot hold a line break');
  }
  try {
    parseTrustedProxies(options.trustProxy);
  } catch (error) {
    throw new ConfigError('trustProxy', (error as Error).message);
  }
  if (!/^\/[^\s?#]*$/.test(options.path)) {
    throw new ConfigError('path', `must start with / and hold no spaces, ? or #, e.g. /plaza; got ${JSON.stringify(options.path)}`);
  }
  if (options.webhookUrl) {
    if (!/^https?:\/\/[^\s]+$/.test(options.webhookUrl) || !URL.canParse(options.webhookUrl)) {
      throw new ConfigError('webhookUrl', 'expected an http:// or https:// URL, e.g. https://app.example.com/plaza-events');
    }
    if (options.webhookSecret.length < 32) {
      throw new ConfigError('webhookSecret', `webhooks need a signing secret of at least 32 characters (got ${options.webhookSecret.length}); use a long random string, e.g. from \`openssl rand -hex 32\``);
    }
  }
  for (const origin of options.allowedOrigins) {
    if (!/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new ConfigError('allowedOrigins', `${JSON.stringify(origin)} is not an origin; write scheme://host[:port] with no path, e.g. https://example.com`);
    }
  }
}

/** The token options beside --auth-secret: each makes sense with the others it needs. */
function checkTokenOptions(options: PlazaOptions): void {
  if (options.authJwksUrl && options.authPublicKey) {
    throw new ConfigError('authPublicKey', 'use either `authJwksUrl` (the provider\'s key set) or `authPublicKey` (one key), not both');
  }
  if (options.authJwksUrl) {
    const problem = jwksUrlProblem(options.authJwksUrl);
    if (problem) throw new ConfigError('authJwksUrl', problem);
  }
  const algorithms = algorithmsProblem(options.authAlgorithms);
  if (algorithms) throw new ConfigError('authAlgorithms', algorithms);
  for (const key of ['authRoomsClaim', 'authPublishClaim'] as const) {
    try {
      parseClaimPath(options[key]);
    } catch (error) {
      throw new ConfigError(key, `${(error as Error).message}; got ${JSON.stringify(options[key])}`);
    }
  }
  // These only shape token checks: without any, they would be silently ignored.
  if (!options.authSecret && !options.authJwksUrl && !options.authPublicKey) {
    for (const key of ['authIssuer', 'authAudience', 'authRoomsClaim', 'authPublishClaim'] as const) {
      if (options[key] !== DEFAULTS[key]) {
        throw new ConfigError(key, 'checks tokens, and no token is required: add `authSecret`, `authJwksUrl` or `authPublicKey`');
      }
    }
  }
}

function dropUndefined<T extends object>(object: T): Partial<T> {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined)) as Partial<T>;
}
