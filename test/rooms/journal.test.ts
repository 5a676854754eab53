import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Journal, JournalError, type JournalOptions, type JournalRecord } from '../../src/server/rooms/journal.js';

// The crash test re-runs this very file (bundled, it carries the journal) as a child process
// with this variable set: the child journals, flushes and SIGKILLs itself, like a crashing server.
function crashChild(dir: string): never {
  const { journal } = Journal.open({ dir });
  for (let offset = 1; offset <= 3; offset++) journal.append(record(offset));
  journal.flush();
  journal.append(record(4)); // buffered only, never flushed: no client saw it
  process.kill(process.pid, 'SIGKILL');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // until the signal lands
  throw new Error('unreachable');
}

// Records carry fixed times; journals opened through open()/readBack() get a clock just after
// them, so the default 24 h retention never depends on when the tests run.
const T0 = 1_700_000_000_000;

function record(offset: number, extra: Partial<JournalRecord> = {}): JournalRecord {
  return { room: 'lobby', epoch: 'e1', offset, time: T0 + offset, data: `{"text":"message ${offset}"}`, ...extra };
}

const CRASH_DIR = process.env.PLAZA_JOURNAL_CRASH_DIR;
if (CRASH_DIR) crashChild(CRASH_DIR); // after the helpers it uses are initialised

let root: string;
let count = 0;

/** A fresh, empty folder path (not created: open() must create it). */
function freshDir(): string {
  return join(root, `j${++count}`);
}

function open(options: JournalOptions) {
  return Journal.open({ now: () => T0 + 60_000, ...options });
}

/** What a restart would replay: opens, closes again, returns the offsets read back. */
function readBack(options: JournalOptions): number[] {
  const { journal, records } = open(options);
  journal.close();
  return offsets(records);
}

function segmentFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.endsWith('.log')).sort();
}

function lineBytes(offset: number): number {
  return Buffer.byteLength(JSON.stringify(record(offset)) + '\n');
}

function offsets(records: JournalRecord[]): number[] {
  return records.map((r) => r.offset);
}

