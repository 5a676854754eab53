/**
 * What a `GET <sse>` asks for, read from its query and `Last-Event-ID` and checked before the
 * door: a name, rooms to join at once, history, presence, beats, and the positions to resume.
 * Every parameter is untrusted: a bad one is a 400 with a code, never a stream.
 */
import type { IncomingMessage } from 'node:http';
import { DisplayNameError, normalizeDisplayName } from '../access/display-name.js';
import type { PlazaOptions } from '../config.js';
import { roomNameProblem } from '../../shared/room-name.js';
import { parseCursor, type CursorEntry } from '../../shared/sse.js';
import type { StreamErrorCode } from './answers.js';

export interface Opening {
  name: string | undefined;
  /** The URL's rooms, in order, each once. */
  rooms: string[];
  history: number | undefined;
  presence: boolean;
  beats: boolean;
  /** The positions of `Last-Event-ID`; undefined when there was none. */
  cursor: CursorEntry[] | undefined;
}

export type OpeningProblem = { status: 400; code: StreamErrorCode; message: string };

function flag(target: URL, key: string): boolean | string {
  const value = target.searchParams.get(key);
  if (value === null || value === '0' || value === 'false') return false;
  if (value === '1' || value === 'true' || value === '') return true;
  return `?${key}= takes 1, true, 0 or false`;
}

const bad = (code: StreamErrorCode, message: string): OpeningProblem => ({ status: 400, code, message });

export function readOpening(
  target: URL,
  request: IncomingMessage,
  options: Pick<PlazaOptions, 'maxRoomName' | 'maxRoomsPerConnection' | 'historySize'>,
): Opening | OpeningProblem {
  let name: string | undefined;
  const rawName = target.searchParams.get('name');
  if (rawName !== null) {
    try {
      name = normalizeDisplayName(rawName);
    } catch (error) {
      if (!(error instanceof DisplayNameError)) throw error;
      return bad('bad_request', `?name=: ${error.message}`);
    }
  }
  const rooms: string[] = [];
  for (const room of target.searchParams.getAll('room')) {
    const problem = roomNameProblem(room, options.maxRoomName);
    if (problem !== undefined) return bad('bad_room', `?room=: ${problem}`);
    if (!rooms.includes(room)) rooms.push(room);
    if (rooms.length > options.maxRoomsPerConnection) return bad('too_many_rooms', `at most ${options.maxRoomsPerConnection} rooms per stream`);
  }
  let history: number | undefined;
  const rawHistory = target.searchParams.get('history');
  if (rawHistory !== null) {
    if (!/^\d{1,9}$/.test(rawHistory) || Number(rawHistory) > options.historySize) return bad('bad_request', `?history= takes a whole number from 0 to ${options.historySize}`);
    history = Number(rawHistory);
  }
  const presence = flag(target, 'presence');
  if (typeof presence === 'string') return bad('bad_request', presence);
  const beats = flag(target, 'beats');
  if (typeof beats === 'string') return bad('bad_request', beats);
  const header = request.headers['last-event-id'];
  const lastEventId = typeof header === 'string' ? header : target.searchParams.get('lastEventId');
  let cursor: CursorEntry[] | undefined;
  // An EventSource that saw no id yet sends none; an empty one is the same.
  if (lastEventId !== null && lastEventId !== '') {
    const parsed = parseCursor(lastEventId, options.maxRoomName, options.maxRoomsPerConnection);
    if (typeof parsed === 'string') {
      const badRoom = lastEventId.split(' ').some((word, i) => i % 2 === 0 && roomNameProblem(word, options.maxRoomName) !== undefined);
      return bad(badRoom ? 'bad_room' : 'bad_request', parsed);
    }
    cursor = parsed;
    const all = new Set([...rooms, ...parsed.map((entry) => entry.room)]);
    if (all.size > options.maxRoomsPerConnection) return bad('too_many_rooms', `at most ${options.maxRoomsPerConnection} rooms per stream`);
  }
  return { name, rooms, history, presence, beats, cursor };
}
