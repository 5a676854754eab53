/**
 * A newcomer's first steps, for the examples' tests: a fresh clone of the repository (of the
 * working tree, uncommitted changes included, so a test checks what is about to be committed),
 * the commands a README gives, run by `sh` there as typed, and a look at what is left running.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from './plaza.js';

/**
 * `git clone` of the repository into a new temporary folder, with the working tree's changed,
 * new (not ignored) and deleted files applied, as `git add -A && git commit` would have them.
 */
export function freshClone(): string {
  const dir = mkdtempSync(join(tmpdir(), 'plaza-clone-'));
  // --no-hardlinks: the clone shares no file with the repository it came from.
  execFileSync('git', ['clone', '--quiet', '--no-hardlinks', ROOT, dir]);
  const list = (...args: string[]) => execFileSync('git', ['ls-files', '-z', ...args], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
  const deleted = new Set(list('--deleted'));
  for (const file of list('--cached', '--others', '--exclude-standard')) {
    if (deleted.has(file)) {
      rmSync(join(dir, file), { force: true });
      continue;
    }
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    cpSync(join(ROOT, file), join(dir, file));
  }
  return dir;
}

/** The first ```sh block of a README: the commands it tells a newcomer to type, comments and all. */
export function readmeCommands(readme: string): string {
  const block = /^```sh\n([\s\S]*?)^```/m.exec(readFileSync(readme, 'utf8'));
  if (!block) throw new Error(`${readme} opens with no \`\`\`sh block of commands`);
  return block[1]!;
}

/** The environment of a newcomer's shell: this one's, without what `npm test` itself set. */
export function shellEnvironment(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name) && name !== 'INIT_CWD'));
  return { ...env, ...extra };
}

export interface Typed {
  child: ChildProcessWithoutNullStreams;
  /** stdout and stderr, line by line, in order of arrival. */
  stdout: string[];
  stderr: string[];
  /** Resolves with the first match of `pattern` in a line of either stream (earlier lines count). */
  waitFor(pattern: RegExp, ms: number): Promise<RegExpExecArray>;
  /** Sends `signal` to the shell's whole process group, as a terminal's Ctrl-C (SIGINT) does. */
  signal(signal: NodeJS.Signals): void;
}

/** Runs `commands` with `sh -e` in `cwd`, in a process group of its own, as if typed there. */
export function typeCommands(commands: string, cwd: string, env: NodeJS.ProcessEnv): Typed {
  const child = spawn('sh', ['-ec', commands], { cwd, env, detached: true });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiting = new Set<() => void>();
  const collect = (stream: NodeJS.ReadableStream, lines: string[]) =>
    createInterface({ input: stream }).on('line', (line) => {
      lines.push(line);
      for (const check of waiting) check();
    });
  collect(child.stdout, stdout);
  collect(child.stderr, stderr);
  return {
    child,
    stdout,
    stderr,
    waitFor(pattern, ms) {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (const line of [...stdout, ...stderr]) {
            const match = pattern.exec(line);
            if (match) {
              done();
              resolve(match);
              return;
            }
          }
        };
        const exited = (code: number | null) => {
          done();
          reject(new Error(`the commands ended (exit ${code}) before printing ${pattern}:\n${commands}\nstdout:\n${stdout.join('\n')}\nstderr:\n${stderr.join('\n')}`));
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no ${pattern} within ${ms} ms:\n${commands}\nstdout:\n${stdout.join('\n')}\nstderr:\n${stderr.join('\n')}`));
        }, ms);
        const done = () => {
          waiting.delete(check);
          child.off('exit', exited);
          clearTimeout(timer);
        };
        waiting.add(check);
        child.once('exit', exited);
        check();
      });
    },
    signal(signal) {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // The group is gone already.
      }
    },
  };
}

/** Processes whose command line or working folder is inside `dir`, with their command lines. */
export function processesIn(dir: string): Array<{ pid: number; cmdline: string }> {
  const found: Array<{ pid: number; cmdline: string }> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim();
      let cwd = '';
      try {
        cwd = readlinkSync(`/proc/${name}/cwd`);
      } catch {
        // Not ours to read, or gone.
      }
      if (cmdline.includes(dir) || cwd.startsWith(dir)) found.push({ pid: Number(name), cmdline });
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

/** Every process's command line, to check that a secret is on none of them. */
export function allCommandLines(): string[] {
  const lines: string[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      lines.push(readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' '));
    } catch {
      // Gone.
    }
  }
  return lines;
}
