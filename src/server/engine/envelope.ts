/**
 * Builds plaza.v1 envelopes as JSON text. The hot one, `messageEnvelope`, is assembled from
 * pre-encoded parts so a publish costs one JSON.stringify of the data and nothing per recipient.
 */
import type { AppErrorCode, ErrorCode, Joined, Member, Presence, ServerMessage } from '../../shared/protocol.js';

export type RequestId = number | string | undefined;

export function encodeEnvelope(message: ServerMessage): string {
  return JSON.stringify(message);
}

/** `"from"` of a message, encoded once per connection. */
export function encodeSender(session: string, name: string): string {
  return JSON.stringify({ session, name });
}

export interface MessageParts {
  /** JSON.stringify(room), computed once per room. */
  roomJson: string;
  offset: number;
  epoch: string;
  time: number;
  fromJson: string;
  dataJson: string;
  base64: boolean;
}

export function messageEnvelope(p: MessageParts): string {
  // Epochs are base64url, so they need no escaping.
  return (
    `{"type":"message","room":${p.roomJson},"id":"${p.epoch}:${p.offset}","offset":${p.offset},` +
    `"epoch":"${p.epoch}","time":${p.time},"from":${p.fromJson},"data":${p.dataJson}` +
    `${p.base64 ? ',"encoding":"base64"' : ''}}`
  );
}

/** An ephemeral publish as members receive it (issue #22, item 8): no id, offset or epoch. */
export function ephemeralEnvelope(roomJson: string, time: number, fromJson: string, dataJson: string): string {
  return `{"type":"ephemeral","room":${roomJson},"time":${time},"from":${fromJson},"data":${dataJson}}`;
}

/** A `joined` reply; `messages` are envelopes already encoded as JSON text. */
export function joinedEnvelope(reply: Omit<Joined, 'messages'>, messages: readonly string[]): string {
  const head = JSON.stringify(reply);
  return `${head.slice(0, -1)},"messages":[${messages.join(',')}]}`;
}

export function errorEnvelope(id: RequestId, code: ErrorCode | AppErrorCode, message: string): string {
  return JSON.stringify(id === undefined ? { type: 'error', code, message } : { type: 'error', id, code, message });
}

export function presenceEnvelope(room: string, change: 'joined' | 'left', member: Member, memberCount: number): string {
  const message: Presence = { type: 'presence', room, [change]: [member], memberCount };
  return JSON.stringify(message);
}
