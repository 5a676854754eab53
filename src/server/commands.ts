/**
 * What a plaza.v1 client can ask, and the answers. Requests arrive already validated
 * (requests.ts); everything here is about the room registry and history.
 */
import { ErrorCode, type Member, type ClientMessage, type HelloRequest, type JoinRequest, type LeaveRequest, type PublishRequest, type Welcome } from '../shared/protocol.js';
import { isNodeLocal, type JoinResult } from './broker.js';
import type { Room } from './hub.js';
import type { Connection } from './connection.js';
import { encodeEnvelope, joinedEnvelope } from './envelope.js';

/** Runs `then` on a value that may still be on its way (cluster mode), synchronously when it is not. */
export function settle<T>(value: T | Promise<T>, then: (value: T) => void, failed: (error: Error) => void): void | Promise<void> {
  if (!(value instanceof Promise)) return then(value);
  return value.then(then, failed);
}

/** Handles one request; returns a promise while the answer waits on the cluster. */
export function handleRequest(connection: Connection, request: ClientMessage): void | Promise<void> {
  switch (request.type) {
    case 'hello':
      return hello(connection, request);
    case 'join':
      return join(connection, request);
    case 'leave':
      return leave(connection, request);
    case 'publish':
      return publish(connection, request);
  }
}

function hello(connection: Connection, request: HelloRequest): void {
  if (request.name !== undefined) connection.setName(request.name);
  const options = connection.context.options;
  const welcome: Welcome = {
    type: 'welcome',
    ...(request.id === undefined ? {} : { id: request.id }),
    session: connection.id,
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
  connection.reply(encodeEnvelope(welcome));
}

function unavailable(connection: Connection, id: JoinRequest['id']) {
  return (error: Error) => {
    connection.context.logger.warn('cluster request failed', { id: connection.id, error: error.message });
    connection.replyError(id, ErrorCode.Unavailable, 'the cluster backplane is unreachable right now; retry shortly');
  };
}

function join(connection: Connection, request: JoinRequest): void | Promise<void> {
  const broker = connection.context.broker;
  const grant = connection.admission.grant;
  if (grant && !grant.mayJoin(request.room)) {
    return connection.replyError(request.id, ErrorCode.Forbidden, `your token does not allow joining ${JSON.stringify(request.room)}`);
  }
  if (!connection.context.statusFeed.mayJoin(connection, request.room)) {
    return connection.replyError(request.id, ErrorCode.Forbidden, 'the status room needs the API key: connect with ?key=<API key>');
  }
  const cluster = broker.cluster;
  // The cluster-wide member list is read before joining, so the reply can still be built in
  // one synchronous step that nothing live can overtake.
  if (request.presence && cluster?.online && !isNodeLocal(request.room)) {
    const limit = connection.context.options.maxPresence;
    return cluster.members(request.room, limit).then(
      (snapshot) => settle(broker.join(connection, request.room, true), (result) => answerJoin(connection, request, result, snapshot), unavailable(connection, request.id)),
      unavailable(connection, request.id),
    );
  }
  return settle(broker.join(connection, request.room, request.presence === true), (result) => answerJoin(connection, request, result), unavailable(connection, request.id));
}

function answerJoin(connection: Connection, request: JoinRequest, result: JoinResult, snapshot?: { members: Member[]; count: number }): void {
  const broker = connection.context.broker;
  if (!result.ok) return connection.replyError(request.id, result.code, result.message);
  const { room, log } = result;
  let messages: string[] = [];
  let recovery: { recovered: boolean; reason?: string } | undefined;
  if (request.since) {
    const outcome = broker.recover(log, request.since);
    recovery = outcome.recovered ? { recovered: true } : { recovered: false, reason: outcome.reason };
    if (outcome.recovered) messages = outcome.entries.map((entry) => entry.json);
  }
  // Recent messages for a late joiner, or as the fallback when a resume failed.
  if (request.history && (!recovery || !recovery.recovered)) {
    messages = broker.recent(log, request.history).map((entry) => entry.json);
  }
  const reply = {
    type: 'joined' as const,
    ...(request.id === undefined ? {} : { id: request.id }),
    room: room.name,
    epoch: log.epoch,
    offset: log.lastOffset,
    ...recovery,
    ...(request.presence ? presenceSnapshot(connection, room, snapshot) : {}),
  };
  // One frame: the missed messages can never interleave with live ones.
  connection.reply(joinedEnvelope(reply as Parameters<typeof joinedEnvelope>[0], messages));
}

/**
 * The member list for a joined reply: this node's members, plus (in a cluster) those Redis knows
 * on other nodes. Local ones are added by hand because their own records may still be in flight.
 */
function presenceSnapshot(connection: Connection, room: Room, cluster?: { members: Member[]; count: number }) {
  const local = connection.context.broker.members(room);
  if (!cluster) return { members: local, memberCount: room.members.size };
  const limit = connection.context.options.maxPresence;
  const members = [...cluster.members];
  const known = new Set(members.map((m) => m.session));
  let memberCount = cluster.count;
  for (const member of room.members) {
    if (known.has(member.id)) continue;
    memberCount++;
    if (members.length < limit) members.push({ session: member.id, name: member.name });
  }
  return { members, memberCount };
}

function leave(connection: Connection, request: LeaveRequest): void {
  const room = connection.context.broker.hub.room(request.room);
  if (!room || !room.members.has(connection)) return connection.replyError(request.id, ErrorCode.NotJoined, `not in room ${JSON.stringify(request.room)}`);
  connection.context.broker.leave(connection, room);
  connection.reply(encodeEnvelope({ type: 'left', ...(request.id === undefined ? {} : { id: request.id }), room: request.room }));
}

/**
 * Never makes the connection wait: in a cluster the publishes of one connection travel to Redis
 * in order on one pipelined link, so their offsets keep that order without a round trip each.
 */
function publish(connection: Connection, request: PublishRequest): void {
  const broker = connection.context.broker;
  const room = broker.hub.room(request.room);
  if (!room || !room.members.has(connection)) {
    return connection.replyError(request.id, ErrorCode.NotJoined, `join room ${JSON.stringify(request.room)} before publishing to it`);
  }
  const grant = connection.admission.grant;
  if (grant && !grant.mayPublish(request.room)) {
    return connection.replyError(request.id, ErrorCode.Forbidden, `your token does not allow publishing to ${JSON.stringify(request.room)}`);
  }
  const published = broker.publish(request.room, { kind: 'json', data: request.data }, connection, request.excludeSelf ? connection : undefined);
  const acked = settle(
    published,
    (done) => {
      if (!done) return connection.replyError(request.id, ErrorCode.ServerFull, 'the server tracks as many rooms as it may');
      if (request.id !== undefined) {
        connection.reply(encodeEnvelope({ type: 'ack', id: request.id, room: request.room, offset: done.offset, epoch: done.epoch }));
      }
    },
    unavailable(connection, request.id),
  );
  acked?.catch((error: Error) => connection.context.logger.error('publish answer failed', { id: connection.id, error: error.message }));
}
