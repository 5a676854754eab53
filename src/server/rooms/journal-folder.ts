/**
 * The journal's folder (--data-dir): created one level at a time, held with a LOCK file, and
 * every way it can be unusable turned into an error that says what to do.
 *
 * DIR/LOCK holds {"pid","started"} of the process using the folder. Best effort: it stops a
 * second server on the same host (same pid namespace), not one on another host or container
 * sharing the folder.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export type JournalErrorCode = 'PLAZA_ERR_DATA_DIR' | 'PLAZA_ERR_DATA_DIR_LOCKED';

/** Why Journal.open() could not use the folder; never thrown after start-up. */
export class JournalError extends Error {
  override readonly name = 'JournalError';
  constructor(readonly code: JournalErrorCode, message: string) {
    super(message);
  }
}

// When this process started. With the pid it tells a LOCK left by an earlier process that had
// the same pid (pid 1 again after a container restart) from a second open in this very process.
const STARTED = Math.round(performance.timeOrigin);

export function acquireLock(dir: string, lockPath: string): void {
  const mine = JSON.stringify({ pid: process.pid, started: STARTED });
  // Two tries: the second follows removing a stale LOCK left by a process that died.
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lockPath, mine, { flag: 'wx' });
      return;
    } catch (error) {
      // The folder exists, so ENOENT here means it refuses new files (procfs does that).
      if (errorCode(error) !== 'EEXIST') throw dataDirError(dir, error, true);
    }
    const holder = readLock(lockPath);
    if (holder && isRunning(holder)) {
      const message = `--data-dir ${dir} is in use by process ${holder.pid}: stop that server or choose another folder (if no server uses it, delete ${lockPath})`;
      throw new JournalError('PLAZA_ERR_DATA_DIR_LOCKED', message);
    }
    rmSync(lockPath, { force: true });
  }
  throw new JournalError('PLAZA_ERR_DATA_DIR_LOCKED', `--data-dir ${dir}: another server is starting on it; choose another folder`);
}

function readLock(lockPath: string): { pid: number; started: unknown } | undefined {
  try {
    const value = JSON.parse(readFileSync(lockPath, 'utf8')) as { pid?: unknown; started?: unknown } | null;
    // A positive integer only: process.kill(0 or -n) would signal a whole process group.
    if (typeof value?.pid === 'number' && Number.isSafeInteger(value.pid) && value.pid > 0) return { pid: value.pid, started: value.started };
  } catch {
    // Unreadable or garbage (a LOCK torn by a crash): treated as stale.
  }
  return undefined;
}

function isRunning(holder: { pid: number; started: unknown }): boolean {
  if (holder.pid === process.pid) return holder.started === STARTED;
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) === 'EPERM'; // alive, owned by another user
  }
}

export function releaseLock(lockPath: string): void {
  // Only our own: after a stale-lock takeover the file may be someone else's. If removing fails,
  // leaving it is safe: the next start finds this process gone and takes over.
  const holder = readLock(lockPath);
  if (holder?.pid === process.pid && holder.started === STARTED) ignoreErrors(() => rmSync(lockPath, { force: true }));
}

/**
 * `mkdir -p`, one level at a time below the deepest folder that exists. Node's recursive mkdir
 * reports ENOENT on a read-only filesystem, and on /proc, where mkdir answers ENOENT although
 * the parent exists, it retries the parent forever. Here the parent of each level is known to
 * exist, so any refusal to create it means the place is not writable.
 */
export function makeDirectory(dir: string): void {
  const missing: string[] = [];
  for (let path = dir; !existsSync(path) && dirname(path) !== path; path = dirname(path)) missing.push(path);
  for (const level of missing.reverse()) {
    try {
      mkdirSync(level);
    } catch (error) {
      // Created meanwhile by someone else is as good; anything else is reported for the whole folder.
      if (errorCode(error) !== 'EEXIST') throw dataDirError(dir, error, true);
    }
  }
}

/** `creating`: the error came from creating something inside a folder that exists. */
export function dataDirError(dir: string, error: unknown, creating = false): JournalError {
  const code = errorCode(error);
  if (code === 'ENOTDIR' || code === 'EEXIST') return new JournalError('PLAZA_ERR_DATA_DIR', `--data-dir ${dir} is not a directory: choose a folder path`);
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || (creating && code === 'ENOENT')) {
    return new JournalError(
      'PLAZA_ERR_DATA_DIR',
      `--data-dir ${dir} is not writable (${code}): check its permissions and that its filesystem is not read-only, or choose another folder`,
    );
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new JournalError('PLAZA_ERR_DATA_DIR', `--data-dir ${dir} could not be used (${reason}): check the folder or choose another`);
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** For clean-up whose failure changes nothing: the caller has already decided what happens next. */
export function ignoreErrors(action: () => void): void {
  try {
    action();
  } catch {
    // See the caller's comment.
  }
}
