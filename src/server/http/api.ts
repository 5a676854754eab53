/**
 * The HTTP API under /api/, for an application's own servers and for operators: publish into
 * rooms, list rooms, read presence and history, disconnect clients. On only with --api-key
 * (`Authorization: Bearer <key>`); JSON in and out; every error is `{"error": {code, message}}`.
 * Routes, statuses and codes are listed in docs/operations.md.
 *
 * Bearer authentication also makes the API immune to cross-site request forgery: a page on
 * another origin can make a browser send cookies, never an Authorization header.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode } from '../../shared/protocol.js';
import { BackplaneError } from '../rooms/backplane/types.js';
import type { Publisher, PublishOnce } from '../rooms/broker.js';
import { idempotencyOf, type Idempotency } from './idempotency.js';
import type { Authorizer, HttpContext } from './context.js';
import { allowMethods, HttpError, sendJson, sendJsonText } from './respond.js';
import { isObject, MAX_JSON_DEPTH, nestsWithin, own } from '../../shared/json.js';
import { reservedRoomProblem, roomNameProblem } from '../../shared/room-name.js';
import { MAX_BROADCAST_ROOMS } from '../bounds.js';


/** The sender of messages published through the API, as v1 clients see it in `from`. */
const API_PUBLISHER: Publisher = { fromJson: '{"session":"api","name":"api"}' };

/** A WebSocket close reason must fit in 123 bytes of UTF-8 (RFC 6455 §5.5). */
const MAX_CLOSE_REASON = 123;
const DEFAULT_CLOSE_REASON = 'disconnected by the operator';

type Handler = (req: IncomingMessage, res: ServerResponse, room: string | undefined) => Promise<void> | void;

interface Route {
  readonly pattern: RegExp;
  /** The path as logged: room names stay out of the log. */
  readonly name: string;
  readonly method: 'GET' | 'POST';
  readonly handler: Handler;
}

function badRequest(message: string, code: ErrorCode = ErrorCode.BadRequest): HttpError {
  return new HttpError(400, code, message);
}

function roomName(value: unknown, maxRoomName: number): string {
  const problem = roomNameProblem(value, maxRoomName);
  if (problem !== undefined) throw badRequest(problem, ErrorCode.BadRoom);
  return value as string;
}

/** The server's own rooms (`plaza:…`) take no messages from the API: 403, like a client's publish. */
function refuseReserved(room: string): void {
  const problem = reservedRoomProblem(room, 'publish');
  if (problem !== undefined) throw new HttpError(403, ErrorCode.Forbidden, problem);
}

/**
 * Reads a JSON body of at most `limit` bytes. A declared Content-Length over the limit is refused
 * before a byte is read; a chunked body is refused as soon as it passes the limit, and the rest is
 * discarded unbuffered while the answer goes out (the connection is then closed).
 */
function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    return Promise.reject(new HttpError(415, 'unsupported_media_type', 'send the body as JSON with Content-Type: application/json'));
  }
  const tooLarge = () => new HttpError(413, ErrorCode.TooLarge, `the body is larger than ${limit} bytes (--api-max-body)`, { Connection: 'close' });
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) {
    req.resume();
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes <= limit) return void chunks.push(chunk);
      req.off('data', onData);
      req.resume();
      chunks.length = 0;
      reject(tooLarge());
    };
    req.on('data', onData);
    // The client went away mid-body: nobody will read the answer, but the promise must settle.
    req.on('error', () => reject(badRequest('the request body was cut off')));
    req.on('end', () => {
      if (bytes > limit) return;
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(badRequest('the body is not valid JSON', ErrorCode.BadJson));
      }
    });
  });
}

async function readObject(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const body = await readJson(req, limit);
  if (!isObject(body)) throw badRequest('the body must be a JSON object');
  return body;
}

/** A query parameter that must be an integer ≥ 0 when present. */
function integerParam(params: URLSearchParams, name: string): number | undefined {
  const text = params.get(name);
  if (text === null) return undefined;
  const value = /^\d{1,15}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value)) throw badRequest(`"${name}" must be an integer ≥ 0`);
  return value;
}

