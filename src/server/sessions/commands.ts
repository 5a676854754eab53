/**
 * sessions/ — what a client session is and does, whatever transport carries its frames: its
 * requests (hello, join, leave, publish) parsed and answered, its rate buckets, session ids,
 * token deadlines, the caps per address, and the Side interface every transport implements.
 * It may import rooms/, the engine, access/, hooks/, src/shared, config and logger; never a
 * transport (websocket/), http/ or node/.
 *
 * This file: what a plaza.v1 client can ask, and the answers. Requests arrive already validated
 * (requests.ts); everything here is about the room registry and history.
 */
import { ErrorCode, type AppErrorCode, type UnrecoveredReason, type ClientMessage, type HelloRequest, type JoinRequest, type LeaveRequest, type PublishRequest, type Welcome, type WithdrawRequest } from '../../shared/protocol.js';
import { reservedRoomProblem } from '../../shared/room-name.js';
import { BackplaneError } from '../rooms/backplane/types.js';
import type { JoinResult, Published, Publisher } from '../rooms/broker.js';
import type { RequestId } from '../engine/envelope.js';
import type { Member } from '../engine/hub.js';
import type { Payload } from '../engine/publication.js';
import type { Joined } from '../../shared/protocol.js';
import type { Admission, ConnectionContext } from './context.js';

/** What a request handler needs of the connection it answers (connection.ts implements it). */
export interface Requester extends Member, Publisher {
  readonly context: Pick<ConnectionContext, 'broker' | 'options' | 'logger'>;
  readonly admission: Admission;
  readonly isOperator: boolean;
  setName(name: string): void;
  reply(json: string): void;
  replyError(id: RequestId, code: ErrorCode, message: string): void;
  /** Answers with the application's refusal (a hook's code): never held against the client. */
  replyRefusal(id: RequestId, code: ErrorCode | AppErrorCode, message: string): void;
  replyJoined(reply: Omit<Joined, 'messages'>, messages: readonly string[]): void;
  /** A bug while answering: closes this connection (1011), never the process. */
  fail(error: unknown): void;
  /** An SSE stream's id, told in its `welcome`s (the WebSocket has none). */
  readonly streamId?: string;
}

/**
 * A join the server makes for the client (an SSE stream's `?room=` on opening): with
 * `noPosition`, its `Last-Event-ID` named other rooms and not this one, so the answer says it
 * could not resume (`no_position`).
 */
export type OwnJoin = JoinRequest & { noPosition?: boolean };
import { encodeEnvelope } from '../engine/envelope.js';
import { fenceOf, lowerFence, raiseFence } from './publish-fences.js';

/** Handles one request; returns a promise while the answer waits on the cluster. */
export function handleRequest(connection: Requester, request: ClientMessage): void | Promise<void> {
  switch (request.type) {
    case 'hello':
      return hello(connection, request);
    case 'join':
      return join(connection, request);
    case 'leave':
      return leave(connection, request);
    case 'publish':
      return publish(connection, request);
    case 'withdraw':
      return withdraw(connection, request);
  }
}

function hello(connection: Requester, request: HelloRequest): void {
  if (request.name !== undefined) connection.setName(request.name);
  connection.reply(encodeEnvelope(welcomeOf(connection, request.id)));
}

/** The `welcome` that answers a `hello` (and opens an SSE stream, without an id). */
export function welcomeOf(connection: Requester, id: RequestId): Welcome {
  const options = connection.context.options;
  const welcome: Welcome = {
    type: 'welcome',
    ...(id === undefined ? {} : { id }),
    session: connection.id,
    ...(connection.streamId !== undefined && { stream: connection.streamId }),
    name: connection.name,
    limits: {
      maxPayload: options.maxPayload,
      maxRoomsPerConnection: options.maxRoomsPerConnection,
      maxRoomName: options.maxRoomName,
      historySize: options.historySize,
      rate: { perSecond: options.rateLimit, burst: options.rateBurst },
    },
    heartbeat: options.heartbeatMs,
  };
  return welcome;
}

/** Joins on the client's behalf (see OwnJoin); resolves once answered. */
export function joinFor(connection: Requester, request: OwnJoin): Promise<void> {
  return join(connection, request);
}

async function join(connection: Requester, request: OwnJoin): Promise<void> {
  const reserved = reservedRoomProblem(request.room, 'join', connection.context.options.status || connection.isOperator);
  if (reserved !== undefined) return connection.replyError(request.id, ErrorCode.Forbidden, reserved);
  const grant = connection.admission.grant;
  if (grant && !grant.mayJoin(request.room)) {
    return connection.replyError(request.id, ErrorCode.Forbidden, `your token does not allow joining ${JSON.stringify(request.room)}`);
  }
  const result = await connection.context.broker.join(connection, request.room, request.presence === true);
  // Undefined: the connection closed while the join waited; nobody is left to answer.
  if (result) answerJoin(connection, request, result);
}

