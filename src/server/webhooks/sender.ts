/**
 * Delivers webhook events: in order per room, at least once, never in the way of fan-out.
 *
 * - Enqueueing is a push onto the room's queue, nothing more: the POSTs happen later, so a slow
 *   or dead receiver never slows a join, a leave or a publish.
 * - One POST per room is on its way at a time (with up to WEBHOOK_BATCH_EVENTS of the room's events, in
 *   order); at most WEBHOOK_CONCURRENCY POSTs in all. A failed POST (no 2xx status and answer body
 *   within --webhook-timeout, a refused connection) is retried with doubling backoff and jitter, up to --webhook-retries
 *   times; then its events are dropped and counted, and the room's next events go on.
 * - Everything waiting is bounded in bytes (--webhook-max-queue); past it new events are dropped
 *   and counted. Retries may deliver an event twice: receivers dedupe by event `id`.
 */
import { request as httpRequest, Agent as HttpAgent, type ClientRequest } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import type { WebhookEventType } from '../config.js';
import type { Logger } from '../logger.js';
import { eventJson } from './events.js';
import { signWebhook } from './signature.js';
import { WEBHOOK_BATCH_BYTES, WEBHOOK_BATCH_EVENTS, WEBHOOK_CONCURRENCY, WEBHOOK_MAX_RESPONSE_BYTES } from '../bounds.js';

/** The first retry waits about this long (ms); each further one twice as long... */
export const FIRST_RETRY_MS = 500;
/** ...up to this. */
export const MAX_RETRY_MS = 30_000;

export interface WebhookOptions {
  url: string;
  secret: string;
  /** Events sent; others are never queued. */
  events: readonly WebhookEventType[];
  /** Bytes of events waiting, at most. */
  maxQueueBytes: number;
  /** ms one POST may take. */
  timeout: number;
  /** Retries of one failed POST. */
  retries: number;
  /** This server's id, sent with every POST: a cluster's nodes each send their own. */
  node: string;
}

export type DropReason = 'queue_full' | 'failed' | 'shutdown';

/** For /metrics. */
export interface WebhookStats {
  readonly queuedEvents: number;
  readonly queuedBytes: number;
  readonly delivered: number;
  readonly failedRequests: number;
  readonly dropped: ReadonlyMap<DropReason, number>;
}

interface RoomQueue {
  readonly room: string;
  events: string[];
  bytes: number[];
  /** Failed tries of the batch at the head. */
  attempt: number;
  /** A POST is on its way, or a retry is waiting. */
  busy: boolean;
}

