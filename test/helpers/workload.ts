/**
 * A seeded chat workload through Plaza's own client: members in a few rooms, each behind its
 * own TCP proxy (so a test can cut or move its link), publishing at random moments, some with
 * excludeSelf. Everything each Room emits and every publish's outcome go to a DeliveryChecker.
 * The same seed gives the same choices (which client, which room, when to cut).
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { DeliveryChecker, type PublishRecord } from './delivery-checker.js';
import { connectBuilt, type Client } from './plaza-client.js';
import { TcpProxy } from './tcp-proxy.js';

/** mulberry32: a small seeded generator, so a failing run can be replayed from its seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed: PLAZA_SEED to replay a failure, else a fresh one (printed by the test on failure). */
export function seedFromEnv(): number {
  const given = process.env.PLAZA_SEED;
  return given ? Number(given) : Math.floor(Math.random() * 2 ** 31);
}

/** PLAZA_SOAK_MS stretches the fault phase for manual soak runs; CI uses the short default. */
export function soakMs(ciDefault: number): number {
  const given = Number(process.env.PLAZA_SOAK_MS ?? 0);
  return given > 0 ? given : ciDefault;
}

import { sleep } from './wait.mjs';

export { sleep };

/** What stands between a member and its server: a TCP proxy by default, or an HTTP proxy (http-proxy.ts). */
export interface Link {
  readonly url: string;
  /** Where new connections go. */
  targetPort: number;
  cut(): void;
  close(): Promise<void>;
}

interface Member {
  readonly name: string;
  readonly client: Client.PlazaClient;
  readonly proxy: Link;
  readonly rooms: Map<string, Client.Room>;
  seq: number;
}

export interface WorkloadOptions {
  seed: number;
  /** Server ports the members' proxies lead to, assigned round-robin. */
  ports: number[];
  members: number;
  rooms: string[];
  /** Mean ms between one member's publishes. */
  publishEvery: number;
  /** Options of member `i`'s client on top of the workload's (e.g. `transports: ['sse']`). */
  client?: (member: number) => Client.ClientOptions;
  /** Member `i`'s link to `port`; default: a TcpProxy. */
  link?: (port: number, member: number) => Promise<Link>;
}

export class Workload {
  readonly checker = new DeliveryChecker();
  readonly random: () => number;
  private readonly members: Member[] = [];
  private running = false;
  private loops: Promise<void>[] = [];
  published = 0;
  acked = 0;
  /** Ephemeral publishes sent (not counted in `published`). */
  ephemeral = 0;

