/**
 * Log lines to stdout, a turn of the event loop at a time. Writing each line at once costs a
 * write(2) and Node's stream bookkeeping, 4–6 µs a line against 1–2 µs to build it: with two
 * lines per connection that was a fifth of a handshake, and a reconnect storm paid it thousands
 * of times in a few milliseconds. Lines written in one turn go out together right after it, in
 * their order; past MAX_PENDING characters they go at once, so what waits is bounded. Whatever
 * still waits when the process exits (process.exit() included) is written synchronously then.
 *
 * stdout is one per process, so this writer is too: every logger of the process shares it, made
 * on the first line (a logger that never writes, `silent`, never makes it).
 */
import { writeSync } from 'node:fs';

/** Characters kept before they are written without waiting for the turn to end. */
const MAX_PENDING = 64 * 1024;

export interface LineSink {
  write(text: string): unknown;
}

/**
 * A writer batching lines into `sink` per turn; `fd` is the sink's file descriptor, written
 * synchronously on exit.
 */
export function createBatchedLines(sink: LineSink, fd: number | undefined): (line: string) => void {
  let pending = '';
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending === '') return;
    const text = pending;
    pending = '';
    sink.write(text);
  };
  process.once('exit', () => {
    if (pending === '') return;
    const text = pending;
    pending = '';
    try {
      if (fd === undefined) sink.write(text);
      else writeSync(fd, text);
    } catch {
      // stdout already gone (a closed pipe): there is nowhere left to say it.
    }
  });
  return (line) => {
    pending += line;
    if (pending.length >= MAX_PENDING) return flush();
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
}

let stdoutLines: ((line: string) => void) | undefined;

/** Writes `line` to stdout with the other lines of this turn (see above). */
export function writeStdoutLine(line: string): void {
  (stdoutLines ??= createBatchedLines(process.stdout, 1))(line);
}