/** Builds the reply in one synchronous step after the join, so nothing live can come between. */
function answerJoin(connection: Requester, request: OwnJoin, result: JoinResult): void {
  const broker = connection.context.broker;
  if (!result.ok && result.byHook) return connection.replyRefusal(request.id, result.code, result.message);
  if (!result.ok) return connection.replyError(request.id, result.code, result.message);
  const { room, log, members } = result;
  let entries: readonly { json: string }[] = [];
  let recovery: { recovered: boolean; reason?: UnrecoveredReason } | undefined;
  if (request.since) {
    const outcome = broker.recover(log, request.since);
    recovery = outcome.recovered ? { recovered: true } : { recovered: false, reason: outcome.reason };
    if (outcome.recovered) entries = outcome.entries;
  } else if (request.noPosition) recovery = { recovered: false, reason: 'no_position' };
  // Recent messages for a late joiner, or as the fallback when a resume failed.
  if (request.history && (!recovery || !recovery.recovered)) entries = broker.recent(log, request.history);
  const reply = {
    type: 'joined' as const,
    ...(request.id === undefined ? {} : { id: request.id }),
    room: room.name,
    epoch: log.epoch,
    offset: log.lastOffset,
    ...recovery,
    ...(members && { members: members.members, memberCount: members.count }),
  };
  connection.replyJoined(reply, entries.map((entry) => entry.json));
}

function leave(connection: Requester, request: LeaveRequest): void {
  const room = connection.context.broker.hub.room(request.room);
  if (!room || !room.members.has(connection)) return connection.replyError(request.id, ErrorCode.NotJoined, `not in room ${JSON.stringify(request.room)}`);
  connection.context.broker.leave(connection, room);
  connection.reply(encodeEnvelope({ type: 'left', ...(request.id === undefined ? {} : { id: request.id }), room: request.room }));
}

/**
 * Without an onPublish hook, never makes the connection wait: the ack is sent when the backplane
 * has delivered the message here. In a cluster the publishes of one connection travel to Redis
 * in order on one pipelined link, so their offsets, deliveries and acks keep that order without
 * a round trip each. With the hook, the connection's next request waits until the hook decided
 * and this message was handed to the backplane, so no publish overtakes an earlier one.
 */
function publish(connection: Requester, request: PublishRequest): void | Promise<void> {
  const broker = connection.context.broker;
  if (!isMember(connection, request.room)) return notJoined(connection, request);
  // A status watcher is a member of the status room, and still only watches it.
  const reserved = reservedRoomProblem(request.room, 'publish');
  if (reserved !== undefined) return connection.replyError(request.id, ErrorCode.Forbidden, reserved);
  const grant = connection.admission.grant;
  if (grant && !grant.mayPublish(request.room)) {
    return connection.replyError(request.id, ErrorCode.Forbidden, `your token does not allow publishing to ${JSON.stringify(request.room)}`);
  }
  // No place in the room's order, so no fence: it cannot land before or after a retried publish.
  if (request.ephemeral) return publishEphemeral(connection, request);
  const fence = fenceOf(connection, request.room);
  if (fence !== undefined) {
    if (request.publishId !== fence) {
      return connection.replyError(request.id, ErrorCode.Unavailable, 'an earlier publish of yours to this room could not be taken; send it again first (this one was not sent)');
    }
    lowerFence(connection, request.room);
  }
  const payload: Payload = { kind: 'json', data: request.data };
  if (!broker.screensPublishes) return send(connection, request, payload);
  // A retry of a publish the hook already passed is answered without asking it again.
  if (request.publishId !== undefined) {
    return broker.firstAck(request.room, request.publishId).then(
      (first) => (first ? acknowledge(connection, request, { ...first, delivered: 0, duplicate: true }) : screenAndSend(connection, request, payload)),
      () => screenAndSend(connection, request, payload),
    );
  }
  return screenAndSend(connection, request, payload);
}

/**
 * An ephemeral publish (issue #22, item 8): the same rate limit (counted on arrival), grants and
 * onPublish hook as any publish, then to the members of the moment only.
 */
