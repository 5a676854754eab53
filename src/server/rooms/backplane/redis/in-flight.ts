/**
 * This node's publishes on their way to Redis and back.
 *
 * A node sends a room's publishes in batches, one batch on its way at a time
 * (publish-batches.ts), so a connection's publishes keep their order even where a Redis Cluster
 * redirects or retries a command. A publish resolves when its own message has been delivered
 * here (matched by a per-publish token carried on the channel and kept in the stream; the room
 * mirror calls `settle`), never on the script's reply alone: the reply and the channel travel
 * on two connections and the reply often wins.
 *
 * While Redis is away a room with members here goes on as an island: the first message
 * published on it switches its log to a fresh island epoch, so no offset given out here can
 * collide with the cluster's. Ephemeral publishes go to the members here first, then on the
 * channel, outside the room's order. Bounded by --redis-max-inflight and its bytes.
 */
import { ephemeralEnvelope } from '../../../engine/envelope.js';
import { plainKindOf } from '../../../engine/publication.js';
import type { Logger } from '../../../logger.js';
import { newEpoch, type HistoryStore } from '../../history.js';
import type { PublishWindow } from '../../publish-window.js';
import { deliverEphemeral, noWindow, repeatAnswer, withdrawn } from '../local.js';
import { PublishBatches } from '../publish-batches.js';
import { sequence } from '../sequence.js';
import type { Draft, LocalNode, Published } from '../types.js';
import type { RedisLink } from './link.js';
import type { Mirror } from './mirror.js';
import { unavailable, type Pending, type Settler } from './pending.js';
import type { Sequenced } from './room-commands.js';

/** An unanswered script call this old means Redis has stopped answering (/readyz says so). */
const STALLED_AFTER_MS = 5000;

export interface InFlightOptions {
  nodeId: string;
  /** Publishes on their way to Redis and back, at most. */
  maxInflight: number;
  /** Bytes of those publishes, at most. */
  maxInflightBytes: number;
  /** Publish ids remembered per room in Redis (issue #22); withdraw needs a window. */
  publishIdWindow?: number;
  /** This node's own memory of publish ids (RedisBackplaneOptions.localIds). */
  localIds?: PublishWindow;
}

export class InFlightPublishes implements Settler {
  private readonly pendings = new Map<string, Pending>();
  private inflightBytes = 0;
  /** Ephemeral publishes sent to Redis and not answered yet (counted against maxInflight). */
  private ephemeralInflight = 0;
  private seq = 0;
  /** Publishes refused because too many were on their way (for /metrics). */
  rejected = 0;
  /** Repeated publish ids answered with their first place (for /metrics). */
  duplicates = 0;
  private readonly batches = new PublishBatches<Pending>({ send: (room, batch) => this.sendBatch(room, batch), bytes: (pending) => pending.bytes });

  constructor(
    private readonly options: InFlightOptions,
    private readonly link: RedisLink,
    private readonly node: LocalNode,
    private readonly store: HistoryStore,
    private readonly logger: Logger,
    /** The room's copy here, if it has members here. */
    private readonly mirrorOf: (room: string) => Mirror | undefined,
  ) {}

  get count(): number {
    return this.pendings.size;
  }

  get bytes(): number {
    return this.inflightBytes;
  }

  /** How long the oldest unanswered script call has waited, if longer than STALLED_AFTER_MS. */
  stalledFor(now: number): number | undefined {
    for (const pending of this.pendings.values()) {
      if (pending.offset === undefined && now - pending.sentAt > STALLED_AFTER_MS) return now - pending.sentAt;
    }
    return undefined;
  }

  /** Answers every publish still on its way (the node is closing). */
  failAll(error: Error): void {
    for (const pending of this.pendings.values()) this.fail(pending, error);
  }

  byToken(token: string): Pending | undefined {
    return this.pendings.get(token);
  }

