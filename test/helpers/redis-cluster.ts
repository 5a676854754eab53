/**
 * A real Redis Cluster for tests: `redis-server --cluster-enabled yes` processes on private ports
 * in a temporary folder, joined by `redis-cli --cluster create … --cluster-replicas 1`. Started
 * once per test file (a few seconds), with what a test needs to fail it: manual and forced
 * failovers, a master killed, a replica cut off so that its master's last writes never reach
 * it, and a slot migrated by hand.
 */
import { spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { onFreePort, PORT_TAKEN, startRedisProcess } from './processes.mjs';
import { until } from './wait.mjs';

export interface ClusterNode {
  id: string;
  port: number;
  role: 'master' | 'replica';
  /** The master's id, for a replica. */
  master: string | undefined;
  /** Slot ranges served, for a master. */
  slots: Array<[number, number]>;
  failed: boolean;
}

/** See RedisCluster.cutReplication. */
export async function cutReplication(replica: Redis): Promise<void> {
  await replica.config('SET', 'masterauth', 'not-the-password');
  await replica.call('CLIENT', 'KILL', 'TYPE', 'master');
  await until(async () => (String(await replica.info('replication')).includes('master_link_status:down') ? true : undefined), 5000, 'the replica to lose its master', 100);
}

/** Undoes cutReplication: `masterauth` back to what the servers use ('' for none). */
export async function restoreReplication(replica: Redis, masterauth = ''): Promise<void> {
  await replica.config('SET', 'masterauth', masterauth);
}

export class RedisCluster {
  private readonly children = new Map<number, ChildProcessWithoutNullStreams>();
  private readonly admins = new Map<number, Redis>();

  private constructor(
    private readonly dir: string,
    /** Client port → cluster bus port. */
    private readonly ports: Map<number, number>,
    private readonly nodeTimeout: number,
  ) {}

  /** Starts `masters` masters with `replicas` replicas each and waits until every node agrees the cluster is ok. */
  static async start(options: { masters?: number; replicas?: number; nodeTimeout?: number } = {}): Promise<RedisCluster> {
    const masters = options.masters ?? 3;
    const count = masters * (1 + (options.replicas ?? 1));
    const cluster = new RedisCluster(await mkdtemp(join(tmpdir(), 'plaza-redis-cluster-')), new Map(), options.nodeTimeout ?? 1000);
    try {
      // The free-port rule (processes.mjs): each node binds a drawn port and its bus port + 10000.
      await Promise.all(Array.from({ length: count }, () => onFreePort((port) => cluster.startProcess(port))));
      const create = spawnSync('redis-cli', ['--cluster', 'create', ...[...cluster.ports.keys()].map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(options.replicas ?? 1), '--cluster-yes'], { encoding: 'utf8' });
      if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
      await cluster.settled();
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
    return cluster;
  }

  /** The Plaza --redis URL: the masters as seeds. */
  get url(): string {
    return `redis+cluster://${[...this.ports.keys()].slice(0, 3).map((p) => `127.0.0.1:${p}`).join(',')}`;
  }

  private async startProcess(port: number): Promise<void> {
    if (this.ports.has(port)) throw Object.assign(new Error(`port ${port} is this cluster's already`), { code: PORT_TAKEN });
    this.ports.set(port, port + 10_000);
    const dir = join(this.dir, String(port));
    mkdirSync(dir, { recursive: true });
    try {
      this.children.set(port, await startRedisProcess([
        '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no',
        '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-port', String(port + 10_000),
        '--cluster-node-timeout', String(this.nodeTimeout),
        // Replicas sync at once instead of after the default 5 s wait for more of them.
        '--repl-diskless-sync-delay', '0',
        // A replica stands in however long it was cut off from its master: the tests make it lag on purpose.
        '--cluster-replica-validity-factor', '0',
      ]));
    } catch (error) {
      this.ports.delete(port);
      throw error;
    }
  }

  /** A command connection to one node (kept until destroy). */
  admin(port: number): Redis {
    let admin = this.admins.get(port);
    if (!admin) {
      admin = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => 100 });
      admin.on('error', () => undefined);
      this.admins.set(port, admin);
    }
    return admin;
  }

  /** The cluster as `port` sees it. */
  async nodes(port = this.livePort()): Promise<ClusterNode[]> {
    const text = String(await this.admin(port).call('CLUSTER', 'NODES'));
    return text.trim().split('\n').map((line) => {
      const [id, address, flags, master, , , , , ...slots] = line.split(' ') as [string, string, string, string, ...string[]];
      return {
        id,
        port: Number(address.split('@')[0]!.split(':')[1]),
        role: flags.includes('master') ? 'master' : 'replica',
        master: master === '-' ? undefined : master,
        slots: slots.filter((s) => !s.startsWith('[')).map((s) => (s.includes('-') ? (s.split('-').map(Number) as [number, number]) : [Number(s), Number(s)])),
        failed: /fail/.test(flags),
      } satisfies ClusterNode;
    });
  }

  private livePort(): number {
    for (const [port, child] of this.children) if (child.exitCode === null && child.signalCode === null) return port;
    throw new Error('no live node');
  }

  /** The master serving `slot`, as every live node agrees. */
  async masterOf(slot: number): Promise<ClusterNode> {
    const nodes = await this.nodes();
    const master = nodes.find((n) => n.role === 'master' && !n.failed && n.slots.some(([a, b]) => slot >= a && slot <= b));
    if (!master) throw new Error(`no master serves slot ${slot}`);
    return master;
  }

  async replicaOf(master: ClusterNode): Promise<ClusterNode> {
    const replica = (await this.nodes()).find((n) => n.master === master.id && !n.failed);
    if (!replica) throw new Error(`master ${master.port} has no live replica`);
    return replica;
  }

  /** Waits until every live node reports cluster_state:ok and the same owner for every slot, and replicas are in sync. */
  async settled(ms = 20_000): Promise<void> {
    await until(async () => {
      const live = [...this.children.entries()].filter(([, c]) => c.exitCode === null && c.signalCode === null).map(([port]) => port);
      const views = await Promise.all(live.map(async (port) => {
        const info = String(await this.admin(port).call('CLUSTER', 'INFO'));
        const replication = String(await this.admin(port).info('replication'));
        if (!info.includes('cluster_state:ok')) return undefined;
        if (replication.includes('role:slave') && !replication.includes('master_link_status:up')) return undefined;
        const owners = (await this.nodes(port)).filter((n) => n.role === 'master' && n.slots.length > 0).map((n) => `${n.port}:${JSON.stringify(n.slots)}`).sort().join(' ');
        return owners;
      }));
      return views.every((v) => v !== undefined && v === views[0]) ? true : undefined;
    }, ms, 'the cluster to settle', 100);
  }

  /** A planned failover: the replica takes over after catching up with its master (CLUSTER FAILOVER). */
  async failover(replica: ClusterNode, mode: '' | 'FORCE' = ''): Promise<void> {
    await this.admin(replica.port).call('CLUSTER', 'FAILOVER', ...(mode ? [mode] : []));
    await until(async () => ((await this.nodes(replica.port)).find((n) => n.id === replica.id)?.role === 'master' ? true : undefined), 15_000, `port ${replica.port} to become master`, 100);
    await this.settled();
  }

  /** SIGKILL: the master's replica is elected once the other masters agree it failed. */
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
   * Cuts a replica off its master: a wrong masterauth, then its link closed, so it cannot sync
   * again and its master's next writes never reach it. (A replica frozen with SIGSTOP would
   * still find them in its socket buffer when it wakes.)
   */
  async cutReplication(replica: ClusterNode): Promise<void> {
    await cutReplication(this.admin(replica.port));
  }

  async restoreReplication(replica: ClusterNode): Promise<void> {
    await restoreReplication(this.admin(replica.port));
  }

  /** Waits until a live master other than `old` serves `slot`. */
  async newMasterOf(slot: number, old: ClusterNode): Promise<ClusterNode> {
    return until(async () => {
      const master = await this.masterOf(slot);
      return master.id !== old.id ? master : undefined;
    }, 15_000, `another master for slot ${slot}`, 100);
  }

  /**
   * Moves `slot` to the master `to` the way redis-cli --cluster reshard does (IMPORTING,
   * MIGRATING, MIGRATE keys in small batches, SETSLOT NODE everywhere); `between` runs after the
   * first batch, while the slot is half moved.
   */
  async migrate(slot: number, to: ClusterNode, between: () => Promise<void> = async () => undefined): Promise<void> {
    const from = await this.masterOf(slot);
    const source = this.admin(from.port);
    await this.admin(to.port).call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id);
    await source.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id);
    let first = true;
    for (;;) {
      const keys = (await source.call('CLUSTER', 'GETKEYSINSLOT', slot, 2)) as string[];
      if (keys.length === 0) break;
      await source.call('MIGRATE', '127.0.0.1', to.port, '', 0, 5000, 'REPLACE', 'KEYS', ...keys);
      if (first) await between();
      first = false;
    }
    for (const node of await this.nodes()) if (node.role === 'master' && !node.failed) await this.admin(node.port).call('CLUSTER', 'SETSLOT', slot, 'NODE', to.id);
    await this.settled();
  }

  /** INFO commandstats calls of `command` on each master, by port. */
  async callsOnMasters(command: string): Promise<Map<number, number>> {
    const calls = new Map<number, number>();
    for (const node of await this.nodes()) {
      if (node.role !== 'master' || node.failed) continue;
      const stats = String(await this.admin(node.port).info('commandstats'));
      calls.set(node.port, Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0));
    }
    return calls;
  }

  async destroy(): Promise<void> {
    for (const admin of this.admins.values()) admin.disconnect();
    await Promise.all([...this.children.values()].map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }));
    await rm(this.dir, { recursive: true, force: true });
  }
}
