/**
 * Append-only journal of room history on disk (--data-dir), so history survives a restart.
 *
 * Write-ahead: append() only buffers; the server calls flush() once per event-loop turn just
 * before that turn's frames leave, and flush() writes the whole batch with one fs.writeSync.
 * Once writeSync returns, the bytes are in the kernel page cache, which outlives the process, so
 * a crash (even SIGKILL) never loses a message a client has seen. There is no fsync per message:
 * a power loss may lose the tail the OS had not written back yet; it reads back as a torn or
 * corrupt line and is skipped.
 *
 * Format: DIR/00000001.log, 00000002.log … hold one record per line, JSON with fixed keys
 * {"room","epoch","offset","time","data"}, plus "publishId" and "fingerprint" for a message
 * published with an id (issue #22). JSON.stringify escapes newlines and lone surrogates,
 * so '\n' only ever ends a record and any string round-trips through UTF-8. A line without its
 * '\n' (torn write), that does not parse, or whose shape is wrong is skipped and counted. No
 * checksum: torn writes are caught by the missing newline, bit rot is the filesystem's business.
 *
 * The folder itself (creating it, its LOCK, what is wrong with it) is journal-folder.ts.
 */
import { closeSync, ftruncateSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { acquireLock, dataDirError, ignoreErrors, JournalError, makeDirectory, releaseLock } from './journal-folder.js';

export { JournalError, type JournalErrorCode } from './journal-folder.js';

export interface JournalRecord {
  /** Any string, '__proto__' included: records are never used as object keys. */
  room: string;
  epoch: string;
  /** Integer ≥ 1. */
  offset: number;
  /** ms since the Unix epoch. */
  time: number;
  /** Opaque payload text (the message envelope JSON). */
  data: string;
  /** The message's publish id, when it had one (issue #22): a restart keeps the window. */
  publishId?: string;
  /** With publishId: the HTTP API request's fingerprint, when it had one. */
  fingerprint?: string;
}

export interface JournalOptions {
  /** Folder for segment files; created if missing (recursive). */
  dir: string;
  /** A segment is closed and a new one started past this many bytes. @default 4 MiB, or maxBytes / 4 if smaller */
  segmentBytes?: number;
  /** Oldest segments are deleted while the total exceeds this; also bounds records held through a disk failure. @default 256 MiB */
  maxBytes?: number;
  /** Segments whose newest record is older than this (ms) are deleted at open and on roll. @default 86400000 (24 h) */
  retainMs?: number;
  /** Clock, injectable for tests. @default Date.now */
  now?: () => number;
}

export interface OpenedJournal {
  journal: Journal;
  /** Every intact record from retained segments, oldest first (in append order). */
  records: JournalRecord[];
  /** Records that could not be read (a torn last record after a crash, or a corrupt line); skipped, not fatal. */
  skipped: number;
}

const DEFAULTS = { segmentBytes: 4 * 1024 ** 2, maxBytes: 256 * 1024 ** 2, retainMs: 24 * 60 * 60 * 1000, now: Date.now };
const SEGMENT_NAME = /^(\d{8,})\.log$/;
const NEWLINE = 0x0a;

interface Segment {
  seq: number;
  path: string;
  bytes: number;
  /** Time of the newest record (file mtime if none is intact), for retainMs. */
  newest: number;
}

export class Journal {
  private pending: string[] = [];
  private pendingChars = 0;
  private pendingNewest = -Infinity;
  private dropped = 0;
  private isHealthy = true;
  private error: string | undefined;
  private closed = false;

  private constructor(
    private readonly options: Required<JournalOptions>,
    private readonly lockPath: string,
    /** Oldest first; while `fd` is open it belongs to the last one. */
    private readonly segments: Segment[],
    private fd: number | undefined,
    private nextSeq: number,
  ) {}

  /** Reads the folder back, takes its LOCK and returns a journal ready to append. Synchronous: for start-up. */
  static open(options: JournalOptions): OpenedJournal {
    const resolved = resolveOptions(options);
    const { dir } = resolved;
    try {
      makeDirectory(dir);
      if (!statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    } catch (error) {
      throw error instanceof JournalError ? error : dataDirError(dir, error);
    }
    const lockPath = join(dir, 'LOCK');
    acquireLock(dir, lockPath);
    try {
      return Journal.load(resolved, lockPath);
    } catch (error) {
      releaseLock(lockPath);
      throw error instanceof JournalError ? error : dataDirError(dir, error);
    }
  }

  private static load(options: Required<JournalOptions>, lockPath: string): OpenedJournal {
    const segments: Segment[] = [];
    let lastSeq = 0;
    for (const entry of readdirSync(options.dir, { withFileTypes: true })) {
      const seq = Number(SEGMENT_NAME.exec(entry.name)?.[1] ?? 0);
      // Numbering passes anything squatting on a segment name, so a new segment can be created.
      lastSeq = Math.max(lastSeq, seq);
      if (seq === 0 || !entry.isFile()) continue;
      const path = join(options.dir, entry.name);
      const stats = statSync(path);
      segments.push({ seq, path, bytes: stats.size, newest: stats.mtimeMs });
    }
    segments.sort((a, b) => a.seq - b.seq);
    // Sizes first, so a lowered maxBytes never makes start-up read more than it keeps.
    while (total(segments) > options.maxBytes && segments.length > 1) deleteOldest(segments);
    const parsed = segments.map((segment) => {
      const result = readSegment(readFileSync(segment.path));
      // reduce, not Math.max(...): spreading 100k+ arguments overflows the stack.
      if (result.records.length > 0) segment.newest = result.records.reduce((max, r) => Math.max(max, r.time), -Infinity);
      return result;
    });
    // Only from the oldest end, so what is kept stays one contiguous stretch of history.
    const cutoff = options.now() - options.retainMs;
    while (segments[0] && segments[0].newest < cutoff) {
      deleteOldest(segments);
      parsed.shift();
    }
    let fd: number | undefined;
    const last = segments.at(-1);
    const lastParsed = parsed.at(-1);
    if (last && lastParsed) {
      // Cut a torn tail off so the next record cannot glue onto it (and it is counted only once).
      if (lastParsed.intactBytes < last.bytes) {
        const tornFd = openSync(last.path, 'r+');
        try {
          ftruncateSync(tornFd, lastParsed.intactBytes);
        } finally {
          closeSync(tornFd);
        }
        last.bytes = lastParsed.intactBytes;
      }
      // Keep filling the newest segment, so restarts do not leave a trail of tiny files.
      if (last.bytes < options.segmentBytes) fd = openSync(last.path, 'a');
    }
    return {
      journal: new Journal(options, lockPath, segments, fd, lastSeq + 1),
      records: parsed.flatMap((p) => p.records),
      skipped: parsed.reduce((sum, p) => sum + p.skipped, 0),
    };
  }

  /** False after a flush hit an I/O error; true again once a flush succeeds. */
  get healthy(): boolean { return this.isHealthy; }
  /** The most recent I/O error, kept after recovery for diagnostics. */
  get lastError(): string | undefined { return this.error; }
  /** Buffered, not yet written. */
  get pendingRecords(): number { return this.pending.length; }
  /** Records discarded because a disk failure outlasted maxBytes of buffer. */
  get droppedRecords(): number { return this.dropped; }
  /** Total size of all segments. */
  get bytesOnDisk(): number { return total(this.segments); }

  /** Buffers a record for the next flush(); no I/O. Ignored after close(). */
  append(record: JournalRecord): void {
    if (this.closed) return;
    // A caller bug, caught here: written as is, the record would be skipped at the next start.
    if (!isRecord(record)) throw new TypeError('journal record: expected string room/epoch/data, integer offset ≥ 1, finite time');
    const { room, epoch, offset, time, data, publishId, fingerprint } = record;
    // Optional keys are left out when absent (JSON.stringify skips undefined): old records read the same.
    const line = JSON.stringify({ room, epoch, offset, time, data, publishId, fingerprint }) + '\n';
    this.pending.push(line);
    this.pendingChars += line.length;
    this.pendingNewest = Math.max(this.pendingNewest, time);
  }

  /** Writes everything buffered with one writeSync, then rolls and prunes segments. Never throws. */
  flush(): void {
    if (this.closed || this.pending.length === 0) return;
    let segment: Segment;
    try {
      segment = this.activeSegment();
      this.write(segment, Buffer.from(this.pending.join('')));
    } catch (error) {
      this.fail(error);
      // Kept for the next flush, but bounded: through a long outage the oldest go (in chars, roughly bytes).
      while (this.pendingChars > this.options.maxBytes && this.pending.length > 0) {
        this.pendingChars -= this.pending.shift()?.length ?? 0;
        this.dropped++;
      }
      return;
    }
    segment.newest = Math.max(segment.newest, this.pendingNewest);
    this.pending = [];
    this.pendingChars = 0;
    this.pendingNewest = -Infinity;
    this.isHealthy = true;
    try {
      if (segment.bytes >= this.options.segmentBytes) {
        this.closeFd();
        const cutoff = this.options.now() - this.options.retainMs;
        while (this.segments[0] && this.segments[0].newest < cutoff) deleteOldest(this.segments);
      }
      // Never the last segment: it holds the newest history (and the open fd).
      while (this.bytesOnDisk > this.options.maxBytes && this.segments.length > 1) deleteOldest(this.segments);
    } catch (error) {
      this.fail(error);
    }
  }

  /** Flushes, closes the segment and releases the LOCK. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.closeFd();
    releaseLock(this.lockPath);
  }

  private activeSegment(): Segment {
    const last = this.segments.at(-1);
    if (this.fd !== undefined && last) return last;
    // The number advances even when creating fails, so a squatter on one name cannot block us.
    const seq = this.nextSeq++;
    const path = join(this.options.dir, `${String(seq).padStart(8, '0')}.log`);
    this.fd = openSync(path, 'ax');
    const segment: Segment = { seq, path, bytes: 0, newest: -Infinity };
    this.segments.push(segment);
    return segment;
  }

  private write(segment: Segment, batch: Buffer): void {
    const fd = this.fd as number;
    let written = 0;
    try {
      while (written < batch.length) written += writeSync(fd, batch, written);
      segment.bytes += written;
    } catch (error) {
      // ENOSPC can strike after part of the batch: cut that off, so the retry neither duplicates
      // records nor glues onto a torn line (if this fails too, the torn line is skipped on read).
      // Then drop this fd (it may be the cause); the next flush starts a new segment.
      if (written > 0) ignoreErrors(() => ftruncateSync(fd, segment.bytes));
      this.closeFd();
      if (segment.bytes === 0 && this.segments.at(-1) === segment) {
        this.segments.pop();
        ignoreErrors(() => rmSync(segment.path, { force: true }));
      }
      throw error;
    }
  }

  private closeFd(): void {
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) ignoreErrors(() => closeSync(fd));
  }

  private fail(error: unknown): void {
    this.isHealthy = false;
    this.error = error instanceof Error ? error.message : String(error);
  }
}

function resolveOptions(options: JournalOptions): Required<JournalOptions> {
  const { dir, maxBytes = DEFAULTS.maxBytes, retainMs = DEFAULTS.retainMs, now = DEFAULTS.now } = options;
  // With a small maxBytes, smaller segments: deleting the oldest must not throw most history away.
  const { segmentBytes = Math.max(1, Math.min(DEFAULTS.segmentBytes, Math.floor(maxBytes / 4))) } = options;
  if (typeof dir !== 'string' || dir === '') throw new TypeError('dir: expected a folder path');
  if (!Number.isSafeInteger(segmentBytes) || segmentBytes < 1) throw new TypeError(`segmentBytes: expected a size in bytes ≥ 1, got ${segmentBytes}`);
  if (!Number.isSafeInteger(maxBytes) || maxBytes < segmentBytes) {
    throw new TypeError(`maxBytes: expected a size in bytes ≥ segmentBytes (${segmentBytes}), got ${maxBytes}`);
  }
  if (typeof retainMs !== 'number' || !(retainMs > 0)) throw new TypeError(`retainMs: expected ms > 0 (Infinity keeps all), got ${retainMs}`);
  if (typeof now !== 'function') throw new TypeError('now: expected a function returning ms since the epoch');
  return { dir, segmentBytes, maxBytes, retainMs, now };
}

function readSegment(buffer: Buffer): { records: JournalRecord[]; skipped: number; intactBytes: number } {
  const records: JournalRecord[] = [];
  let skipped = 0;
  let start = 0;
  while (start < buffer.length) {
    const end = buffer.indexOf(NEWLINE, start);
    if (end === -1) {
      skipped++; // torn: the process died mid-write
      break;
    }
    const record = parseRecord(buffer.toString('utf8', start, end));
    if (record) records.push(record);
    else skipped++;
    start = end + 1;
  }
  return { records, skipped, intactBytes: start };
}

function parseRecord(line: string): JournalRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!isRecord(value)) return undefined;
  const { room, epoch, offset, time, data, publishId, fingerprint } = value;
  const record: JournalRecord = { room, epoch, offset, time, data };
  if (publishId !== undefined) record.publishId = publishId;
  if (fingerprint !== undefined) record.fingerprint = fingerprint;
  return record;
}

function isRecord(value: unknown): value is JournalRecord {
  if (typeof value !== 'object' || value === null) return false;
  const { room, epoch, offset, time, data, publishId, fingerprint } = value as Record<string, unknown>;
  return typeof room === 'string' && typeof epoch === 'string' && typeof data === 'string' &&
    typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 1 && typeof time === 'number' && Number.isFinite(time) &&
    (publishId === undefined || typeof publishId === 'string') && (fingerprint === undefined || typeof fingerprint === 'string');
}

function total(segments: Segment[]): number {
  return segments.reduce((sum, s) => sum + s.bytes, 0);
}

function deleteOldest(segments: Segment[]): void {
  const oldest = segments.shift();
  if (oldest) rmSync(oldest.path, { force: true });
}

