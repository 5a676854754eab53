/**
 * Serves the built chat page and client bundles (dist/public) from memory, with an operator's
 * folder (--public-dir) laid over them.
 *
 * The folders are read once at start-up into a Map keyed by URL path, so answering a request is
 * a lookup: no spelling of a path (`..`, `%2e%2e`, `\`, `%00`, overlong UTF-8 …) can name a file
 * outside them, and no request touches the disk. Every header is computed at load time too.
 * Compression is not: brotli at its best takes seconds on a large file, so a file is compressed
 * when it is first asked for by a client that accepts it, once. A small file's first answer
 * waits for it (milliseconds); a larger one is sent as it is until its compressed forms exist.
 */
import { createHash } from 'node:crypto';
import type { Dirent, Stats } from 'node:fs';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { STATUS_CODES, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { extname, isAbsolute, join, relative, sep } from 'node:path';
import { promisify } from 'node:util';
import { brotliCompress, constants as zlib, gzip } from 'node:zlib';
import { DEFAULT_CONTENT_SECURITY_POLICY } from '../config.js';
import { originFormOf } from './respond.js';
import { MAX_URL_LENGTH } from '../bounds.js';

export interface StaticOptions {
  /**
   * Absolute path of the folder to serve (dist/public), or several laid over each other: a file
   * in a later folder replaces the file of the same URL path from an earlier one. Mapped once at
   * start-up.
   */
  root: string | readonly string[];
  /** Content-Security-Policy sent with HTML pages; '' sends none. @default DEFAULT_CONTENT_SECURITY_POLICY */
  contentSecurityPolicy?: string;
  /** Refuse to start when the folder holds more files than this (no flag sets it). @default 1000 */
  maxFiles?: number;
  /** Refuse to start when the files add up to more bytes than this (before compression; no flag sets it). @default 52428800 (50 MiB) */
  maxBytes?: number;
}

export interface StaticFiles {
  /** Answers the request completely (200/304/404/405/400 …). */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Whether `url` names a mapped file (so handle() would not answer 404 or 400). */
  has(url: string | undefined): boolean;
  /** Number of files mapped (for logs). */
  readonly size: number;
}

export type StaticFilesErrorCode = 'PLAZA_ERR_STATIC_ROOT' | 'PLAZA_ERR_STATIC_LIMIT';

/** Why the folder could not be mapped; thrown by loadStaticFiles, never at request time. */
export class StaticFilesError extends Error {
  override readonly name = 'StaticFilesError';
  constructor(
    readonly code: StaticFilesErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const DEFAULTS = {
  contentSecurityPolicy: DEFAULT_CONTENT_SECURITY_POLICY,
  maxFiles: 1000,
  maxBytes: 50 * 1024 * 1024,
};


// File names carry no content hash, so a cached copy must be revalidated on every use or a
// browser could pair a new page with an old script after a deploy; the strong ETag keeps
// that to a 304. plaza.js / plaza.mjs are also embedded by other sites at these fixed URLs.
const REVALIDATED_PATHS = new Set(['/plaza.js', '/plaza.mjs', '/chat.js', '/style.css', '/theme.css', '/status.js', '/status.css']);

interface FileType {
  contentType: string;
  /** Worth trying gzip/brotli on: text compresses, PNG/WebP/WOFF2 already are compressed. */
  compressible: boolean;
}

// A Map, not an object literal: extname() of `x.constructor` must not find Object.prototype.
// JSON (and source maps) get no charset: RFC 8259 §11 defines none, UTF-8 is implied.
const TYPES = new Map<string, FileType>([
  ['.html', { contentType: 'text/html; charset=utf-8', compressible: true }],
  ['.js', { contentType: 'text/javascript; charset=utf-8', compressible: true }],
  ['.mjs', { contentType: 'text/javascript; charset=utf-8', compressible: true }],
  ['.css', { contentType: 'text/css; charset=utf-8', compressible: true }],
  ['.txt', { contentType: 'text/plain; charset=utf-8', compressible: true }],
  ['.json', { contentType: 'application/json', compressible: true }],
  ['.map', { contentType: 'application/json', compressible: true }],
  ['.svg', { contentType: 'image/svg+xml', compressible: true }],
  ['.ico', { contentType: 'image/x-icon', compressible: true }],
  ['.png', { contentType: 'image/png', compressible: false }],
  ['.webp', { contentType: 'image/webp', compressible: false }],
  ['.woff2', { contentType: 'font/woff2', compressible: false }],
]);
const UNKNOWN_TYPE: FileType = { contentType: 'application/octet-stream', compressible: false };

const SECURITY_HEADERS = { 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' };

interface Variant {
  etag: string;
  body: Buffer;
  /** Headers of a 200: everything, including Content-Length of this body. */
  ok: OutgoingHttpHeaders;
  /** Headers of a 304: no representation metadata (RFC 9110 §15.4.5). */
  notModified: OutgoingHttpHeaders;
}

interface Entry {
  identity: Variant;
  gzip?: Variant;
  br?: Variant;
  /** Text not compressed yet: makes `gzip` and `br` (those that pay off); unset once done. */
  compress?: () => Promise<void>;
  /** The one run of compress(), once a request asked for it. */
  compressed?: Promise<void>;
}

/** Files up to this size answer their first compressible request once compressed (a few ms). */
const WAIT_FOR_COMPRESSION_BYTES = 64 * 1024;
/** Brotli quality for larger files (compress() says why). */
const LARGE_FILE_BROTLI_QUALITY = 5;

interface FoundFile {
  urlPath: string;
  fsPath: string;
}

/**
 * Reads `options.root` into memory and returns the request handler for it.
 * @throws TypeError on a bad option; StaticFilesError when the folder is missing or too big.
 */
export async function loadStaticFiles(options: StaticOptions): Promise<StaticFiles> {
  const settings = validate(options);
  const byPath = new Map<string, FoundFile & { size: number }>();
  for (const folder of settings.roots) {
    const root = await resolveRoot(folder);
    for (const file of await listFiles(root, settings.maxFiles, settings.maxBytes)) byPath.set(file.urlPath, file);
  }
  const found = [...byPath.values()];
  const bytes = found.reduce((sum, file) => sum + file.size, 0);
  const where = settings.roots.join(' + ');
  if (found.length > settings.maxFiles) throw tooBig(where, `more than ${settings.maxFiles} files`, settings);
  if (bytes > settings.maxBytes) throw tooBig(where, `more than ${settings.maxBytes} bytes`, settings);
  const entries = await Promise.all(found.map((file) => loadEntry(file, settings.contentSecurityPolicy)));
  const files = new Map(found.map((file, i) => [file.urlPath, entries[i]!]));
  return {
    size: files.size,
    handle: (req, res) => handle(files, req, res),
    has: (url) => {
      const path = decodeTarget(url ?? '');
      return typeof path === 'string' && files.has(path.endsWith('/') ? `${path}index.html` : path);
    },
  };
}

interface Settings extends Required<Omit<StaticOptions, 'root'>> {
  roots: readonly string[];
}

function validate(options: StaticOptions): Settings {
  // `??` rather than a spread, so that an explicit `undefined` still means "the default".
  const settings = {
    roots: typeof options.root === 'string' ? [options.root] : options.root,
    contentSecurityPolicy: options.contentSecurityPolicy ?? DEFAULTS.contentSecurityPolicy,
    maxFiles: options.maxFiles ?? DEFAULTS.maxFiles,
    maxBytes: options.maxBytes ?? DEFAULTS.maxBytes,
  };
  if (!Array.isArray(settings.roots) || settings.roots.length === 0) {
    throw new TypeError(`static root must be an absolute path or a list of them, got ${JSON.stringify(options.root)}`);
  }
  for (const root of settings.roots) {
    if (typeof root !== 'string' || !isAbsolute(root)) {
      throw new TypeError(`static root must be an absolute path, got ${JSON.stringify(root)}`);
    }
  }
  if (typeof settings.contentSecurityPolicy !== 'string' || /[\r\n]/.test(settings.contentSecurityPolicy)) {
    throw new TypeError('contentSecurityPolicy must be a single-line string');
  }
  for (const key of ['maxFiles', 'maxBytes'] as const) {
    if (!Number.isSafeInteger(settings[key]) || settings[key] < 0) {
      throw new TypeError(`${key} must be a non-negative integer, got ${JSON.stringify(settings[key])}`);
    }
  }
  return settings;
}

// The real path, so that symlinks inside can be checked against it.
async function resolveRoot(root: string): Promise<string> {
  const real = await realpath(root).catch(() => undefined);
  const info = real === undefined ? undefined : await stat(real);
  if (real === undefined || !info?.isDirectory()) {
    throw new StaticFilesError('PLAZA_ERR_STATIC_ROOT', `static folder ${root} does not exist; run \`npm run build\` first, or fix the path (--public-dir)`);
  }
  return real;
}

/** The files of one folder; each folder alone is held to the limits before the merge is. */
async function listFiles(root: string, maxFiles: number, maxBytes: number): Promise<Array<FoundFile & { size: number }>> {
  const found: Array<FoundFile & { size: number }> = [];
  let bytes = 0;
  const visit = async (dir: string, urlDir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      // .env, .git, editor swap files: never meant to be public.
      if (entry.name.startsWith('.')) continue;
      const fsPath = join(dir, entry.name);
      const urlPath = `${urlDir}/${entry.name}`;
      if (entry.isDirectory()) {
        await visit(fsPath, urlPath);
        continue;
      }
      const info = await publishableFile(root, fsPath, entry);
      if (info === undefined) continue;
      found.push({ urlPath, fsPath, size: info.size });
      bytes += info.size;
      if (found.length > maxFiles) throw tooBig(root, `more than ${maxFiles} files`, { maxFiles, maxBytes });
      if (bytes > maxBytes) throw tooBig(root, `more than ${maxBytes} bytes`, { maxFiles, maxBytes });
    }
  };
  await visit(root, '');
  return found;
}

// A symlink is followed only to a regular, non-hidden file inside the folder: one pointing
// outside would publish whatever it names, and following linked directories could loop.
async function publishableFile(root: string, fsPath: string, entry: Dirent): Promise<Stats | undefined> {
  if (entry.isFile()) return stat(fsPath);
  if (!entry.isSymbolicLink()) return undefined;
  const target = await realpath(fsPath).catch(() => undefined);
  if (target === undefined) return undefined;
  const inside = relative(root, target);
  if (inside === '' || isAbsolute(inside) || inside.split(sep).some((part) => part.startsWith('.'))) return undefined;
  const info = await stat(target);
  return info.isFile() ? info : undefined;
}

/** No flag raises the limits: they keep what the server holds in memory modest. */
function tooBig(root: string, what: string, limits: { maxFiles: number; maxBytes: number }): StaticFilesError {
  return new StaticFilesError(
    'PLAZA_ERR_STATIC_LIMIT',
    `static folder ${root} holds ${what}; --public-dir serves at most ${limits.maxFiles} files and ${limits.maxBytes} bytes, from memory: put fewer files there, and large ones behind a web server or CDN`,
  );
}

const gzipAsync = promisify(gzip);
const brotliAsync = promisify(brotliCompress);

async function loadEntry(file: FoundFile, csp: string): Promise<Entry> {
  const body = await readFile(file.fsPath);
  const ext = extname(file.urlPath).toLowerCase();
  const type = TYPES.get(ext) ?? UNKNOWN_TYPE;
  // A strong validator must differ between content codings (RFC 9110 §8.8.3), hence the suffixes.
  const hash = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}`;
  // Until it is known whether compressing pays off, the answer may vary with Accept-Encoding.
  const entry: Entry = { identity: variant(body, `${hash}"`, type, baseHeaders(file.urlPath, ext, csp, type.compressible), undefined) };
  if (!type.compressible) return entry;
  entry.compress = async () => {
    const [gz, br] = await compress(body).catch(() => [undefined, undefined]);
    const base = baseHeaders(file.urlPath, ext, csp, gz !== undefined || br !== undefined);
    entry.identity = variant(body, `${hash}"`, type, base, undefined);
    if (gz) entry.gzip = variant(gz, `${hash}-gzip"`, type, base, 'gzip');
    if (br) entry.br = variant(br, `${hash}-br"`, type, base, 'br');
  };
  return entry;
}

// A variant that saves under 5% is not worth a decode on the client and a Vary split in caches.
async function compress(body: Buffer): Promise<[Buffer | undefined, Buffer | undefined]> {
  const [gz, br] = await Promise.all([
    gzipAsync(body, { level: zlib.Z_BEST_COMPRESSION }),
    brotliAsync(body, {
      params: {
        [zlib.BROTLI_PARAM_MODE]: zlib.BROTLI_MODE_TEXT,
        // Brotli's best takes about 2 s per MiB; past the size a first answer waits for, a
        // middle quality (a few hundred ms for tens of MB, still well ahead of gzip) keeps a
        // thread of the pool from being held for a minute.
        [zlib.BROTLI_PARAM_QUALITY]: body.length <= WAIT_FOR_COMPRESSION_BYTES ? zlib.BROTLI_MAX_QUALITY : LARGE_FILE_BROTLI_QUALITY,
        [zlib.BROTLI_PARAM_SIZE_HINT]: body.length,
      },
    }),
  ]);
  const worthIt = (packed: Buffer) => (packed.length < body.length * 0.95 ? packed : undefined);
  return [worthIt(gz), worthIt(br)];
}

function baseHeaders(urlPath: string, ext: string, csp: string, varies: boolean): OutgoingHttpHeaders {
  const html = ext === '.html';
  const headers: OutgoingHttpHeaders = {
    'Cache-Control': html || REVALIDATED_PATHS.has(urlPath) ? 'no-cache' : 'public, max-age=3600',
    ...SECURITY_HEADERS,
  };
  if (html) {
    headers['X-Frame-Options'] = 'DENY';
    if (csp) headers['Content-Security-Policy'] = csp;
  }
  // Pages on other origins load plaza.js / plaza.mjs; module scripts are fetched in CORS mode and
  // a COEP page also needs CORP to accept them.
  if (ext === '.js' || ext === '.mjs') {
    Object.assign(headers, { 'Access-Control-Allow-Origin': '*', 'Cross-Origin-Resource-Policy': 'cross-origin' });
  }
  if (varies) headers['Vary'] = 'Accept-Encoding';
  return headers;
}

function variant(body: Buffer, etag: string, type: FileType, base: OutgoingHttpHeaders, encoding?: string): Variant {
  const notModified = { ...base, ETag: etag };
  const ok: OutgoingHttpHeaders = { ...notModified, 'Content-Type': type.contentType, 'Content-Length': body.length };
  if (encoding) ok['Content-Encoding'] = encoding;
  return { etag, body, ok, notModified };
}

function handle(files: Map<string, Entry>, req: IncomingMessage, res: ServerResponse): void {
  const head = req.method === 'HEAD';
  if (req.method !== 'GET' && !head) {
    sendError(res, 405, head, { Allow: 'GET, HEAD' });
    return;
  }
  const path = decodeTarget(req.url ?? '');
  if (typeof path === 'number') {
    sendError(res, path, head);
    return;
  }
  const entry = files.get(path.endsWith('/') ? `${path}index.html` : path);
  if (entry === undefined) {
    sendError(res, 404, head);
    return;
  }
  if (entry.compress && req.headers['accept-encoding'] !== undefined) {
    // Once: later requests find it done (compress unset) or still under way (compressed set).
    entry.compressed ??= entry.compress().then(() => {
      entry.compress = undefined;
    });
    if (entry.identity.body.length <= WAIT_FOR_COMPRESSION_BYTES) {
      void entry.compressed.then(() => answer(entry, req, res, head));
      return;
    }
  }
  answer(entry, req, res, head);
}

function answer(entry: Entry, req: IncomingMessage, res: ServerResponse, head: boolean): void {
  const chosen = chooseVariant(entry, req.headers['accept-encoding']);
  if (matchesEtag(req.headers['if-none-match'], chosen.etag)) {
    res.writeHead(304, chosen.notModified);
    res.end();
    return;
  }
  res.writeHead(200, chosen.ok);
  res.end(head ? undefined : chosen.body);
}

/**
 * The path of a request target, decoded exactly once, or the status to refuse it with.
 * Traversal needs no check here: keys never contain `..`, `.` or empty segments, so such a path
 * is simply not found. What is refused is what no key can contain and what proxies or other
 * platforms might read differently: NUL, backslash, broken %-escapes and invalid UTF-8 (which
 * includes overlong forms such as %C0%AE; decodeURIComponent throws on them).
 */
function decodeTarget(url: string): string | 400 | 414 {
  if (url.length > MAX_URL_LENGTH) return 414;
  const target = originFormOf(url);
  if (target === undefined) return 400;
  const query = target.indexOf('?');
  let path: string;
  try {
    path = decodeURIComponent(query === -1 ? target : target.slice(0, query));
  } catch {
    return 400;
  }
  return path.includes('\0') || path.includes('\\') ? 400 : path;
}

// Server preference br > gzip among the codings the client accepts at all (q > 0, RFC 9110 §12.5.3).
function chooseVariant(entry: Entry, acceptEncoding: string | undefined): Variant {
  if (acceptEncoding === undefined || (entry.br === undefined && entry.gzip === undefined)) return entry.identity;
  const accepts = acceptedCodings(acceptEncoding);
  if (entry.br && accepts('br')) return entry.br;
  if (entry.gzip && accepts('gzip')) return entry.gzip;
  return entry.identity;
}

function acceptedCodings(header: string): (coding: string) => boolean {
  const weights = new Map<string, number>();
  for (const item of header.split(',')) {
    const [name = '', ...params] = item.split(';');
    let q = 1;
    for (const param of params) {
      const [key = '', value = ''] = param.split('=');
      // An unreadable weight counts as "not acceptable": identity always works.
      if (key.trim().toLowerCase() === 'q') q = Number(value.trim()) || 0;
    }
    weights.set(name.trim().toLowerCase(), q);
  }
  return (coding) => (weights.get(coding) ?? weights.get('*') ?? 0) > 0;
}

// If-None-Match uses the weak comparison (RFC 9110 §13.1.2): a W/ prefix does not matter.
function matchesEtag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  for (const match of header.matchAll(/(?:W\/)?("[^"]*")/g)) {
    if (match[1] === etag) return true;
  }
  return false;
}

// Fixed bodies: the request path is never echoed back, so an error page cannot reflect input.
function sendError(res: ServerResponse, status: number, head: boolean, extra: OutgoingHttpHeaders = {}): void {
  const body = `${STATUS_CODES[status]}\n`;
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    ...extra,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(head ? undefined : body);
}
