/**
 * The server-sent-events side of a node: `GET <sse>` opens a stream, `POST <sse>/<stream>`
 * brings it requests (carried from another node when it holds the stream: relay.ts), `OPTIONS`
 * answers a page of another origin; heartbeats, token deadlines and --welcome; mounted on the
 * HTTP server beside the routes and taken off it again. What a client asks is sessions/' business.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { CloseCode } from '../../shared/protocol.js';
import { streamPath, SEQ_EXPECTED_HEADER } from '../../shared/sse.js';
import { parseTarget } from '../access/request-target.js';
import { encodeEnvelope } from '../engine/envelope.js';
import { encodeSseEnvelope } from '../engine/sse-event.js';
import type { NodeMail } from '../rooms/backplane/types.js';
import { joinFor, welcomeOf, type OwnJoin } from '../sessions/commands.js';
import type { Admission, ConnectionContext } from '../sessions/context.js';
import { createDoor, type Verdict } from '../sessions/door.js';
import { ExpiryQueue } from '../sessions/expiry-queue.js';
import type { Side } from '../sessions/side.js';
import type { SideParts } from '../sessions/side-parts.js';
import { codeOfStatus, Cors, sendStreamError, sendTaken } from './answers.js';
import { readOpening, type Opening } from './opening.js';
import { bearerOf, readPost, type Post } from './post.js';
import { Relay, type CarriedPost, type RelayAnswer } from './relay.js';
import { Stream } from './stream.js';
import { takeSocket } from './takeover.js';

/** How long a browser's EventSource waits before it reconnects by itself. */
const RETRY_MS = 2000;

/** Streams sent their `close` event per event-loop turn on shutdown, so a big server stays responsive. */
const CLOSE_BATCH = 500;