export class WebhookSender implements WebhookStats {
  queuedEvents = 0;
  queuedBytes = 0;
  delivered = 0;
  failedRequests = 0;
  readonly dropped = new Map<DropReason, number>([['queue_full', 0], ['failed', 0], ['shutdown', 0]]);
  private readonly wanted: ReadonlySet<WebhookEventType>;
  private readonly rooms = new Map<string, RoomQueue>();
  /** Rooms with events and nothing on its way, oldest first. */
  private readonly ready = new Set<RoomQueue>();
  private inflight = 0;
  private readonly requests = new Set<ClientRequest>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly agent: HttpAgent;
  private readonly target: URL;
  private seq = 0;
  private accepting = true;
  /** close() has ended everything: late callbacks of destroyed requests change nothing. */
  private ended = false;
  private idle: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly options: WebhookOptions,
    private readonly logger: Logger,
  ) {
    this.wanted = new Set(options.events);
    this.target = new URL(options.url);
    const agentOptions = { keepAlive: true, maxSockets: WEBHOOK_CONCURRENCY };
    this.agent = this.target.protocol === 'https:' ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
  }

  /** Whether events of `type` are sent: callers build nothing for the others. */
  wants(type: WebhookEventType): boolean {
    return this.accepting && this.wanted.has(type);
  }

  /** Queues one event for `room`; `fields` are its further JSON members (events.ts). Never waits. */
  enqueue(type: WebhookEventType, room: string, fields: string): void {
    if (!this.wants(type)) return;
    const json = eventJson(`${this.options.node}-${++this.seq}`, type, room, Date.now(), fields);
    const bytes = Buffer.byteLength(json);
    if (this.queuedBytes + bytes > this.options.maxQueueBytes) {
      this.drop('queue_full', 1);
      return;
    }
    let queue = this.rooms.get(room);
    if (!queue) {
      queue = { room, events: [], bytes: [], attempt: 0, busy: false };
      this.rooms.set(room, queue);
    }
    queue.events.push(json);
    queue.bytes.push(bytes);
    this.queuedEvents++;
    this.queuedBytes += bytes;
    if (!queue.busy) {
      this.ready.add(queue);
      this.pump();
    }
  }

  /**
   * Stops taking events, waits up to `waitMs` for what is queued to be delivered, then drops the
   * rest (counted as `shutdown`) and ends every request, timer and socket. Idempotent.
   */
  close(waitMs: number): Promise<void> {
    return (this.closing ??= this.shutdown(waitMs));
  }

  private async shutdown(waitMs: number): Promise<void> {
    this.accepting = false;
    if (this.queuedEvents > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        this.idle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.idle = undefined;
    this.ended = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const request of this.requests) request.destroy();
    this.requests.clear();
    this.drop('shutdown', this.queuedEvents);
    this.rooms.clear();
    this.ready.clear();
    this.queuedEvents = 0;
    this.queuedBytes = 0;
    this.agent.destroy();
  }

  private pump(): void {
    while (this.inflight < WEBHOOK_CONCURRENCY && this.ready.size > 0) {
      const queue = this.ready.values().next().value!;
      this.ready.delete(queue);
      this.post(queue);
    }
  }

  private post(queue: RoomQueue): void {
    queue.busy = true;
    this.inflight++;
    let count = 0;
    let size = 0;
    while (count < queue.events.length && count < WEBHOOK_BATCH_EVENTS && (count === 0 || size + queue.bytes[count]! <= WEBHOOK_BATCH_BYTES)) size += queue.bytes[count++]!;
    const body = `{"node":${JSON.stringify(this.options.node)},"events":[${queue.events.slice(0, count).join(',')}]}`;
    this.send(body).then((status) => {
      this.inflight--;
      if (this.ended) return;
      if (status >= 200 && status < 300) {
        this.delivered += count;
        this.remove(queue, count);
        queue.attempt = 0;
      } else {
        this.failedRequests++;
        queue.attempt++;
        this.logger.warn('webhook delivery failed', { status, room: queue.room.slice(0, 64), attempt: queue.attempt });
        if (queue.attempt <= this.options.retries) return this.retryLater(queue);
        this.drop('failed', count);
        this.remove(queue, count);
        queue.attempt = 0;
      }
      this.release(queue);
    });
  }

  /** Waits the backoff of the queue's attempt, then lets it go again. */
  private retryLater(queue: RoomQueue): void {
    const ceiling = Math.min(FIRST_RETRY_MS * 2 ** (queue.attempt - 1), MAX_RETRY_MS);
    // Half fixed, half random: retries from many rooms spread out, none comes sooner than half.
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.release(queue);
    }, ceiling / 2 + Math.random() * (ceiling / 2));
    timer.unref();
    this.timers.add(timer);
    this.pump();
  }

  private release(queue: RoomQueue): void {
    queue.busy = false;
    if (queue.events.length > 0) this.ready.add(queue);
    else this.rooms.delete(queue.room);
    if (this.queuedEvents === 0 && this.idle) this.idle();
    this.pump();
  }

  private remove(queue: RoomQueue, count: number): void {
    for (let i = 0; i < count; i++) this.queuedBytes -= queue.bytes[i]!;
    queue.events.splice(0, count);
    queue.bytes.splice(0, count);
    this.queuedEvents -= count;
  }

  private drop(reason: DropReason, count: number): void {
    if (count > 0) this.dropped.set(reason, this.dropped.get(reason)! + count);
  }

  /** One signed POST; resolves with the status, or 0 when there was none in time. Never rejects. */
  private send(body: string): Promise<number> {
    return new Promise((resolve) => {
      const request = (this.target.protocol === 'https:' ? httpsRequest : httpRequest)(this.target, {
        method: 'POST',
        agent: this.agent,
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
          'Plaza-Signature': signWebhook(this.options.secret, body),
          'User-Agent': 'plaza-webhooks',
        },
      });
      this.requests.add(request);
      let settled = false;
      const settle = (status: number) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.requests.delete(request);
        resolve(status);
      };
      const timer = setTimeout(() => {
        settle(0);
        request.destroy();
      }, this.options.timeout);
      request.on('response', (response) => {
        // The status is the answer, but it counts only once the body has ended too, within the
        // same timeout: a receiver that sends its status and never finishes would otherwise
        // keep the socket for ever, and with WEBHOOK_CONCURRENCY such sockets no POST would get one.
        // The body is read and thrown away, only so much of it: an endless one is cut off.
        const status = response.statusCode ?? 0;
        let read = 0;
        response.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read <= WEBHOOK_MAX_RESPONSE_BYTES) return;
          settle(status);
          response.destroy();
        });
        response.on('end', () => settle(status));
        response.on('error', () => {});
      });
      request.on('error', () => settle(0));
      request.on('close', () => settle(0));
      request.end(body);
    });
  }
}
