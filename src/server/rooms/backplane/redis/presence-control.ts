/**
 * What nodes tell each other through Redis besides room messages: who is in each room (the
 * room's presence hash, and a delta on its channel), each node's member counts per room (the
 * summaries the HTTP API lists) and its heartbeat, control requests every node sees, their
 * replies, and node-to-node mail. Keys and formats only; what they mean is directory.ts's.
 */
import { presenceText } from './codec.js';
import type { ControlRequest, RedisConnections } from './connections.js';
import { CONTROL_CHANNEL, mailChannel, NODES_KEY, nodeRoomsKey, replyChannel, roomKeys } from './keys.js';

export class PresenceControl {
  constructor(
    private readonly connections: RedisConnections,
    /** This node's id: its summary key and reply channel. */
    private readonly nodeId: string,
  ) {}

  private get redis() {
    return this.connections.redis;
  }

  /** Writes this node's member count for `room` (0 removes it) in its room summary; with `presenceTtl`, renews its expiry. */
  private async summarize(room: string, localCount: number, presenceTtl?: number): Promise<void> {
    const nodeKey = nodeRoomsKey(this.nodeId);
    if (localCount <= 0) await this.redis.hdel(nodeKey, room);
    else if (presenceTtl === undefined) await this.redis.hset(nodeKey, room, localCount);
    else await this.redis.multi().hset(nodeKey, room, localCount).pexpire(nodeKey, presenceTtl * 2).exec();
  }

  /**
   * Records a member in the room's presence hash and this node's room summary, and tells every
   * node (`delta` gets the new count). Both keys expire unless refreshed (refresh).
   */
  async join(room: string, session: string, stored: string, localCount: number, presenceTtl: number, delta: (count: number) => string): Promise<void> {
    const k = roomKeys(room);
    // Two slots on a cluster (the room's and the summaries'), so two steps.
    const [results] = await Promise.all([
      this.redis.multi().hset(k.presence, session, stored).pexpire(k.presence, presenceTtl * 2).hlen(k.presence).exec(),
      this.summarize(room, localCount, presenceTtl),
    ]);
    const count = Number(results?.[2]?.[1] ?? 0);
    await this.connections.tellRoom(room, presenceText(session, delta(count)));
  }

  /** Removes a member; tells every node only when this call removed it (one leave per member). */
  async leave(room: string, session: string, localCount: number | undefined, delta: (count: number) => string): Promise<boolean> {
    const k = roomKeys(room);
    const [results] = await Promise.all([
      this.redis.multi().hdel(k.presence, session).hlen(k.presence).exec(),
      localCount === undefined ? undefined : this.summarize(room, localCount),
    ]);
    const removed = Number(results?.[0]?.[1] ?? 0) === 1;
    if (removed) await this.connections.tellRoom(room, presenceText(session, delta(Number(results?.[1]?.[1] ?? 0))));
    return removed;
  }

  /** Every member of the room across nodes: session → stored JSON. */
  async members(room: string): Promise<Record<string, string>> {
    return this.redis.hgetall(roomKeys(room).presence);
  }

  /** members() of several rooms at once. */
  async membersOf(rooms: string[]): Promise<Array<Record<string, string>>> {
    const replies = await this.connections.many(rooms.map((room) => ['hgetall', roomKeys(room).presence]));
    return replies.map((value) => (value ?? {}) as Record<string, string>);
  }

  /**
   * This node's heartbeat: its members (with fresh timestamps), its room summary and its entry
   * in the node set, all given a new expiry.
   */
  async refresh(
    rooms: Array<{ room: string; members: Array<{ session: string; stored: string }> }>,
    presenceTtl: number,
    now: number,
  ): Promise<void> {
    const nodeKey = nodeRoomsKey(this.nodeId);
    // The summary is rewritten atomically, so a reader never sees it half written.
    const summary = this.redis.multi().del(nodeKey);
    const members: Array<[string, ...Array<string | number>]> = [];
    for (const { room, members: list } of rooms) {
      if (list.length === 0) continue;
      const key = roomKeys(room).presence;
      members.push(['hset', key, ...list.flatMap((member) => [member.session, member.stored])], ['pexpire', key, presenceTtl * 2]);
      summary.hset(nodeKey, room, list.length);
    }
    summary
      .pexpire(nodeKey, presenceTtl * 2)
      .zadd(NODES_KEY, now, this.nodeId)
      .zremrangebyscore(NODES_KEY, '-inf', now - presenceTtl * 2)
      .pexpire(NODES_KEY, presenceTtl * 4);
    await Promise.all([summary.exec(), this.connections.many(members)]);
  }

  /** Room → members summed over the nodes seen within `presenceTtl`. */
  async roomCounts(presenceTtl: number, now: number): Promise<Map<string, number>> {
    const nodes = await this.redis.zrangebyscore(NODES_KEY, now - presenceTtl, '+inf');
    if (!nodes.includes(this.nodeId)) nodes.push(this.nodeId);
    // Every summary shares the {nodes} slot: one pipeline, on a cluster too.
    const pipeline = this.redis.pipeline();
    for (const node of nodes) pipeline.hgetall(nodeRoomsKey(node));
    const totals = new Map<string, number>();
    for (const [, summary] of (await pipeline.exec()) ?? []) {
      for (const [room, count] of Object.entries((summary ?? {}) as Record<string, string>)) {
        totals.set(room, (totals.get(room) ?? 0) + (Number(count) || 0));
      }
    }
    return totals;
  }

  /**
   * Sends a control request to every node; resolves with how many nodes will answer. One Redis
   * counts the subscribers it handed the request to; a cluster's PUBLISH counts only those on
   * the node that took it, so there the nodes seen alive within `presenceTtl` are counted.
   */
  async control(request: ControlRequest, presenceTtl: number): Promise<number> {
    const received = await this.redis.publish(CONTROL_CHANNEL, JSON.stringify(request));
    if (!this.connections.isCluster) return received;
    const alive = await this.redis.zcount(NODES_KEY, Date.now() - presenceTtl, '+inf');
    return Math.max(1, alive);
  }

  async reply(to: string, id: string, count: number): Promise<void> {
    await this.redis.publish(replyChannel(to), JSON.stringify({ id, count }));
  }

  /**
   * Sends a text to node `to`'s mailbox; false when one Redis counted no subscriber there. A Redis
   * Cluster counts only the subscribers of the master that took the PUBLISH, so it never says false.
   */
  async mail(to: string, text: string): Promise<boolean> {
    const received = await this.redis.publish(mailChannel(to), text);
    return this.connections.isCluster || received > 0;
  }
}