function publishEphemeral(connection: Requester, request: PublishRequest): void | Promise<void> {
  const broker = connection.context.broker;
  const payload: Payload = { kind: 'json', data: request.data };
  if (!broker.screensPublishes) return sendEphemeral(connection, request, payload);
  return broker.screen(request.room, payload, connection).then((screened) => {
    if (!screened.ok) return connection.replyRefusal(request.id, screened.code, screened.message);
    if (!isMember(connection, request.room)) return notJoined(connection, request);
    sendEphemeral(connection, request, screened.payload);
  });
}

function sendEphemeral(connection: Requester, request: PublishRequest, payload: Payload): void {
  const broker = connection.context.broker;
  broker.publishEphemeral(request.room, payload, connection, request.excludeSelf ? connection : undefined).then(
    () => {
      if (request.id !== undefined) connection.reply(encodeEnvelope({ type: 'ack', id: request.id, room: request.room, ephemeral: true }));
    },
    (error: unknown) => {
      if (!(error instanceof BackplaneError)) return connection.fail(error);
      connection.replyError(request.id, error.code, error.message);
    },
  );
}

/**
 * Settles a publish whose ack never came (issue #22, item 3): its first ack if it was published,
 * or `withdrawn`, after which no copy of it can be published. The connection's earlier requests
 * were answered first (they are handled in order), so its own copy of that publish, if it came,
 * has been decided by then.
 */
function withdraw(connection: Requester, request: WithdrawRequest): Promise<void> | void {
  if (!isMember(connection, request.room)) return connection.replyError(request.id, ErrorCode.NotJoined, `join room ${JSON.stringify(request.room)} before withdrawing a publish there`);
  const grant = connection.admission.grant;
  if (grant && !grant.mayPublish(request.room)) {
    return connection.replyError(request.id, ErrorCode.Forbidden, `your token does not allow publishing to ${JSON.stringify(request.room)}`);
  }
  // The fenced id will not come again: the fence waited for it, and this settles it.
  if (fenceOf(connection, request.room) === request.publishId) lowerFence(connection, request.room);
  return connection.context.broker.withdraw(request.room, request.publishId).then(
    (first) => {
      if (request.id === undefined) return;
      if (first) connection.reply(encodeEnvelope({ type: 'ack', id: request.id, room: request.room, offset: first.offset, epoch: first.epoch, duplicate: true }));
      else connection.reply(encodeEnvelope({ type: 'withdrawn', id: request.id, room: request.room, publishId: request.publishId }));
    },
    (error: unknown) => {
      if (!(error instanceof BackplaneError)) return connection.fail(error);
      connection.replyError(request.id, error.code, error.message);
    },
  );
}

function screenAndSend(connection: Requester, request: PublishRequest, payload: Payload): Promise<void> {
  const broker = connection.context.broker;
  return broker.screen(request.room, payload, connection).then((screened) => {
    if (!screened.ok) return connection.replyRefusal(request.id, screened.code, screened.message);
    // An operator's disconnect or a slow-consumer drop may have taken it out of the room meanwhile.
    if (!isMember(connection, request.room)) return notJoined(connection, request);
    send(connection, request, screened.payload);
  });
}

function acknowledge(connection: Requester, request: PublishRequest, done: Published): void {
  if (request.id === undefined) return;
  connection.reply(encodeEnvelope({ type: 'ack', id: request.id, room: request.room, offset: done.offset, epoch: done.epoch, ...(done.duplicate && { duplicate: true as const }) }));
}

function isMember(connection: Requester, name: string): boolean {
  return connection.context.broker.hub.room(name)?.members.has(connection) === true;
}

function notJoined(connection: Requester, request: PublishRequest): void {
  connection.replyError(request.id, ErrorCode.NotJoined, `join room ${JSON.stringify(request.room)} before publishing to it`);
}

/** Hands the message to the broker; the ack (or the backplane's refusal) follows when it resolves. */
function send(connection: Requester, request: PublishRequest, payload: Payload): void {
  const broker = connection.context.broker;
  const once = request.publishId === undefined ? undefined : { publishId: request.publishId };
  broker.publish(request.room, payload, connection, request.excludeSelf ? connection : undefined, once).then(
    (done) => acknowledge(connection, request, done),
    (error: unknown) => {
      if (!(error instanceof BackplaneError)) return connection.fail(error);
      connection.context.logger.debug('publish refused', { id: connection.id, code: error.code, error: error.message });
      connection.replyError(request.id, error.code, error.message);
      // A publish with an id will be sent again, and its later ones after it: until it comes,
      // none of them may land before it (publish-fences.ts).
      if (request.publishId !== undefined && error.code === ErrorCode.Unavailable) raiseFence(connection, request.room, request.publishId);
    },
  );
}
