/** Fixtures for cluster tests: real Redis servers and real Plaza processes joined through them. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from './plaza.js';
import { onFreePort, startRedisProcess } from './processes.mjs';

export { REDIS_URL, skipWithoutRedis } from './requirements.js';

/** A process killed by a signal has a signalCode and no exitCode. */
function hasExited(child: ChildProcessWithoutNullStreams): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** A private redis-server on its own port, so a test may stop, restart or pause it. */
export class PrivateRedis {
  private child: ChildProcessWithoutNullStreams | undefined;
  private constructor(
    readonly port: number,
    /** With a folder, Redis keeps an append-only file there (fsync always), so a restart keeps its data. */
    private readonly dir: string | undefined,
  ) {}

  static async start(options: { persistent?: boolean } = {}): Promise<PrivateRedis> {
    const dir = options.persistent ? await mkdtemp(join(tmpdir(), 'plaza-redis-')) : undefined;
    // The free-port rule (processes.mjs): it binds a drawn port, another if that one was taken.
    return onFreePort(async (port) => {
      const redis = new PrivateRedis(port, dir);
      await redis.restart();
      return redis;
    });
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server again; `{ wipe: true }` throws its data away first. */
  async restart(options: { wipe?: boolean } = {}): Promise<void> {
    const persistence = this.dir
      ? ['--dir', this.dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '']
      : ['--save', '', '--appendonly', 'no'];
    if (this.dir && options.wipe) {
      await rm(this.dir, { recursive: true, force: true });
      await mkdir(this.dir, { recursive: true });
    }
    this.child = await startRedisProcess(['--port', String(this.port), '--bind', '127.0.0.1', ...persistence]);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || hasExited(child)) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
  }

  /** Freezes the process (SIGSTOP): connections stay open, nothing is answered. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Stops the server and removes its files. */
  async destroy(): Promise<void> {
    this.resume();
    await this.stop();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}

export interface Node {
  child: ChildProcessWithoutNullStreams;
  /** ws://127.0.0.1:port/ */
  ws: string;
  http: string;
  lines: string[];
}

/** Starts dist/server.js joined to `redisUrl`; resolves once it serves. */
export async function startNode(redisUrl: string, args: string[] = [], serverJs = join(ROOT, 'dist/server.js')): Promise<Node> {
  return spawnPlaza(['--redis', redisUrl, ...args], serverJs);
}

/**
 * Starts dist/server.js with `args` (after defaults: port 0, loopback, JSON logs, no rate limit);
 * resolves once it serves. Only PATH is passed from the environment, so an exported REDIS_URL
 * never turns a test's single server into a cluster node.
 */
export async function spawnPlaza(args: string[], serverJs = join(ROOT, 'dist/server.js')): Promise<Node> {
  const child = spawn(process.execPath, [serverJs, '--port', '0', '--host', '127.0.0.1', '--log-format', 'json', '--rate-limit', '0', ...args], {
    env: { PATH: process.env.PATH ?? '' },
  });
  const lines: string[] = [];
  const http = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not start: ${lines.join('\n')}`)), 10_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(line);
      let entry: { msg?: string; url?: string } = {};
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        // Not a log line (a crash's stack trace): kept in `lines` for the error message.
      }
      if (entry.msg === 'Plaza is serving') {
        clearTimeout(timer);
        resolve(entry.url!);
      }
    });
    child.stderr.on('data', (chunk) => lines.push(String(chunk)));
    child.on('exit', (code) => reject(new Error(`node exited with ${code}: ${lines.join('\n')}`)));
  });
  return { child, ws: `${http.replace('http:', 'ws:')}/`, http, lines };
}

export async function stopNode(node: Node, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (hasExited(node.child)) return;
  const exited = once(node.child, 'exit');
  node.child.kill(signal);
  await exited;
}