async function until(done: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

/**
 * The SSE side, made from the parts every side shares (sessions/side.ts) and, in a cluster, the
 * backplane's mail between nodes (relay.ts).
 */
export function createStreamSide(shared: SideParts, mail?: NodeMail): Side & { readonly relay: Relay | undefined } {
  const parts = { ...shared, door: createDoor(shared), streams: shared.group<Stream>(), mail };
  const { options, metrics, streams } = parts;
  const base = streamPath(options.path);
  const cors = new Cors(options.allowedOrigins);
  /** Open streams by their secret id: bounded by --max-connections, as they count there. */
  const byId = new Map<string, Stream>();
  // The node part of a stream id says which node holds it, so a POST elsewhere knows where to go.
  const nodeTag = parts.mail?.nodeId ?? randomBytes(6).toString('base64url');
  const expiries = new ExpiryQueue<Stream>((stream) => stream.close(CloseCode.TokenExpired, 'token expired: reconnect with a fresh token'));
  const context: ConnectionContext<Stream> = {
    broker: parts.broker, outbox: parts.outbox, logger: parts.logger, options, connections: streams, metrics,
    limits: parts.limits, expiries, sessionIds: parts.sessionIds,
    onClosed: (stream, code) => {
      byId.delete(stream.streamId);
      parts.disconnected(stream, code);
    },
  };
  const retry = Buffer.from(`retry: ${RETRY_MS}\n\n`);
  const notice = options.welcome ? encodeSseEnvelope(JSON.stringify({ type: 'notice', text: options.welcome })) : undefined;
  const beatComment = Buffer.from(': beat\n\n');
  const beatEvent = encodeSseEnvelope('{"type":"beat"}');
  let heartbeat: NodeJS.Timeout | undefined;
  let attached = false;
  let detaching: Promise<void> | undefined;

  const relay = parts.mail ? new Relay(parts.mail, options, parts.logger, metrics, (streamId, post) => takeHere(streamId, post)) : undefined;

  function refuse(request: IncomingMessage, response: ServerResponse, verdict: Exclude<Verdict, { admit: Admission }>): void {
    metrics.countIn(metrics.streamRejections, verdict.status);
    sendStreamError(response, cors, request, verdict.status, codeOfStatus(verdict.status), verdict.message, verdict.headers);
  }

  // ---- GET <sse>: a new stream ----

  function open(request: IncomingMessage, response: ServerResponse, target: URL): void {
    const opening = readOpening(target, request, options);
    if ('code' in opening) {
      metrics.countIn(metrics.streamRejections, 400);
      return sendStreamError(response, cors, request, 400, opening.code, opening.message);
    }
    const verdict = parts.door(request, {
      token: bearerOf(request) ?? target.searchParams.get('token'),
      key: target.searchParams.get('key'),
      missingToken: `a token is required: open ${base}?token=<signed token>`,
    });
    if (!(verdict instanceof Promise)) return decide(request, response, opening, verdict);
    verdict.then(
      (decided) => decide(request, response, opening, decided),
      (error: unknown) => {
        parts.logger.error('stream failed at the door', { error: error instanceof Error ? error.stack : String(error) });
        response.destroy();
      },
    );
  }

  function decide(request: IncomingMessage, response: ServerResponse, opening: Opening, verdict: Verdict): void {
    // The client may have given up while the door decided.
    if (request.socket.destroyed) return;
    if (!('admit' in verdict)) return refuse(request, response, verdict);
    if (!parts.isAccepting()) return refuse(request, response, { status: 503, message: 'server is shutting down; retry shortly', headers: { 'Retry-After': '5' } });
    start(request, response, opening, verdict.admit);
  }

  function start(request: IncomingMessage, response: ServerResponse, opening: Opening, admission: Admission): void {
    // No chunked framing: the body is the events, written straight to the socket by the outbox,
    // and it ends when the connection does.
    response.useChunkedEncodingByDefault = false;
    response.writeHead(200, {
      ...cors.headersFor(request),
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      'X-Accel-Buffering': 'no',
      'X-Content-Type-Options': 'nosniff',
      Connection: 'close',
    });
    response.flushHeaders();
    // From here the stream holds its socket and nothing of the request (takeover.ts).
    const socket = takeSocket(request, response) ?? request.socket;
    socket.setNoDelay(true);
    // Nothing comes back on a stream: TCP keepalive is what notices a peer that vanished.
    if (options.heartbeatMs > 0) socket.setKeepAlive(true, options.heartbeatMs);
    const stream = new Stream(context, socket, admission, `${nodeTag}.${randomBytes(16).toString('base64url')}`);
    byId.set(stream.streamId, stream);
    stream.beats = opening.beats;
    if (opening.name !== undefined) stream.setName(opening.name);
    const expiresAt = admission.grant?.expiresAt;
    if (expiresAt !== undefined) expiries.add(stream, expiresAt);
    stream.deliver(retry);
    stream.reply(encodeEnvelope(welcomeOf(stream, undefined)));
    if (notice) stream.deliver(notice);
    parts.connected(stream);
    const joins = ownJoins(opening);
    if (joins.length > 0) stream.startWith(joinInTurn(stream, joins));
  }

  /** The URL's rooms, then those only `Last-Event-ID` names: each resumed where it names one. */
  function ownJoins(opening: Opening): OwnJoin[] {
    const positions = new Map((opening.cursor ?? []).map((entry) => [entry.room, entry]));
    const rooms = [...opening.rooms, ...(opening.cursor ?? []).map((entry) => entry.room).filter((room) => !opening.rooms.includes(room))];
    return rooms.map((room) => {
      const at = positions.get(room);
      return {
        type: 'join',
        id: `open:${room}`,
        room,
        ...(opening.presence && { presence: true }),
        ...(opening.history !== undefined && { history: opening.history }),
        ...(at ? { since: { epoch: at.epoch, offset: at.offset } } : opening.cursor ? { noPosition: true } : {}),
      };
    });
  }

  async function joinInTurn(stream: Stream, joins: readonly OwnJoin[]): Promise<void> {
    for (const join of joins) {
      if (!stream.isOpen()) return;
      await joinFor(stream, join);
    }
  }

  // ---- POST <sse>/<stream>: requests ----

  function post(request: IncomingMessage, response: ServerResponse, target: URL, streamId: string): void {
    if (!cors.allows(request)) return refuse(request, response, { status: 403, message: 'this origin may not connect; ask the operator to add it to --allowed-origins' });
    readPost(request, target, options.maxPayload).then(
      (read) => {
        if ('status' in read) {
          metrics.countIn(metrics.streamRejections, read.status);
          if (read.status === 413) response.shouldKeepAlive = false;
          return sendStreamError(response, cors, request, read.status, read.code, read.message);
        }
        const verdict = parts.door(request, { token: read.token, key: null, uncapped: true, missingToken: 'a token is required: send Authorization: Bearer <signed token>' });
        if (!(verdict instanceof Promise)) return admitted(request, response, streamId, read, verdict);
        verdict.then((decided) => admitted(request, response, streamId, read, decided), (error: unknown) => fail(response, error));
      },
      (error: unknown) => fail(response, error),
    );
  }

  function fail(response: ServerResponse, error: unknown): void {
    parts.logger.error('stream POST failed', { error: error instanceof Error ? error.stack : String(error) });
    response.destroy();
  }

  function admitted(request: IncomingMessage, response: ServerResponse, streamId: string, read: Post, verdict: Verdict): void {
    if (!('admit' in verdict)) return refuse(request, response, verdict);
    const post = { ...read, user: verdict.admit.grant?.userId };
    const here = takeHere(streamId, post);
    if (here) return answer(request, response, here);
    if (!relay || relay.isLocal(streamId)) return answer(request, response, UNKNOWN);
    relay.carry(streamId, post).then((answered) => answer(request, response, answered), (error: unknown) => fail(response, error));
  }

  /** Takes a POST for a stream this node holds; undefined when it holds none by that id. */
  function takeHere(streamId: string, post: CarriedPost): RelayAnswer | undefined {
    const stream = byId.get(streamId);
    if (!stream) return undefined;
    if (stream.userId !== post.user) return { status: 403, code: 'foreign_stream', message: 'this stream was opened with another user\'s token' };
    const taken = stream.take(post.seq, post.lines);
    switch (taken.status) {
      case 204:
        return { status: 204, ...(taken.duplicate && { duplicate: true }) };
      case 409:
        return { status: 409, code: 'out_of_order', message: `Plaza-Seq ${post.seq} came before ${taken.expected}; send ${taken.expected} first`, expected: taken.expected };
      case 429:
        return { status: 429, code: 'rate_limited', message: 'too many requests of this stream are waiting; send this POST again shortly', retryAfter: 1 };
      case 404:
        return UNKNOWN;
    }
  }

  function answer(request: IncomingMessage, response: ServerResponse, answered: RelayAnswer): void {
    if (answered.status === 204) return sendTaken(response, cors, request, answered.duplicate === true);
    metrics.countIn(metrics.streamRejections, answered.status);
    const headers: Record<string, string> = {};
    if (answered.expected !== undefined) headers[SEQ_EXPECTED_HEADER] = String(answered.expected);
    if (answered.retryAfter !== undefined) headers['Retry-After'] = String(answered.retryAfter);
    sendStreamError(response, cors, request, answered.status, answered.code ?? codeOfStatus(answered.status), answered.message ?? '', headers);
  }

  // ---- the side ----

  function handle(request: IncomingMessage, response: ServerResponse): boolean {
    const url = request.url ?? '/';
    if (!url.startsWith(base)) return false;
    const target = parseTarget(url);
    if (!target) return false;
    const path = target.pathname;
    const isStream = path === base;
    const streamId = !isStream && path.startsWith(`${base}/`) ? path.slice(base.length + 1) : undefined;
    if (!isStream && streamId === undefined) return false;
    if (!attached) return false;
    const method = request.method ?? 'GET';
    if (method === 'OPTIONS') {
      cors.preflight(request, response);
      return true;
    }
    if (isStream && method === 'GET') open(request, response, target);
    else if (streamId !== undefined && method === 'POST') post(request, response, target, streamId);
    else {
      metrics.countIn(metrics.streamRejections, 405);
      sendStreamError(response, cors, request, 405, 'method_not_allowed', isStream ? `open a stream with GET ${base}` : `send requests with POST ${base}/<stream>`, { Allow: isStream ? 'GET, OPTIONS' : 'POST, OPTIONS' });
    }
    return true;
  }

  function attach(_server: Server | HttpsServer): void {
    if (attached) throw new Error('the SSE side is already attached to a server');
    attached = true;
    relay?.start();
    if (options.heartbeatMs > 0) {
      heartbeat = setInterval(() => {
        for (const stream of streams) if (stream.isWritable()) stream.deliver(stream.beats ? beatEvent : beatComment);
      }, options.heartbeatMs);
      heartbeat.unref();
    }
  }

  async function closeAll(graceMs: number): Promise<void> {
    clearInterval(heartbeat);
    expiries.clear();
    let batch = 0;
    for (const stream of [...streams]) {
      stream.close(CloseCode.GoingAway, 'server shutting down');
      if (++batch % CLOSE_BATCH === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await until(() => streams.size === 0, graceMs);
    for (const stream of streams) stream.socket.destroy();
    await until(() => streams.size === 0, 1000);
    relay?.stop();
    attached = false;
  }

  return {
    name: 'sse',
    get size() {
      return streams.size;
    },
    relay,
    attach,
    detach: (graceMs) => (detaching ??= closeAll(graceMs)),
    handle,
  };
}

const UNKNOWN: RelayAnswer = { status: 404, code: 'unknown_stream', message: 'no open stream has this id; open a new stream' };
