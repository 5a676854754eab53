/**
 * Where an SSE stream is in each of its rooms, read off the `id:` lines it was sent, so that a
 * stream in several rooms can end each write with an id-only line naming all of them (an
 * EventSource reconnect then resumes every room, not only the last one a message came from).
 * A stream in one room needs nothing: each event's own id names its whole position.
 */
import { encodeSseId } from '../engine/sse-event.js';
import { formatCursor, parseCursor, type CursorEntry } from '../../shared/sse.js';

const ID_LINE = Buffer.from('\nid: ');
const LF = 0x0a;

/** Every `id:` value in `data`, in order. SSE data lines are JSON without line breaks, so `\nid: ` only starts a field. */
function* idsIn(data: Buffer): Generator<string> {
  let start: number;
  if (data.length >= 4 && data.toString('latin1', 0, 4) === 'id: ') start = 4;
  else {
    const found = data.indexOf(ID_LINE);
    start = found === -1 ? -1 : found + ID_LINE.length;
  }
  while (start !== -1) {
    const end = data.indexOf(LF, start);
    if (end === -1) return;
    yield data.toString('utf8', start, end);
    const next = data.indexOf(ID_LINE, end);
    start = next === -1 ? -1 : next + ID_LINE.length;
  }
}

/** The last `id:` value in `data`, found from its end; undefined when it has none. */
export function lastIdIn(data: Buffer): string | undefined {
  const at = data.lastIndexOf(ID_LINE);
  const start = at !== -1 ? at + ID_LINE.length : data.length >= 4 && data.toString('latin1', 0, 4) === 'id: ' ? 4 : -1;
  if (start === -1) return undefined;
  const end = data.indexOf(LF, start);
  return end === -1 ? undefined : data.toString('utf8', start, end);
}

export class Positions {
  private readonly byRoom = new Map<string, CursorEntry>();

  /** Takes the ids of what was written; true when some position moved. */
  take(data: Buffer | readonly Buffer[], maxRoomName: number, maxRooms: number): boolean {
    let moved = false;
    for (const buffer of Buffer.isBuffer(data) ? [data] : data) {
      for (const id of idsIn(buffer)) {
        const entries = parseCursor(id, maxRoomName, maxRooms);
        if (typeof entries === 'string') continue;
        for (const entry of entries) this.byRoom.set(entry.room, entry);
        moved = true;
      }
    }
    return moved;
  }

  /** An id-only line naming the position of each of `rooms` that is known. */
  line(rooms: Iterable<string>): Buffer | undefined {
    const entries: CursorEntry[] = [];
    for (const room of rooms) {
      const entry = this.byRoom.get(room);
      if (entry) entries.push(entry);
    }
    // Rooms left are forgotten: a reconnect must not join them again.
    for (const room of [...this.byRoom.keys()]) if (!entries.some((entry) => entry.room === room)) this.byRoom.delete(room);
    return entries.length === 0 ? undefined : encodeSseId(formatCursor(entries));
  }
}