  publish(draft: Draft): Promise<Published> {
    const mirror = this.mirrorOf(draft.room);
    // A retry of a publish this node already placed: answered from its own memory, with Redis
    // up too. An island publish never entered the window in Redis, so a retry after Redis came
    // back (its ack was lost with a cut link) would otherwise be published a second time.
    const first = this.options.localIds?.repeatOf(draft.room, draft.publishId);
    if (first) {
      try {
        return Promise.resolve(repeatAnswer(first));
      } catch (error) {
        return Promise.reject(error as Error);
      }
    }
    if (!this.link.ready) {
      if (!mirror) return Promise.reject(unavailable('is unreachable and no member of this room is here'));
      // An earlier publish of the room is still on its way to Redis: were it refused, the
      // client's retry of it would land on the island behind this one (a connection's order).
      if (this.batches.busy(draft.room)) return Promise.reject(unavailable('is unreachable and an earlier publish of this room is still on its way'));
      return Promise.resolve(this.islandPublish(mirror, draft));
    }
    const bytes = draft.dataJson.length + draft.fromJson.length + draft.roomJson.length;
    if (this.pendings.size >= this.options.maxInflight || this.inflightBytes + bytes > this.options.maxInflightBytes) {
      this.rejected++;
      return Promise.reject(unavailable('is falling behind (too many publishes on their way to Redis)'));
    }
    return new Promise<Published>((resolve, reject) => {
      const token = `${this.options.nodeId}.${(++this.seq).toString(36)}`;
      const pending: Pending = {
        token, room: draft.room, payload: draft.payload, dataJson: draft.dataJson, except: draft.except, bytes,
        parts: {
          time: draft.time, fromJson: draft.fromJson, dataJson: draft.dataJson, plain: plainKindOf(draft.payload), except: draft.except?.id ?? '', token,
          publishId: draft.publishId ?? '', fingerprint: draft.fingerprint ?? '',
        },
        sentAt: Date.now(), settled: false, resolve, reject,
      };
      this.pendings.set(pending.token, pending);
      this.inflightBytes += bytes;
      this.batches.add(draft.room, pending);
    });
  }

  /** Sends one batch of a room's publishes (publish-batches.ts: one batch per room on its way at a time). */
  private async sendBatch(room: string, batch: Pending[]): Promise<void> {
    // Publishes already answered (the node is closing) are not sent.
    const live = batch.filter((pending) => !pending.settled);
    if (live.length === 0) return;
    if (!this.link.ready) {
      for (const pending of live) this.fail(pending, unavailable('is unreachable'));
      return;
    }
    try {
      const { epoch, sequenced } = await this.link.rooms.publish(room, newEpoch(), live.map((pending) => pending.parts));
      live.forEach((pending, i) => this.onSequenced(pending, sequenced[i]!, epoch));
    } catch (error) {
      // Redis's own words (MOVED or READONLY with node addresses, a script's error) are for the
      // log: clients and the HTTP API get the code and this sentence.
      this.logger.warn('Redis did not confirm a publish', { room, error: (error as Error).message });
      const why = unavailable('did not confirm the publish; it may or may not have been published');
      for (const pending of live) this.fail(pending, why);
      // The room's publishes queued behind this batch are refused too, never sent: a client that
      // sends the failed ones again (with their publish ids) keeps its order (issue #22).
      for (const pending of this.batches.drain(room)) this.fail(pending, unavailable('did not confirm an earlier publish of this room; this one was not sent'));
    }
  }

  /** The script answered: the message has its place; wait for it to come by here. */
  private onSequenced(pending: Pending, { offset, first, withdrawn: refused }: Sequenced, epoch: string): void {
    if (pending.settled) return; // its channel message was faster
    if (refused) return this.fail(pending, withdrawn());
    pending.offset = offset;
    pending.epoch = first ? first.epoch : epoch;
    if (first) pending.repeat = { fingerprint: first.fingerprint };
    const mirror = this.mirrorOf(pending.room);
    if (!mirror) return this.settle(pending, 0); // no member here: nothing to wait for
    const log = mirror.log;
    if (mirror.synced && log.epoch === pending.epoch && log.lastOffset >= offset) return this.settle(pending, 0);
    // A repeat from an epoch this node has left: its message is behind every member here.
    if (first && first.epoch !== epoch) return this.settle(pending, 0);
    mirror.pending.add(pending);
  }