  constructor(private readonly options: WorkloadOptions) {
    this.random = seeded(options.seed);
  }

  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.random() * list.length)]!;
  }

  /** Connects every member through its own proxy and joins every room. */
  async start(): Promise<void> {
    for (let i = 0; i < this.options.members; i++) {
      const port = this.options.ports[i % this.options.ports.length]!;
      const proxy = await (this.options.link ?? TcpProxy.start)(port, i);
      const name = `m${i}`;
      const client = await connectBuilt(proxy.url, { name, minDelay: 20, maxDelay: 300, minUptime: 500, ackTimeout: 8000, connectTimeout: 3000, ...this.options.client?.(i) });
      const member: Member = { name, client, proxy, rooms: new Map(), seq: 0 };
      for (const room of this.options.rooms) {
        const joined = client.join(room);
        joined.on('message', (data, meta) => this.checker.record(name, room, { kind: 'message', epoch: meta.epoch, offset: meta.offset, data: String(data) }));
        joined.on('joined', (position) => this.checker.record(name, room, { kind: 'joined', epoch: position.epoch, offset: position.offset }));
        joined.on('reset', ({ reason }) => this.checker.record(name, room, { kind: 'reset', reason }));
        joined.on('ephemeral', (data) => this.checker.record(name, room, { kind: 'ephemeral', data: String(data) }));
        member.rooms.set(room, joined);
      }
      this.members.push(member);
    }
    await Promise.all(this.members.flatMap((m) => [...m.rooms.values()].map((room) => firstJoin(room))));
  }

  /** Every member publishes at random moments until stop(). */
  run(): void {
    this.running = true;
    this.loops = this.members.map(async (member) => {
      while (this.running) {
        await sleep(this.random() * this.options.publishEvery * 2);
        if (!this.running) break;
        // Some are ephemeral (issue #22, item 8): mixed in, they must never look like a gap or take a place.
        if (this.random() < 0.15) this.publishEphemeral(member, this.pick(this.options.rooms));
        else this.publish(member, this.pick(this.options.rooms), this.random() < 0.2);
      }
    });
  }

  private publish(member: Member, room: string, excludeSelf: boolean): Promise<void> {
    const data = `${member.name}/${room}/${++member.seq}`;
    const record: PublishRecord = { client: member.name, room, data, seq: member.seq, excludeSelf };
    this.checker.published(record);
    this.published++;
    return member.rooms.get(room)!.publish(data, { excludeSelf }).then(
      (ack) => {
        record.ack = { epoch: ack.epoch, offset: ack.offset, ...(ack.mayRepeat && { mayRepeat: true }) };
        this.acked++;
      },
      () => undefined, // not acknowledged: it may or may not have been published
    );
  }

  private publishEphemeral(member: Member, room: string): void {
    const data = `${member.name}/${room}/e${++member.seq}`;
    this.checker.published({ client: member.name, room, data, seq: member.seq, excludeSelf: false, ephemeral: true });
    this.ephemeral++;
    // Its outcome is its own business: never re-sent, so a drop loses it, which is allowed.
    member.rooms.get(room)!.publish(data, { ephemeral: true }).catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Every member's client, in member order. */
  get clients(): Client.PlazaClient[] {
    return this.members.map((m) => m.client);
  }

  /** Cuts one member's link at random (the client reconnects and resumes by itself). */
  cutOne(): string {
    const member = this.pick(this.members);
    member.proxy.cut();
    return member.name;
  }

  /**
   * Cuts a random member's link every `gap` to `gap + spread` ms (drawn from the seed) for `ms`;
   * each cut is noted in `log` when one is given.
   */
  async churn(ms: number, gap: number, spread: number, log?: string[]): Promise<void> {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      await sleep(gap + this.random() * spread);
      const cut = this.cutOne();
      log?.push(`cut ${cut}`);
    }
  }

  /** Sends the members that reach `from` to `to` from their next connection on. */
  move(from: number, to: number): void {
    for (const member of this.members) if (member.proxy.targetPort === from) member.proxy.targetPort = to;
  }

  /** Cuts every member's link at once. */
  cutAll(): void {
    for (const member of this.members) member.proxy.cut();
  }

  /**
   * After the faults: every member is connected again, then a marker published into every room
   * must reach every member live; the room's final position is what the marker was acked with.
   */
  async settle(probeUrl: string, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.members.some((m) => m.client.status !== 'open')) {
      if (Date.now() > deadline) throw new Error(`members still not connected: ${this.members.filter((m) => m.client.status !== 'open').map((m) => m.name).join(', ')}`);
      await sleep(50);
    }
    const probe = await connectBuilt(probeUrl, { name: 'probe', ackTimeout: 5000 });
    try {
      for (const name of this.options.rooms) {
        const room = probe.join(name);
        await firstJoin(room);
        let ack: Client.PublishAck | undefined;
        for (let attempt = 0; !ack; attempt++) {
          const marker = `final/${name}/${attempt}`;
          ack = await room.publish(marker).catch(async (error: Error) => {
            if (Date.now() > deadline) throw new Error(`the final marker of ${name} was never acked: ${error.message}`);
            await sleep(200);
            return undefined;
          });
          if (!ack) continue;
          this.checker.published({ client: 'probe', room: name, data: marker, seq: attempt + 1, excludeSelf: false, ack: { epoch: ack.epoch, offset: ack.offset } });
          const at = ack;
          // At the marker or past it: a publish still being re-sent when the workload stopped may land after it.
          const reached = () =>
            this.members.every((m) => {
              const position = m.rooms.get(name)!.position;
              return position?.epoch === at.epoch && position.offset >= at.offset;
            });
          // An island epoch the room then left (PROTOCOL.md: island messages never enter cluster
          // history): the probe itself is moved on with a reset, and only a marker published
          // into the room as it is now can mark its end.
          const left = () => room.position !== undefined && room.position.epoch !== at.epoch;
          while (!reached() && !left() && Date.now() < deadline) await sleep(50);
          if (!reached() && left()) ack = undefined;
        }
        this.checker.final(name, { epoch: ack.epoch, offset: ack.offset });
      }
    } finally {
      probe.close();
    }
  }

  async close(): Promise<void> {
    this.running = false;
    for (const member of this.members) member.client.close();
    await Promise.all(this.members.map((m) => m.proxy.close()));
  }
}

/** Resolves on the room's next `joined` (call it right after join()); rejects on a refused join. */
export function firstJoin(room: Client.Room): Promise<void> {
  return new Promise((resolve, reject) => {
    const off = room.on('joined', () => {
      off();
      resolve();
    });
    room.on('error', reject);
  });
}

/** Runs `faults` while the workload publishes, then settles and checks; prints the seed on failure. */
export async function exercise(t: TestContext, workload: Workload, seed: number, probeUrl: string, faults: () => Promise<void>): Promise<void> {
  await workload.start();
  workload.run();
  try {
    await faults();
  } finally {
    await workload.stop();
  }
  await workload.settle(probeUrl);
  workload.checker.assertClean(seed);
  assert.ok(workload.acked > 50, `seed ${seed}: only ${workload.acked} of ${workload.published} publishes were acked`);
  assert.ok(workload.checker.deliveries > workload.acked, `seed ${seed}: ${workload.checker.deliveries} deliveries`);
  t.diagnostic(`seed ${seed}: ${workload.published} published, ${workload.acked} acked, ${workload.checker.deliveries} deliveries, ${workload.checker.resets} resets, ${workload.ephemeral} ephemeral publishes seen ${workload.checker.ephemerals} times`);
}
