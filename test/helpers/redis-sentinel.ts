/**
 * A real Sentinel set for tests: one master and its replicas (`redis-server --replicaof`), and
 * three Sentinels (`redis-server <conf> --sentinel`, the same binary) watching it, on private
 * ports in a temporary folder, all behind passwords. Started once per test file, with what a
 * test needs to fail the master: a Sentinel-driven failover while the old master lives on, a
 * master killed, and replicas cut off so the master's last writes never reach them.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { onFreePort, startRedisProcess } from './processes.mjs';
import { cutReplication, restoreReplication } from './redis-cluster.js';
import { until } from './wait.mjs';

export const MASTER_NAME = 'plazamaster';

export class SentinelSet {
  private readonly children = new Map<number, ChildProcessWithoutNullStreams>();
  private readonly admins = new Map<number, Redis>();
  readonly sentinels: number[] = [];
  readonly servers: number[] = [];

  private constructor(
    private readonly dir: string,
    /** The data nodes' password. */
    readonly password: string,
    /** The Sentinels' own password. */
    readonly sentinelPassword: string,
  ) {}

  static async start(options: { replicas?: number; sentinels?: number; downAfterMs?: number } = {}): Promise<SentinelSet> {
    const set = new SentinelSet(await mkdtemp(join(tmpdir(), 'plaza-sentinel-')), 'data-pw:/@x', 'sentinel-pw');
    try {
      // The free-port rule (processes.mjs): each server binds a drawn port, another if it was taken.
      const master = await onFreePort((port) => set.startServer(port, []));
      const replicas = Array.from({ length: options.replicas ?? 2 }, () => onFreePort((port) => set.startServer(port, ['--replicaof', '127.0.0.1', String(master)])));
      await Promise.all(replicas);
      const sentinels = Array.from({ length: options.sentinels ?? 3 }, () => onFreePort((port) => set.startSentinel(port, master, options.downAfterMs ?? 1000)));
      await Promise.all(sentinels);
      await set.settled();
    } catch (error) {
      await set.destroy();
      throw error;
    }
    return set;
  }

  /** The Plaza --redis URL, passwords percent-encoded. */
  get url(): string {
    return `redis+sentinel://:${encodeURIComponent(this.password)}@${this.sentinels.map((p) => `127.0.0.1:${p}`).join(',')}/${MASTER_NAME}?sentinelPassword=${encodeURIComponent(this.sentinelPassword)}`;
  }

  /** Starts a server or Sentinel on `port`; it counts as this set's once it is ready. */
  private async spawn(port: number, args: string[], ready?: RegExp): Promise<number> {
    this.children.set(port, await startRedisProcess(args, ready ? { ready } : {}));
    return port;
  }

  private async startServer(port: number, extra: string[]): Promise<number> {
    await this.spawn(port, [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', this.dir, '--dbfilename', `dump-${port}.rdb`, '--save', '', '--appendonly', 'no',
      '--requirepass', this.password, '--masterauth', this.password, '--repl-diskless-sync-delay', '0', ...extra,
    ]);
    this.servers.push(port);
    return port;
  }

  private async startSentinel(port: number, master: number, downAfterMs: number): Promise<number> {
    const file = join(this.dir, `sentinel-${port}.conf`);
    // Sentinel rewrites its file as it learns: one writable file each.
    await writeFile(file, [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${this.dir}`,
      `requirepass "${this.sentinelPassword}"`,
      `sentinel sentinel-pass "${this.sentinelPassword}"`,
      `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${master} 2`,
      `sentinel auth-pass ${MASTER_NAME} "${this.password}"`,
      `sentinel down-after-milliseconds ${MASTER_NAME} ${downAfterMs}`,
      `sentinel failover-timeout ${MASTER_NAME} 10000`,
      `sentinel parallel-syncs ${MASTER_NAME} 2`,
      '',
    ].join('\n'));
    // A Sentinel logs no "ready" line; it serves once it monitors the master.
    await this.spawn(port, [file, '--sentinel'], /\+monitor master/);
    this.sentinels.push(port);
    return port;
  }

  /** A command connection to a server or Sentinel (kept until destroy). */
  admin(port: number): Redis {
    let admin = this.admins.get(port);
    if (!admin) {
      const password = this.sentinels.includes(port) ? this.sentinelPassword : this.password;
      admin = new Redis({ port, host: '127.0.0.1', password, maxRetriesPerRequest: 0, retryStrategy: () => 100 });
      admin.on('error', () => undefined);
      this.admins.set(port, admin);
    }
    return admin;
  }

  private live(port: number): boolean {
    const child = this.children.get(port);
    return !!child && child.exitCode === null && child.signalCode === null;
  }

  /** The master's port as the live Sentinels agree, once they all agree. */
  async master(): Promise<number> {
    return until(async () => {
      const views = await Promise.all(this.sentinels.filter((p) => this.live(p)).map(async (p) => Number(((await this.admin(p).call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME)) as string[])[1])));
      return views.every((v) => v === views[0]) ? views[0] : undefined;
    }, 15_000, 'the Sentinels to agree on a master', 100);
  }

  /**
   * Waits until the live replicas follow the master in sync and every Sentinel knows the others
   * (and, on the first call, the replicas: Sentinels relearn them only every 10 s).
   */
  async settled(ms = 20_000, first = true, except?: number): Promise<void> {
    const master = await this.master();
    const replicas = this.servers.filter((p) => p !== master && p !== except && this.live(p));
    await until(async () => {
      if (!String(await this.admin(master).info('replication')).includes('role:master')) return undefined;
      for (const port of replicas) {
        const info = String(await this.admin(port).info('replication'));
        if (!info.includes(`master_port:${master}`) || !info.includes('master_link_status:up')) return undefined;
      }
      for (const port of this.sentinels.filter((p) => this.live(p))) {
        const fields = (await this.admin(port).call('SENTINEL', 'MASTER', MASTER_NAME)) as string[];
        const field = (name: string) => Number(fields[fields.indexOf(name) + 1]);
        if (field('num-other-sentinels') < this.sentinels.length - 1 || field('port') !== master) return undefined;
        if (first && field('num-slaves') < replicas.length) return undefined;
      }
      return true;
    }, ms, 'the Sentinel set to settle', 100);
  }

  /**
   * SENTINEL FAILOVER: a replica is promoted, and the old master, alive, is turned into its
   * replica some seconds later (it still calls itself master meanwhile; clients that listen to
   * the Sentinels leave it at once). Resolves once the new master serves and the Sentinels agree.
   */
  async failover(): Promise<number> {
    const old = await this.master();
    await this.admin(this.sentinels[0]!).call('SENTINEL', 'FAILOVER', MASTER_NAME);
    const next = await until(async () => {
      const port = await this.master();
      return port !== old && String(await this.admin(port).info('replication')).includes('role:master') ? port : undefined;
    }, 15_000, 'a new master', 100);
    await this.settled(20_000, false, old);
    return next;
  }

  /** SIGKILL the master; resolves with the replica the Sentinels promote. */
  async killMaster(): Promise<number> {
    const old = await this.master();
    await this.kill(old);
    return until(async () => {
      const port = await this.master();
      return port !== old && this.live(port) && String(await this.admin(port).info('replication')).includes('role:master') ? port : undefined;
    }, 30_000, 'the Sentinels to promote a replica', 100);
  }

  async kill(port: number): Promise<void> {
    const child = this.children.get(port);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.admins.get(port)?.disconnect();
    this.admins.delete(port);
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }

  /**
   * Cuts every other server off the master (see RedisCluster.cutReplication): the master's next
   * writes reach none of them. A former master the Sentinels have not turned into a replica yet
   * gets the wrong password too, so it cannot catch up either.
   */
  async cutReplicas(): Promise<number[]> {
    const master = await this.master();
    const others = this.servers.filter((p) => p !== master && this.live(p));
    await Promise.all(others.map(async (port) => {
      const admin = this.admin(port);
      if (String(await admin.info('replication')).includes('role:slave')) await cutReplication(admin);
      else await admin.config('SET', 'masterauth', 'not-the-password');
    }));
    return others;
  }

  /** Lets the replicas sync again (with whichever master the Sentinels name). */
  async restoreReplicas(ports: number[]): Promise<void> {
    await Promise.all(ports.filter((p) => this.live(p)).map((port) => restoreReplication(this.admin(port), this.password)));
  }

  async destroy(): Promise<void> {
    for (const admin of this.admins.values()) admin.disconnect();
    await Promise.all([...this.children.keys()].map((port) => this.kill(port)));
    await rm(this.dir, { recursive: true, force: true });
  }
}