function deadPid(): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', '']);
    child.on('error', reject);
    child.on('exit', () => resolve(child.pid ?? 0));
  });
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'plaza-journal-'));
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('Journal', () => {
  describe('.open', () => {
    it('creates a missing folder (recursively) and starts empty', () => {
      const dir = join(freshDir(), 'a', 'b');
      const { journal, records, skipped } = open({ dir });
      assert.deepEqual(records, []);
      assert.equal(skipped, 0);
      assert.ok(statSync(dir).isDirectory());
      assert.equal(journal.healthy, true);
      assert.equal(journal.bytesOnDisk, 0);
      journal.close();
    });

    it('throws a JournalError with a code when the path is a file', () => {
      const file = join(root, 'plain-file');
      writeFileSync(file, 'x');
      assert.throws(() => open({ dir: file }), (error: unknown) => {
        assert.ok(error instanceof JournalError);
        assert.equal(error.code, 'PLAZA_ERR_DATA_DIR');
        assert.match(error.message, /--data-dir .*plain-file is not a directory: choose a folder path/);
        return true;
      });
      assert.throws(() => open({ dir: join(file, 'below') }), { name: 'JournalError', code: 'PLAZA_ERR_DATA_DIR' });
    });

    it('rejects bad options with a TypeError naming the option', () => {
      const dir = freshDir();
      assert.throws(() => open({ dir: '' }), { name: 'TypeError', message: /^dir:/ });
      assert.throws(() => open({ dir, segmentBytes: 0 }), { name: 'TypeError', message: /^segmentBytes:/ });
      assert.throws(() => open({ dir, segmentBytes: 100, maxBytes: 99 }), { name: 'TypeError', message: /^maxBytes: expected a size in bytes ≥ segmentBytes \(100\)/ });
      assert.throws(() => open({ dir, retainMs: 0 }), { name: 'TypeError', message: /^retainMs:/ });
      assert.equal(existsSync(dir), false, 'validated before touching the disk');
    });

    it('derives smaller segments from a small maxBytes instead of rejecting it', () => {
      const dir = freshDir();
      const { journal } = open({ dir, maxBytes: 40 * lineBytes(1) }); // segments of 10 lines
      for (let offset = 1; offset <= 9; offset++) journal.append(record(offset));
      journal.flush();
      journal.append(record(10));
      journal.append(record(11));
      journal.flush();
      journal.append(record(12));
      journal.close();
      assert.deepEqual(segmentFiles(dir), ['00000001.log', '00000002.log']);
    });
  });

  describe('#append / #flush', () => {
    it('round-trips records in order, with newlines, unicode and any room name', () => {
      const dir = freshDir();
      const written = [
        record(1, { room: '__proto__', data: 'line one\nline two\r\n{"offset":99}' }),
        record(2, { room: 'constructor', data: 'héllo 👋 \u2028 \u0000 \ud800 lone surrogate' }),
        record(3, { room: '', epoch: 'x\ny', data: '' }),
        record(4, { time: 0 }),
      ];
      const first = open({ dir });
      for (const r of written) first.journal.append(r);
      first.journal.close();
      const second = open({ dir });
      assert.deepEqual(second.records, written);
      assert.equal(second.skipped, 0);
      assert.equal(Object.getPrototypeOf(second.records[0]), Object.prototype);
      second.journal.close();
    });

    it('writes nothing before flush and everything after, in one file', () => {
      const dir = freshDir();
      const { journal } = open({ dir });
      for (let offset = 1; offset <= 5; offset++) journal.append(record(offset));
      assert.equal(journal.pendingRecords, 5);
      assert.deepEqual(segmentFiles(dir), []);
      assert.equal(journal.bytesOnDisk, 0);
      journal.flush();
      assert.equal(journal.pendingRecords, 0);
      const files = segmentFiles(dir);
      assert.deepEqual(files, ['00000001.log']);
      const text = readFileSync(join(dir, '00000001.log'), 'utf8');
      assert.equal(text.split('\n').length, 6);
      assert.equal(journal.bytesOnDisk, Buffer.byteLength(text));
      journal.flush(); // nothing pending: no-op
      assert.equal(journal.bytesOnDisk, Buffer.byteLength(text));
      journal.close();
    });

    it('throws a TypeError for a record that could not be read back', () => {
      const { journal } = open({ dir: freshDir() });
      for (const bad of [{ time: Number.NaN }, { offset: 0 }, { offset: 2.5 }, { data: 1 as unknown as string }]) {
        assert.throws(() => journal.append(record(1, bad)), { name: 'TypeError', message: /^journal record:/ });
      }
      assert.equal(journal.pendingRecords, 0);
      journal.close();
    });

    it('ignores extra properties on a record', () => {
      const dir = freshDir();
      const { journal } = open({ dir });
      journal.append({ ...record(1), secret: 'not stored' } as JournalRecord);
      journal.close();
      assert.doesNotMatch(readFileSync(join(dir, '00000001.log'), 'utf8'), /secret/);
    });

    it('keeps filling the newest segment after a restart instead of starting a new one', () => {
      const dir = freshDir();
      for (let offset = 1; offset <= 3; offset++) {
        const { journal } = open({ dir });
        journal.append(record(offset));
        journal.close();
      }
      assert.deepEqual(segmentFiles(dir), ['00000001.log']);
      const { journal, records } = open({ dir });
      assert.deepEqual(offsets(records), [1, 2, 3]);
      journal.close();
    });
  });

  describe('segments', () => {
    it('rolls to a new segment once one passes segmentBytes, never splitting a batch', () => {
      const dir = freshDir();
      const segmentBytes = lineBytes(1) * 3;
      const { journal } = open({ dir, segmentBytes, maxBytes: 1024 * 1024 });
      for (let offset = 1; offset <= 10; offset++) {
        journal.append(record(offset));
        journal.flush();
      }
      journal.append(record(11));
      journal.append(record(12));
      journal.append(record(13));
      journal.append(record(14));
      journal.flush(); // one batch of 4 lands whole in one segment
      journal.close();
      const sizes = segmentFiles(dir).map((name) => statSync(join(dir, name)).size);
      assert.deepEqual(segmentFiles(dir), ['00000001.log', '00000002.log', '00000003.log', '00000004.log']);
      const bytes = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => lineBytes(from + i)).reduce((a, b) => a + b);
      assert.deepEqual(sizes, [bytes(1, 3), bytes(4, 6), bytes(7, 9), bytes(10, 14)]);
      const reopened = open({ dir, segmentBytes, maxBytes: 1024 * 1024 });
      assert.deepEqual(offsets(reopened.records), Array.from({ length: 14 }, (_, i) => i + 1));
      reopened.journal.close();
    });

    it('deletes the oldest segments while the total exceeds maxBytes, keeping the newest', () => {
      const dir = freshDir();
      const line = lineBytes(1);
      const options = { dir, segmentBytes: line * 2, maxBytes: line * 5 };
      const { journal } = open(options);
      for (let offset = 1; offset <= 20; offset++) {
        journal.append(record(offset));
        journal.flush();
        assert.ok(journal.bytesOnDisk <= options.maxBytes, `after ${offset}: ${journal.bytesOnDisk}`);
      }
      journal.close();
      const reopened = open(options);
      assert.deepEqual(offsets(reopened.records), [17, 18, 19, 20]);
      assert.deepEqual(segmentFiles(dir), ['00000009.log', '00000010.log']);
      reopened.journal.close();
    });

    it('applies a lowered maxBytes at open without reading what it deletes', () => {
      const dir = freshDir();
      const line = lineBytes(1);
      const { journal } = open({ dir, segmentBytes: line });
      for (let offset = 1; offset <= 6; offset++) {
        journal.append(record(offset));
        journal.flush();
      }
      journal.close();
      writeFileSync(join(dir, '00000001.log'), 'garbage that would count as skipped\n');
      const reopened = open({ dir, segmentBytes: line, maxBytes: line * 2 });
      assert.deepEqual(offsets(reopened.records), [5, 6]);
      assert.equal(reopened.skipped, 0);
      reopened.journal.close();
    });

    it('deletes segments older than retainMs on roll and at open (injected clock)', () => {
      const dir = freshDir();
      let now = 1_000_000;
      const line = Buffer.byteLength(JSON.stringify(record(1, { time: now })) + '\n');
      const options = { dir, segmentBytes: line * 2, retainMs: 10_000, now: () => now };
      const { journal } = open(options);
      journal.append(record(1, { time: now }));
      journal.append(record(2, { time: now }));
      journal.flush(); // segment 1 full: closed
      now += 5_000;
      journal.append(record(3, { time: now }));
      journal.append(record(4, { time: now }));
      journal.flush(); // segment 2 full: closed; segment 1 is 5 s old, kept
      assert.deepEqual(segmentFiles(dir), ['00000001.log', '00000002.log']);
      now += 6_000;
      journal.append(record(5, { time: now }));
      journal.append(record(6, { time: now }));
      journal.flush(); // roll: segment 1 is now 11 s old, deleted
      assert.deepEqual(segmentFiles(dir), ['00000002.log', '00000003.log']);
      journal.close();

      now += 6_000; // segment 2 is 12 s old, segment 3 is 6 s old
      const reopened = open(options);
      assert.deepEqual(offsets(reopened.records), [5, 6]);
      assert.deepEqual(segmentFiles(dir), ['00000003.log']);
      reopened.journal.close();

      now += 60_000;
      const expired = open(options);
      assert.deepEqual(expired.records, []);
      assert.deepEqual(segmentFiles(dir), []);
      expired.journal.append(record(7, { time: now }));
      expired.journal.close();
      assert.deepEqual(segmentFiles(dir), ['00000004.log'], 'numbering never goes back');
    });
  });

  describe('damaged files', () => {
    it('skips a torn last record, truncates it, and keeps appending cleanly', () => {
      const dir = freshDir();
      const first = open({ dir });
      for (let offset = 1; offset <= 3; offset++) first.journal.append(record(offset));
      first.journal.close();
      const line = JSON.stringify(record(4)) + '\n';
      appendFileSync(join(dir, '00000001.log'), line.slice(0, Math.floor(line.length / 2)));

      const second = open({ dir });
      assert.deepEqual(offsets(second.records), [1, 2, 3]);
      assert.equal(second.skipped, 1);
      second.journal.append(record(4));
      second.journal.append(record(5));
      second.journal.close();

      const third = open({ dir });
      assert.deepEqual(offsets(third.records), [1, 2, 3, 4, 5]);
      assert.equal(third.skipped, 0);
      third.journal.close();
    });

    it('skips and counts corrupt lines anywhere, keeping the records around them', () => {
      const dir = freshDir();
      const good = (offset: number) => JSON.stringify(record(offset)) + '\n';
      mkdirSync(dir);
      writeFileSync(
        join(dir, '00000001.log'),
        good(1) +
          'not json at all\n' +
          '\n' +
          good(2).slice(0, 20) + '\u0000\u0000\n' +
          JSON.stringify({ ...record(3), offset: 0 }) + '\n' +
          JSON.stringify({ ...record(3), offset: 1.5 }) + '\n' +
          JSON.stringify({ ...record(3), offset: '3' }) + '\n' +
          JSON.stringify({ ...record(3), data: { nested: true } }) + '\n' +
          JSON.stringify({ room: 'lobby', epoch: 'e1', offset: 3, time: 1 }) + '\n' +
          'null\n[1,2]\n"text"\n' +
          good(3),
      );
      writeFileSync(join(dir, '00000002.log'), good(4));
      const { journal, records, skipped } = open({ dir });
      assert.deepEqual(offsets(records), [1, 3, 4]);
      assert.equal(skipped, 11);
      journal.close();
    });

    it('ignores files that are not segments, and a directory squatting on a segment name', () => {
      const dir = freshDir();
      mkdirSync(join(dir, '00000001.log'), { recursive: true });
      writeFileSync(join(dir, 'notes.txt'), 'hello');
      writeFileSync(join(dir, '1.log'), 'short name, not ours\n');
      const { journal, records, skipped } = open({ dir });
      assert.deepEqual(records, []);
      assert.equal(skipped, 0);
      journal.append(record(1));
      journal.close();
      assert.deepEqual(readBack({ dir }), [1]);
    });
  });

  describe('I/O failures', () => {
    it('keeps serving when a segment cannot be created, and recovers on a later flush', () => {
      const dir = freshDir();
      const { journal } = open({ dir });
      mkdirSync(join(dir, '00000001.log')); // works as root, unlike chmod
      journal.append(record(1));
      assert.doesNotThrow(() => journal.flush());
      assert.equal(journal.healthy, false);
      assert.match(journal.lastError ?? '', /EEXIST/);
      assert.equal(journal.pendingRecords, 1, 'kept for the retry');

      journal.append(record(2));
      journal.flush();
      assert.equal(journal.healthy, true);
      assert.equal(journal.pendingRecords, 0);
      journal.close();
      assert.deepEqual(readBack({ dir }), [1, 2]);
    });

    it('survives its folder being deleted, and writes again once it is back', () => {
      const dir = freshDir();
      const { journal } = open({ dir });
      rmSync(dir, { recursive: true });
      journal.append(record(1));
      journal.flush();
      assert.equal(journal.healthy, false);
      assert.match(journal.lastError ?? '', /ENOENT/);
      mkdirSync(dir);
      journal.flush();
      assert.equal(journal.healthy, true);
      journal.close();
      assert.deepEqual(readBack({ dir }), [1]);
    });

    it('abandons a segment whose fd broke underneath and retries in a new one', () => {
      const dir = freshDir();
      const { journal } = open({ dir });
      journal.append(record(1));
      journal.flush();
      // Reaching into the private fd is the only way to break a write as root.
      closeSync((journal as unknown as { fd: number }).fd);
      journal.append(record(2));
      journal.flush();
      assert.equal(journal.healthy, false);
      assert.match(journal.lastError ?? '', /EBADF/);
      journal.flush();
      assert.equal(journal.healthy, true);
      journal.close();
      assert.deepEqual(segmentFiles(dir), ['00000001.log', '00000002.log']);
      assert.deepEqual(readBack({ dir }), [1, 2]);
    });

    it('bounds what waits through a long outage by maxBytes, dropping the oldest', () => {
      const dir = freshDir();
      const line = lineBytes(10); // offsets 10-19: all lines the same length
      const options = { dir, segmentBytes: line, maxBytes: line * 3 };
      const { journal } = open(options);
      rmSync(dir, { recursive: true });
      for (let offset = 10; offset <= 19; offset++) {
        journal.append(record(offset));
        journal.flush();
      }
      assert.equal(journal.pendingRecords, 3);
      assert.equal(journal.droppedRecords, 7);
      mkdirSync(dir);
      journal.close();
      assert.deepEqual(readBack(options), [17, 18, 19]);
    });
  });

  describe('#close', () => {
    it('flushes, releases the LOCK, and does not throw if called twice', () => {
      const dir = freshDir();
      const { journal } = open({ dir });
      assert.ok(existsSync(join(dir, 'LOCK')));
      journal.append(record(1));
      journal.close();
      assert.doesNotThrow(() => journal.close());
      assert.equal(existsSync(join(dir, 'LOCK')), false);
      journal.append(record(2)); // ignored after close
      journal.flush();
      assert.equal(journal.pendingRecords, 0);
      assert.deepEqual(readBack({ dir }), [1]);
    });
  });

  describe('crash safety', () => {
    it('keeps every flushed record when the process is SIGKILLed without close()', async () => {
      const dir = freshDir();
      const signal = await new Promise<NodeJS.Signals | null>((resolve, reject) => {
        const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
          env: { ...process.env, PLAZA_JOURNAL_CRASH_DIR: dir },
          stdio: 'inherit',
        });
        child.on('error', reject);
        child.on('exit', (_code, killedBy) => resolve(killedBy));
      });
      assert.equal(signal, 'SIGKILL');
      assert.ok(existsSync(join(dir, 'LOCK')), 'the dead process left its LOCK');
      const { journal, records, skipped } = open({ dir }); // takes over the stale LOCK
      assert.deepEqual(records, [record(1), record(2), record(3)]);
      assert.equal(skipped, 0);
      journal.close();
    });
  });

  describe('LOCK', () => {
    it('refuses a second open of a folder in use', () => {
      const dir = freshDir();
      const { journal } = open({ dir });
      assert.throws(() => open({ dir }), (error: unknown) => {
        assert.ok(error instanceof JournalError);
        assert.equal(error.code, 'PLAZA_ERR_DATA_DIR_LOCKED');
        assert.match(error.message, new RegExp(`in use by process ${process.pid}: stop that server or choose another folder`));
        return true;
      });
      journal.close();
      open({ dir }).journal.close();
    });

    it('takes over a LOCK left by a process that is gone', async () => {
      const dir = freshDir();
      mkdirSync(dir);
      writeFileSync(join(dir, 'LOCK'), JSON.stringify({ pid: await deadPid(), started: 1 }));
      const { journal } = open({ dir });
      assert.match(readFileSync(join(dir, 'LOCK'), 'utf8'), new RegExp(`"pid":${process.pid}`));
      journal.close();
    });

    it('takes over a LOCK with its own pid from an earlier process (pid 1 after a container restart)', () => {
      const dir = freshDir();
      mkdirSync(dir);
      writeFileSync(join(dir, 'LOCK'), JSON.stringify({ pid: process.pid, started: 12345 }));
      open({ dir }).journal.close();
    });
  });

  describe('security', () => {
    it('a payload cannot forge a record by embedding a newline and a record line', () => {
      const dir = freshDir();
      const forged = JSON.stringify(record(99, { room: 'admin' }));
      const { journal } = open({ dir });
      journal.append(record(1, { data: `hi\n${forged}\n` }));
      journal.close();
      const { journal: reopened, records, skipped } = open({ dir });
      reopened.close();
      assert.deepEqual(offsets(records), [1]);
      assert.equal(records[0]?.data, `hi\n${forged}\n`);
      assert.equal(skipped, 0);
    });

    it('never signals a process group from a LOCK pid of 0 or below; treats it as stale', () => {
      for (const pid of [0, -1, 1.5, '1', null]) {
        const dir = freshDir();
        mkdirSync(dir);
        writeFileSync(join(dir, 'LOCK'), JSON.stringify({ pid, started: 1 }));
        open({ dir }).journal.close();
      }
      const dir = freshDir();
      mkdirSync(dir);
      writeFileSync(join(dir, 'LOCK'), '{"pid": 1, "sta'); // torn LOCK
      open({ dir }).journal.close();
    });
  });
});
