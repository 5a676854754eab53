/**
 * The server-sent-events transport's shared vocabulary (PROTOCOL.md, "Server-sent events"): its
 * path, headers, the cursor an event's `id:` carries, the `close` event, and a parser for an
 * event stream. No Node APIs: Plaza's browser client imports it as the server does.
 */
import { roomNameProblem } from './room-name.js';

/** The stream path under `--path`: `/sse` by default, `/chat/sse` for `/chat` and `/chat/`. */
export function streamPath(path: string): string {
  return path.endsWith('/') ? `${path}sse` : `${path}/sse`;
}

/** The header that numbers a stream's POSTs from 1. */
export const SEQ_HEADER = 'Plaza-Seq';
/** On a 409 `out_of_order`: the number to send first. */
export const SEQ_EXPECTED_HEADER = 'Plaza-Seq-Expected';
/** On a 204 for a `Plaza-Seq` taken before: `true`. */
export const SEQ_DUPLICATE_HEADER = 'Plaza-Seq-Duplicate';

/** The last event of a stream the server ends: `code` is one of the WebSocket close codes. */
export interface StreamClose {
  type: 'close';
  code: number;
  reason: string;
}

/** One room's position in a cursor. */
export interface CursorEntry {
  room: string;
  epoch: string;
  offset: number;
}

/** `room epoch:offset` pairs separated by spaces: what an event's `id:` holds. */
export function formatCursor(entries: Iterable<CursorEntry>): string {
  const parts: string[] = [];
  for (const entry of entries) parts.push(`${entry.room} ${entry.epoch}:${entry.offset}`);
  return parts.join(' ');
}

const EPOCH = /^[A-Za-z0-9_-]{1,32}$/;

/**
 * The positions in a `Last-Event-ID`, or a sentence saying what is wrong with it. Rooms must keep
 * the room-name rules (`maxRoomName`), at most `maxRooms` of them, each once; offsets are whole
 * numbers.
 */
export function parseCursor(text: string, maxRoomName: number, maxRooms: number): CursorEntry[] | string {
  const words = text.split(' ');
  if (text === '' || words.length % 2 !== 0) return 'Last-Event-ID must be pairs of "<room> <epoch>:<offset>" separated by spaces';
  if (words.length / 2 > maxRooms) return `Last-Event-ID names more than ${maxRooms} rooms`;
  const entries: CursorEntry[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < words.length; i += 2) {
    const room = words[i]!;
    const position = words[i + 1]!;
    const problem = roomNameProblem(room, maxRoomName);
    if (problem !== undefined) return `Last-Event-ID: ${problem}`;
    if (seen.has(room)) return `Last-Event-ID names room ${JSON.stringify(room)} twice`;
    seen.add(room);
    const colon = position.lastIndexOf(':');
    const epoch = position.slice(0, colon);
    const offset = position.slice(colon + 1);
    if (colon < 0 || !EPOCH.test(epoch) || !/^\d{1,15}$/.test(offset)) return `Last-Event-ID: "${position}" is not "<epoch>:<offset>"`;
    entries.push({ room, epoch, offset: Number(offset) });
  }
  return entries;
}

/** One event as EventSource would dispatch it (`data` joined by newlines), or an id-only line. */
export interface StreamEvent {
  /** The `lastEventId` after this event (unchanged when it had no `id:`). */
  lastEventId: string;
  /** Undefined for a block without data (an id-only line): EventSource dispatches nothing. */
  data: string | undefined;
  retry?: number;
}

/**
 * Reads a `text/event-stream` as it arrives (the WHATWG HTML rules: lines end in LF, CR or
 * CRLF; `:` starts a comment; fields `data`, `id`, `retry`; an empty line ends an event). Feed
 * it decoded text chunks; it returns the events they completed.
 */
export class EventStreamParser {
  private buffer = '';
  private data: string[] = [];
  private lastEventId = '';
  private retry: number | undefined;
  private sawId = false;
  /** Comments seen (heartbeats), for those who watch the link. */
  comments = 0;

  feed(chunk: string): StreamEvent[] {
    this.buffer += chunk;
    const events: StreamEvent[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A CR at the very end may be the first half of a CRLF still on its way.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const event = this.line(line);
      if (event) events.push(event);
    }
    return events;
  }

  private line(line: string): StreamEvent | undefined {
    if (line === '') {
      const data = this.data.length > 0 ? this.data.join('\n') : undefined;
      const event: StreamEvent = { lastEventId: this.lastEventId, data, ...(this.retry !== undefined && { retry: this.retry }) };
      const dispatch = data !== undefined || this.sawId || this.retry !== undefined;
      this.data = [];
      this.retry = undefined;
      this.sawId = false;
      return dispatch ? event : undefined;
    }
    if (line.startsWith(':')) {
      this.comments++;
      return undefined;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) {
      this.lastEventId = value;
      this.sawId = true;
    } else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
    return undefined;
  }
}
