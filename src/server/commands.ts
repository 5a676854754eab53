/**
 * What a plaza.v1 client can ask, and the answers. Requests arrive already validated
 * (requests.ts); everything here is about the room registry and history.
 */
import { ErrorCode, type ClientMessage, type HelloRequest, type JoinRequest, type LeaveRequest, type PublishRequest, type Welcome } from '../shared/protocol.js';
import type { Connection } from './connection.js';
import { encodeEnvelope, joinedEnvelope } from './envelope.js';

export function handleRequest(connection: Connection, request: ClientMessage): void {
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

function join(connection: Connection, request: JoinRequest): void {
  const broker = connection.context.broker;
  const grant = connection.admission.grant;
  if (grant && !grant.mayJoin(request.room)) {
    return connection.replyError(request.id, ErrorCode.Forbidden, `your token does not allow joining ${JSON.stringify(request.room)}`);
  }
  const result = broker.join(connection, request.room, request.presence === true);
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
    ...(request.presence ? { members: broker.members(room), memberCount: room.members.size } : {}),
  };
  // One frame: the missed messages can never interleave with live ones.
  connection.reply(joinedEnvelope(reply as Parameters<typeof joinedEnvelope>[0], messages));
}

function leave(connection: Connection, request: LeaveRequest): void {
  const room = connection.context.broker.hub.room(request.room);
  if (!room || !room.members.has(connection)) return connection.replyError(request.id, ErrorCode.NotJoined, `not in room ${JSON.stringify(request.room)}`);
  connection.context.broker.leave(connection, room);
  connection.reply(encodeEnvelope({ type: 'left', ...(request.id === undefined ? {} : { id: request.id }), room: request.room }));
}

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
  if (!published) return connection.replyError(request.id, ErrorCode.ServerFull, 'the server tracks as many rooms as it may');
  if (request.id !== undefined) {
    connection.reply(encodeEnvelope({ type: 'ack', id: request.id, room: request.room, offset: published.offset, epoch: published.epoch }));
  }
}