  settle(pending: Pending, delivered: number): void {
    if (pending.settled) return;
    pending.settled = true;
    this.release(pending);
    if (pending.repeat) this.duplicates++;
    else this.options.localIds?.landed(pending.room, pending.parts.publishId, { offset: pending.offset!, epoch: pending.epoch!, time: pending.parts.time, fingerprint: pending.parts.fingerprint });
    pending.resolve(pending.repeat
      ? { offset: pending.offset!, epoch: pending.epoch!, delivered: 0, duplicate: true, fingerprint: pending.repeat.fingerprint }
      : { offset: pending.offset!, epoch: pending.epoch!, delivered });
  }

  fail(pending: Pending, error: Error): void {
    if (pending.settled) return;
    pending.settled = true;
    this.release(pending);
    pending.reject(error);
  }

  private release(pending: Pending): void {
    this.pendings.delete(pending.token);
    this.inflightBytes -= pending.bytes;
    this.mirrorOf(pending.room)?.pending.delete(pending);
  }

  /** While Redis is away: sequenced here, under an island epoch, for this node's members only. */
  private islandPublish(mirror: Mirror, draft: Draft): Published {
    // A repeated publish id was answered in publish().
    const ids = this.options.localIds;
    const published = this.islandSequence(mirror, draft);
    ids?.landed(draft.room, draft.publishId, { ...published, time: draft.time, fingerprint: draft.fingerprint });
    return published;
  }

  private islandSequence(mirror: Mirror, draft: Draft): Published {
    if (!mirror.island) {
      // Offsets given out here must never collide with the cluster's: a new epoch first. Its
      // entries belong to the cluster's epoch, so they cannot be served under this one.
      this.store.restart(mirror.log, newEpoch());
      mirror.island = true;
    }
    return sequence(this.node, this.store, mirror.log, draft);
  }

  /**
   * Members here first, then the channel for the other nodes (no script, no stream: outside the
   * room's order). While Redis is away only this node's members can have it. Bounded with the
   * publishes by --redis-max-inflight.
   */
  async publishEphemeral(draft: Draft): Promise<number> {
    const envelope = ephemeralEnvelope(draft.roomJson, draft.time, draft.fromJson, draft.dataJson);
    if (!this.link.ready) return deliverEphemeral(this.node, draft.room, envelope, draft.except);
    if (this.pendings.size + this.ephemeralInflight >= this.options.maxInflight) {
      this.rejected++;
      throw unavailable('is falling behind (too many publishes on their way to Redis)');
    }
    const delivered = deliverEphemeral(this.node, draft.room, envelope, draft.except);
    this.ephemeralInflight++;
    try {
      await this.link.rooms.publishEphemeral(draft.room, { time: draft.time, fromJson: draft.fromJson, dataJson: draft.dataJson, plain: plainKindOf(draft.payload), except: draft.except?.id ?? '' });
    } catch (error) {
      this.logger.debug('Redis did not take an ephemeral publish', { room: draft.room, error: (error as Error).message });
      throw unavailable('did not take the ephemeral publish; members on this node got it, others may not have');
    } finally {
      this.ephemeralInflight--;
    }
    return delivered;
  }

  /**
   * Settled in Redis, atomically with the publish script's check (WITHDRAW_SCRIPT); this node
   * remembers a withdrawal too, so a copy retried here during a later outage is refused as well.
   * While Redis is away it cannot be settled: 'unavailable', and the client asks again.
   */
  async withdraw(room: string, publishId: string, time: number): Promise<{ offset: number; epoch: string } | undefined> {
    if (!this.options.publishIdWindow) throw noWindow();
    if (!this.link.ready) throw unavailable('is unreachable');
    let first;
    try {
      first = await this.link.rooms.withdraw(room, publishId, time);
    } catch (error) {
      this.logger.warn('Redis did not settle a withdraw', { room, error: (error as Error).message });
      throw unavailable('did not answer the withdraw');
    }
    if (!first) this.options.localIds?.withdraw(room, publishId, time);
    return first;
  }
}