export function createApi(context: HttpContext, authorize: Authorizer) {
  const { broker, options } = context;

  /** `data` as it will be published; refused past --max-payload like a client's message. */
  function publishable(body: Record<string, unknown>): unknown {
    const data = own(body, 'data');
    if (data === undefined) throw badRequest('"data" is required (any JSON value)');
    if (!nestsWithin(data, MAX_JSON_DEPTH)) throw badRequest(`"data" nests deeper than ${MAX_JSON_DEPTH} levels`);
    if (Buffer.byteLength(JSON.stringify(data)) > options.maxPayload) {
      throw new HttpError(413, ErrorCode.TooLarge, `"data" is larger than ${options.maxPayload} bytes (--max-payload)`);
    }
    return data;
  }

  /**
   * Publishes like a client; in a cluster this waits for Redis to sequence and deliver the
   * message. With an Idempotency-Key, a repeat answers the first place (`duplicate: true`), and
   * a repeat with another body is refused with 422 (idempotency.ts).
   */
  async function publishTo(room: string, data: unknown, once: Idempotency | undefined) {
    const published = await broker.publish(room, { kind: 'json', data }, API_PUBLISHER, undefined, once && ({ publishId: once.publishId, fingerprint: once.fingerprint } satisfies PublishOnce));
    if (once && published.duplicate && published.fingerprint !== once.fingerprint) throw once.mismatch();
    return published;
  }

  /**
   * `"ephemeral": true` in the body (issue #22, item 8): to the members of the moment only. It
   * has no place to remember an Idempotency-Key by, so the two together are refused.
   */
  function ephemeralOf(req: IncomingMessage, body: Record<string, unknown>): boolean {
    const ephemeral = own(body, 'ephemeral');
    if (ephemeral === undefined || ephemeral === false) return false;
    if (ephemeral !== true) throw badRequest('"ephemeral" must be true or false');
    if (req.headers['idempotency-key'] !== undefined) throw badRequest('an ephemeral publish takes no Idempotency-Key: it is sent once, to the members there now');
    return true;
  }

  async function publishEphemeralTo(room: string, data: unknown) {
    const delivered = await broker.publishEphemeral(room, { kind: 'json', data }, API_PUBLISHER);
    return { room, ephemeral: true, delivered };
  }

  /** The fields of one room's answer: a repeat says so, and nothing was delivered by it. */
  function answerOf(room: string, published: { offset: number; epoch: string; delivered: number; duplicate?: boolean }) {
    return { room, offset: published.offset, epoch: published.epoch, delivered: published.delivered, ...(published.duplicate && { duplicate: true }) };
  }

  /** What the backplane refused, as an HTTP error: 503 with the same code a client would get. */
  function refused(error: unknown): HttpError {
    if (error instanceof BackplaneError) return new HttpError(503, error.code, error.message);
    throw error;
  }

  const publish: Handler = async (req, res) => {
    const body = await readObject(req, options.apiMaxBody);
    const room = roomName(own(body, 'room'), options.maxRoomName);
    refuseReserved(room);
    const data = publishable(body);
    if (ephemeralOf(req, body)) {
      const answer = await publishEphemeralTo(room, data).catch((error: unknown) => {
        throw refused(error);
      });
      return sendJson(res, 200, answer);
    }
    const once = idempotencyOf(req, { room, data });
    const published = await publishTo(room, data, once).catch((error: unknown) => {
      throw refused(error);
    });
    context.flushHistory();
    if (published.duplicate) res.setHeader('Idempotent-Replayed', 'true');
    sendJson(res, 200, answerOf(room, published));
  };

  const broadcast: Handler = async (req, res) => {
    const body = await readObject(req, options.apiMaxBody);
    const list = own(body, 'rooms');
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_BROADCAST_ROOMS) {
      throw badRequest(`"rooms" must be an array of 1 to ${MAX_BROADCAST_ROOMS} room names`);
    }
    const rooms = list.map((room) => roomName(room, options.maxRoomName));
    if (new Set(rooms).size !== rooms.length) throw badRequest('"rooms" must not name a room twice');
    rooms.forEach(refuseReserved);
    const data = publishable(body);
    if (ephemeralOf(req, body)) {
      const results = [];
      for (const room of rooms) results.push(await publishEphemeralTo(room, data).catch((error: unknown) => ({ room, error: errorOf(refused(error)) })));
      return sendJson(res, 200, { results });
    }
    // The key names the broadcast: each room keeps it in its own window, with the whole body's fingerprint.
    const once = idempotencyOf(req, { rooms, data });
    if (once) {
      // Checked for every room first, so a key reused with another body publishes in none of them.
      for (const room of rooms) {
        const first = await broker.firstAck(room, once.publishId).catch(() => undefined);
        if (first && first.fingerprint !== once.fingerprint) throw once.mismatch();
      }
    }
    // Each room on its own: a room that cannot take the message does not undo the others.
    const results = [];
    let replayed = false;
    for (const room of rooms) {
      try {
        const published = await publishTo(room, data, once);
        replayed ||= published.duplicate === true;
        results.push(answerOf(room, published));
      } catch (error) {
        if (error instanceof HttpError) throw error;
        const { code, message } = refused(error);
        results.push({ room, error: { code, message } });
      }
    }
    context.flushHistory();
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    sendJson(res, 200, { results });
  };

  function errorOf({ code, message }: HttpError) {
    return { code, message };
  }

  const rooms: Handler = async (_req, res) => {
    const list = await broker.backplane.rooms().catch((error: unknown) => {
      throw refused(error);
    });
    list.sort((a, b) => b.members - a.members || (a.room < b.room ? -1 : a.room > b.room ? 1 : 0));
    sendJson(res, 200, { rooms: list });
  };

  const presence: Handler = async (_req, res, name) => {
    const validName = roomName(name, options.maxRoomName);
    const listed = await broker.backplane.members(validName, options.maxPresence);
    // The user id is shown for members of this node (their token's `sub`); other nodes store theirs.
    const users = new Map<string, string>();
    for (const member of broker.hub.room(validName)?.members ?? []) if (member.userId !== undefined) users.set(member.id, member.userId);
    const members = listed.members.map((member) => {
      const user = users.get(member.session) ?? (member as { user?: string }).user;
      return user === undefined ? { session: member.session, name: member.name } : { session: member.session, name: member.name, user };
    });
    sendJson(res, 200, { room: validName, members, memberCount: listed.count });
  };

  const history: Handler = async (req, res, name) => {
    const room = roomName(name, options.maxRoomName);
    const url = req.url ?? '';
    const params = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');
    const since = integerParam(params, 'since') ?? 0;
    const limit = Math.min(integerParam(params, 'limit') ?? options.historySize, options.historySize);
    const page = await broker.backplane.history(room, since, limit).catch((error: unknown) => {
      throw refused(error);
    });
    if (!page) throw new HttpError(404, 'not_found', `room ${JSON.stringify(room)} has no history`);
    // Complete: nothing between `since` and the first message returned was trimmed away.
    const head = JSON.stringify({ room, epoch: page.epoch, lastOffset: page.lastOffset, complete: page.complete });
    // Stored envelopes are JSON already: spliced in, not parsed and encoded again.
    sendJsonText(res, 200, `${head.slice(0, -1)},"messages":[${page.messages.join(',')}]}`);
  };

  const disconnect: Handler = async (req, res) => {
    const body = await readObject(req, options.apiMaxBody);
    const session = own(body, 'session');
    const user = own(body, 'user');
    const reason = own(body, 'reason') ?? DEFAULT_CLOSE_REASON;
    if (session !== undefined && typeof session !== 'string') throw badRequest('"session" must be a string');
    if (user !== undefined && typeof user !== 'string') throw badRequest('"user" must be a string');
    // Never "everyone": a body without a selector is a mistake, not a request to empty the server.
    if (session === undefined && user === undefined) throw badRequest('give "session", "user" or both to choose whom to disconnect');
    if (typeof reason !== 'string') throw badRequest('"reason" must be a string');
    // Control characters would let a reason forge lines where clients show or log it.
    const cleanReason = reason.replace(/[\p{Cc}\p{Cf}]/gu, '');
    if (Buffer.byteLength(cleanReason) > MAX_CLOSE_REASON) throw badRequest(`"reason" must fit in ${MAX_CLOSE_REASON} bytes of UTF-8`);
    const disconnected = await broker.backplane.disconnect({ session, user, reason: cleanReason }).catch((error: unknown) => {
      throw refused(error);
    });
    context.logger.info('operator disconnected clients', { disconnected, by: session !== undefined ? 'session' : 'user' });
    sendJson(res, 200, { disconnected });
  };

  const ROOM = '/api/rooms/(.+)';
  const routes: Route[] = [
    { pattern: /^\/api\/publish$/, name: '/api/publish', method: 'POST', handler: publish },
    { pattern: /^\/api\/broadcast$/, name: '/api/broadcast', method: 'POST', handler: broadcast },
    { pattern: /^\/api\/rooms$/, name: '/api/rooms', method: 'GET', handler: rooms },
    // Greedy: a room name may itself contain "/presence" or "/history".
    { pattern: new RegExp(`^${ROOM}/presence$`), name: '/api/rooms/:room/presence', method: 'GET', handler: presence },
    { pattern: new RegExp(`^${ROOM}/history$`), name: '/api/rooms/:room/history', method: 'GET', handler: history },
    { pattern: /^\/api\/disconnect$/, name: '/api/disconnect', method: 'POST', handler: disconnect },
  ];

  /** Answers one request under /api/; `path` is already percent-decoded. Errors are thrown as HttpError. */
  return async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const startedAt = Date.now();
    let route: Route | undefined;
    res.once('finish', () => {
      context.metrics.countIn(context.metrics.apiRequests, res.statusCode);
      // Method, route and status only: never the key, the body or a room name.
      const fields = { method: req.method, route: route?.name ?? 'unknown', status: res.statusCode, ms: Date.now() - startedAt, remote: context.clientAddress(req) };
      context.logger.debug('api request', fields);
    });
    if (!options.apiKey) throw new HttpError(404, 'not_found', 'the HTTP API is off: start the server with --api-key');
    authorize(req, 'api');
    let match: RegExpExecArray | null = null;
    route = routes.find((candidate) => (match = candidate.pattern.exec(path)) !== null);
    if (!route || !match) throw new HttpError(404, 'not_found', 'no such endpoint; see docs/operations.md for the routes');
    allowMethods(req, [route.method]);
    await route.handler(req, res, (match as RegExpExecArray)[1]);
  };
}
