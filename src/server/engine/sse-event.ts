/**
 * plaza.v1 envelopes as server-sent events (PROTOCOL.md, "Server-sent events"): one `data:` line
 * with the envelope's JSON (JSON.stringify never writes a line break) and an empty line. A
 * `message` or `joined` event also gets an `id:` naming its room's position, read from the
 * envelope's first fields, which Plaza's own encoders always write in the same order
 * (envelope.ts): no parse of the whole envelope, whose `data` may be large.
 */

/** `{"type":"message","room":"<room>","id":"<epoch>:<offset>"`: room names and epochs need no escaping. */
const MESSAGE_HEAD = /^\{"type":"message","room":"([^"\\]*)","id":"([^"\\]*)"/;
/** `{"type":"joined"[,"id":<request id>],"room":"<room>","epoch":"<epoch>","offset":<offset>` */
const JOINED_HEAD = /^\{"type":"joined",(?:"id":(?:-?[0-9][0-9.eE+-]*|"(?:[^"\\]|\\.)*"),)?"room":"([^"\\]*)","epoch":"([^"\\]*)","offset":(\d+)/;

/** The cursor (`room epoch:offset`) of a message or joined envelope; undefined for any other. */
export function cursorOfEnvelope(json: string): string | undefined {
  if (json.startsWith('{"type":"message"')) {
    const match = MESSAGE_HEAD.exec(json);
    return match ? `${match[1]} ${match[2]}` : undefined;
  }
  if (json.startsWith('{"type":"joined"')) {
    const match = JOINED_HEAD.exec(json);
    return match ? `${match[1]} ${match[2]}:${match[3]}` : undefined;
  }
  return undefined;
}

/** One event; with `id` (a cursor) when given. */
export function encodeSseEvent(json: string, id?: string): Buffer {
  return Buffer.from(id === undefined ? `data: ${json}\n\n` : `id: ${id}\ndata: ${json}\n\n`);
}

/** One envelope as an event, with its cursor when it is a message or a joined. */
export function encodeSseEnvelope(json: string): Buffer {
  return encodeSseEvent(json, cursorOfEnvelope(json));
}

/** An id-only block: EventSource updates lastEventId and dispatches nothing. */
export function encodeSseId(cursor: string): Buffer {
  return Buffer.from(`id: ${cursor}\n\n`);
}
