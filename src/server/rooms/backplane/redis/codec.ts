/**
 * What a room message looks like on the wire to Redis: its parts as the publish script takes
 * them, stores them in the room's stream and sends them on the room's channel, and the parsing
 * of both back. The envelope members get is built in TypeScript on each node (engine/envelope).
 *
 * Channel texts: `m <offset> <epoch> <time> <plain> <except> <token>\n<from>\n<data>` (written
 * by the publish script, scripts.ts), `p <subject>\n<json>` (presence) and
 * `e <node> <time> <plain> <except>\n<from>\n<data>` (ephemeral).
 */
import type { PlainKind } from '../../../engine/publication.js';

/** One message for the publish script: everything but the offset Redis gives it. */
export interface PublishParts {
  time: number;
  fromJson: string;
  dataJson: string;
  plain: PlainKind;
  /** The session that must not receive it (excludeSelf), or ''. */
  except: string;
  /** The publishing node's token for this publish ('' when unknown). */
  token: string;
}

/** What the publish script is told besides the message: its id in the room's window (issue #22). */
export interface PublishOnce {
  /** '' for none. */
  publishId: string;
  fingerprint: string;
}

/** A stored room message as read back from a stream: its parts and its offset. */
export interface StreamEntry extends PublishParts {
  offset: number;
}

/** What travels on a room's channel. */
export type ChannelMessage =
  | ({ kind: 'message'; room: string; epoch: string } & StreamEntry)
  | { kind: 'presence'; room: string; subject: string; json: string }
  /** An ephemeral publish (issue #22, item 8): outside the room's order, never in its stream. */
  | ({ kind: 'ephemeral'; room: string; node: string } & Omit<PublishParts, 'token'>);

/** The channel text of an ephemeral publish made on node `node`. */
export function ephemeralText(node: string, parts: Omit<PublishParts, 'token'>): string {
  return `e ${node} ${parts.time} ${parts.plain} ${parts.except || '-'}\n${parts.fromJson}\n${parts.dataJson}`;
}

/** The channel text of a presence delta about session `subject`. */
export function presenceText(subject: string, json: string): string {
  return `p ${subject}\n${json}`;
}

/** Parses a room channel's text (see the top of this file); undefined for a text no Plaza node wrote. */
export function parseChannelText(room: string, text: string): ChannelMessage | undefined {
  const first = text.indexOf('\n');
  if (first === -1) return undefined;
  const head = text.slice(0, first).split(' ');
  if (head[0] === 'p' && head.length === 2) return { kind: 'presence', room, subject: head[1]!, json: text.slice(first + 1) };
  const second = text.indexOf('\n', first + 1);
  if (head[0] === 'e' && head.length === 5 && second !== -1) {
    const [, node, time, plain, except] = head as [string, string, string, string, string];
    if (plain !== 't' && plain !== 'b' && plain !== 'j') return undefined;
    return { kind: 'ephemeral', room, node, time: Number(time), plain, except: except === '-' ? '' : except, fromJson: text.slice(first + 1, second), dataJson: text.slice(second + 1) };
  }
  if (head[0] !== 'm' || head.length !== 7 || second === -1) return undefined;
  const [, offset, epoch, time, plain, except, token] = head as [string, string, string, string, string, string, string];
  if (plain !== 't' && plain !== 'b' && plain !== 'j') return undefined;
  return {
    kind: 'message',
    room,
    offset: Number(offset),
    epoch,
    time: Number(time),
    plain,
    except: except === '-' ? '' : except,
    token: token === '-' ? '' : token,
    fromJson: text.slice(first + 1, second),
    dataJson: text.slice(second + 1),
  };
}

/** A stream entry as the publish script wrote it (ID `<offset>-1`, fields t f d k x n). */
export function parseStreamEntry(id: string, fields: string[]): StreamEntry {
  const field = (name: string) => {
    for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1] ?? '';
    return '';
  };
  const plain = field('k');
  return {
    offset: Number.parseInt(id, 10),
    time: Number(field('t')),
    fromJson: field('f'),
    dataJson: field('d'),
    plain: plain === 'b' || plain === 'j' ? plain : 't',
    except: field('x') === '-' ? '' : field('x'),
    token: field('n') === '-' ? '' : field('n'),
  };
}
