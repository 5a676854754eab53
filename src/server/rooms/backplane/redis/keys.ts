/**
 * Where a Plaza cluster keeps things in Redis: the keys of a room, the channels, the node
 * summaries.
 *
 * Keys share the room as a hash tag (`plaza:{room}:…`), so one room's keys and channel live in
 * one Redis Cluster slot; room names cannot contain braces. The node summaries share the tag
 * `{nodes}`, so one pipeline reads them all.
 */

/** Requests every node sees (POST /api/disconnect). */
export const CONTROL_CHANNEL = 'plaza:control';
/** The set of live nodes, scored by their last refresh. */
export const NODES_KEY = 'plaza:{nodes}';

export function roomKeys(room: string) {
  const tag = `plaza:{${room}}`;
  return {
    epoch: `${tag}:epoch`, offset: `${tag}:offset`, stream: `${tag}:stream`, gen: `${tag}:gen`, presence: `${tag}:presence`, channel: `${tag}:ch`,
    ids: `${tag}:ids`, idq: `${tag}:idq`,
  };
}

/** The room whose channel this is, or undefined for the control, reply and mail channels. */
export function roomOfChannel(channel: string): string | undefined {
  return channel.startsWith('plaza:{') && channel.endsWith('}:ch') ? channel.slice(7, -4) : undefined;
}

/** A node's members per room, for the HTTP API's room list. */
export const nodeRoomsKey = (nodeId: string) => `plaza:{nodes}:${nodeId}:rooms`;
/** Where a node hears the answers to its control requests. */
export const replyChannel = (nodeId: string) => `plaza:reply:${nodeId}`;
/** A node's mailbox: POSTs for its SSE streams, carried from other nodes, and their answers. */
export const mailChannel = (nodeId: string) => `plaza:sse:${nodeId}`;
