/**
 * Plaza's embeddable client: a WebSocket that reconnects by itself, queues while offline and
 * emits typed events; with `rooms: true` it speaks plaza.v1: rooms, presence, acknowledged
 * publishes and gap-free recovery after reconnects. Bundled as dist/public/plaza.mjs (this
 * module) and dist/public/plaza.js (the `Plaza` global, see browser.ts). Reference: docs/client.md.
 *
 * ```ts
 * import { connect } from '/plaza.mjs';
 * const plaza = connect(undefined, { rooms: true, name: 'Ada' }); // the page's own origin
 * const room = plaza.join('lobby', { history: 50, presence: true });
 * room.on('message', (data, meta) => console.log(meta.sender.name, data));
 * await room.publish('hello');        // queued until open; resolves with the ack
 * ```
 */
export { connect, type ClientEvents, type PlazaClient } from './client.js';
export { PlazaError, type ErrorCode } from './error.js';
export type { ClientOptions, TransportName } from './options.js';
export type { EphemeralAck, EphemeralMeta, JoinOptions, MessageMeta, PublishAck, PublishOptions, Room, RoomEvents } from './room.js';
export type { CloseInfo, Data, SocketLike, WebSocketConstructor } from './socket.js';
export type { Status } from './transport.js';
export type { Member, Position, Sender, UnrecoveredReason, Welcome } from '../shared/protocol.js';
