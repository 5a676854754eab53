/**
 * The JSON of webhook events, built as text once when the event happens: a published message's
 * data is spliced in as the envelope already encoded it, never parsed and encoded again.
 *
 * Every event: {"id", "type", "room", "time", …}; docs/server.md lists each type's fields.
 */
import type { WebhookEventType } from '../config.js';

/** A member as webhook events name it. */
export interface WebhookMember {
  session: string;
  name: string;
  /** The authenticated user, when there is one. */
  user: string | undefined;
}

export function memberJson(member: WebhookMember): string {
  return JSON.stringify(member.user === undefined ? { session: member.session, name: member.name } : { session: member.session, name: member.name, user: member.user });
}

/** One event's JSON; `fields` are further members, already encoded (`"a":1,"b":2`), or ''. */
export function eventJson(id: string, type: WebhookEventType, room: string, time: number, fields: string): string {
  return `{"id":${JSON.stringify(id)},"type":"${type}","room":${JSON.stringify(room)},"time":${time}${fields === '' ? '' : `,${fields}`}}`;
}

/** The fields of member_joined and member_left. */
export function memberFields(member: WebhookMember): string {
  return `"member":${memberJson(member)}`;
}

/**
 * The fields of message_published: its place, its sender (null when the server itself or the
 * HTTP API published it) and its data as plaza.v1 clients get it (base64 with `"encoding"` for
 * a plain client's binary).
 */
export function publishedFields(offset: number, epoch: string, from: WebhookMember | undefined, dataJson: string, binary: boolean): string {
  const sender = from === undefined ? 'null' : memberJson(from);
  return `"offset":${offset},"epoch":${JSON.stringify(epoch)},"from":${sender},"data":${dataJson}${binary ? ',"encoding":"base64"' : ''}`;
}
