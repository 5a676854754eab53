/**
 * One POST to a stream, read and checked before anything is taken: its `Plaza-Seq`, its body
 * (at most --max-payload bytes, UTF-8, one plaza.v1 request per line) and its token. The body is
 * read whole before a line is handed on, so a POST is taken all at once or not at all.
 */
import type { IncomingMessage } from 'node:http';
import { SEQ_HEADER } from '../../shared/sse.js';
import type { StreamErrorCode } from './answers.js';

export interface Post {
  /** `Plaza-Seq`, when the client numbers its POSTs. */
  seq: number | undefined;
  /** The requests, one per line, empty lines left out. */
  lines: Buffer[];
  /** `Authorization: Bearer`, or `?token=`. */
  token: string | null;
}

export interface PostProblem {
  status: 400 | 413;
  code: StreamErrorCode;
  message: string;
}

const SEQ = /^[1-9][0-9]{0,14}$/;
const LF = 0x0a;
const CR = 0x0d;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** `Authorization: Bearer <token>`, when the request has one. */
export function bearerOf(request: IncomingMessage): string | null {
  const header = request.headers.authorization;
  const match = header === undefined ? null : /^Bearer +(\S+)\s*$/i.exec(header);
  return match ? match[1]! : null;
}

/** The lines of `body` (LF or CRLF), without empty ones; each a view, not a copy. */
export function linesOf(body: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  while (start < body.length) {
    let end = body.indexOf(LF, start);
    if (end === -1) end = body.length;
    let last = end;
    if (last > start && body[last - 1] === CR) last--;
    if (last > start) lines.push(body.subarray(start, last));
    start = end + 1;
  }
  return lines;
}

export function readPost(request: IncomingMessage, target: URL, maxPayload: number): Promise<Post | PostProblem> {
  const rawSeq = request.headers[SEQ_HEADER.toLowerCase()];
  let seq: number | undefined;
  if (rawSeq !== undefined) {
    if (typeof rawSeq !== 'string' || !SEQ.test(rawSeq)) {
      request.resume();
      return Promise.resolve({ status: 400, code: 'bad_request', message: `${SEQ_HEADER} must be a whole number from 1` });
    }
    seq = Number(rawSeq);
  }
  const tooLarge: PostProblem = { status: 413, code: 'too_large', message: `the body is larger than ${maxPayload} bytes (--max-payload); send fewer requests per POST` };
  const declared = Number(request.headers['content-length'] ?? 0);
  // Refused before a byte of it is read; the connection is closed after the answer.
  if (declared > maxPayload) return Promise.resolve(tooLarge);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    request.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > maxPayload) {
        over = true;
        chunks.length = 0;
        resolve(tooLarge);
        return;
      }
      chunks.push(chunk);
    });
    request.once('error', reject);
    request.once('end', () => {
      if (over) return;
      const body = Buffer.concat(chunks, size);
      try {
        utf8.decode(body);
      } catch {
        return resolve({ status: 400, code: 'bad_request', message: 'the body must be UTF-8 text: plaza.v1 requests, one JSON object per line' });
      }
      const lines = linesOf(body);
      if (lines.length === 0) return resolve({ status: 400, code: 'bad_request', message: 'the body holds no request: send plaza.v1 requests, one JSON object per line' });
      resolve({ seq, lines, token: bearerOf(request) ?? target.searchParams.get('token') });
    });
  });
}
