/**
 * POSTs for streams another node holds (no sticky sessions: PROTOCOL.md, "Server-sent events"):
 * the node that took the POST checked it at its door, then carries its lines over the
 * backplane to the node named in the stream id, which takes them in order as if they had come
 * there and sends the answer back. Bounded: at most --sse-max-relays POSTs wait for an answer on
 * a node, each at most --sse-relay-timeout ms (then 503: the client sends it again; its
 * `Plaza-Seq` makes a copy that was taken after all a duplicate).
 */
import type { PlazaOptions } from '../config.js';
import type { Metrics } from '../engine/metrics.js';
import type { Logger } from '../logger.js';
import type { NodeMail } from '../rooms/backplane/types.js';
import type { StreamErrorCode } from './answers.js';
import type { Post } from './post.js';

/** What a stream's node said to a POST, carried back as it is. */
export interface RelayAnswer {
  status: number;
  code?: StreamErrorCode;
  message?: string;
  duplicate?: true;
  /** With 409: the `Plaza-Seq` to send first. */
  expected?: number;
  /** With 429 and 503: seconds. */
  retryAfter?: number;
}

/** A POST as it travels: already past the door, so only who sent it goes with it. */
export type CarriedPost = Pick<Post, 'seq' | 'lines'> & { user: string | undefined };

interface Envelope {
  k: 'post' | 'answer';
  /** Names the POST across the round trip: `<from node>.<n>`. */
  id: string;
  from?: string;
  stream?: string;
  seq?: number;
  user?: string;
  lines?: string[];
  answer?: RelayAnswer;
}

const GONE: RelayAnswer = { status: 404, code: 'unknown_stream', message: 'no open stream has this id; open a new stream' };

export class Relay {
  private readonly waiting = new Map<string, { resolve(answer: RelayAnswer): void; timer: NodeJS.Timeout }>();
  private count = 0;

  constructor(
    private readonly mail: NodeMail,
    private readonly options: Pick<PlazaOptions, 'sseRelayTimeout' | 'sseMaxRelays'>,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    /** Takes a POST for a stream of this node; undefined when there is none by that id. */
    private readonly takeHere: (streamId: string, post: CarriedPost) => RelayAnswer | undefined,
  ) {}

  /** POSTs waiting for another node's answer. */
  get pending(): number {
    return this.waiting.size;
  }

  /** The stream id names this node (or no node): there is nowhere to carry it. */
  isLocal(streamId: string): boolean {
    const dot = streamId.indexOf('.');
    return dot <= 0 || streamId.slice(0, dot) === this.mail.nodeId;
  }

  start(): void {
    this.mail.receive((text) => this.onMail(text));
  }

  /** Answers every POST still waiting with 503 (the client sends it again elsewhere). */
  stop(): void {
    for (const [id, waiter] of this.waiting) {
      clearTimeout(waiter.timer);
      this.waiting.delete(id);
      waiter.resolve(unavailable('this server is shutting down'));
    }
  }

  carry(streamId: string, post: CarriedPost): Promise<RelayAnswer> {
    if (this.waiting.size >= this.options.sseMaxRelays) {
      this.metrics.relayFailures++;
      return Promise.resolve(unavailable(`more than ${this.options.sseMaxRelays} POSTs are on their way to other nodes`));
    }
    this.metrics.relayedPosts++;
    const node = streamId.slice(0, streamId.indexOf('.'));
    const id = `${this.mail.nodeId}.${(++this.count).toString(36)}`;
    const text = JSON.stringify({
      k: 'post', id, from: this.mail.nodeId, stream: streamId, lines: post.lines.map((line) => line.toString('utf8')),
      ...(post.seq !== undefined && { seq: post.seq }),
      ...(post.user !== undefined && { user: post.user }),
    } satisfies Envelope);
    return new Promise<RelayAnswer>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        this.metrics.relayFailures++;
        resolve(unavailable('the server holding this stream did not answer in time'));
      }, this.options.sseRelayTimeout);
      timer.unref();
      this.waiting.set(id, { resolve, timer });
      this.mail.send(node, text).then(
        (received) => {
          if (received) return;
          // No node listens there: the node is gone, and its streams with it.
          this.settle(id, GONE);
        },
        (error: Error) => {
          this.logger.debug('could not carry a POST to its stream', { node, error: error.message });
          this.metrics.relayFailures++;
          this.settle(id, unavailable('the cluster backplane cannot be reached'));
        },
      );
    });
  }

  private settle(id: string, answer: RelayAnswer): void {
    const waiter = this.waiting.get(id);
    if (!waiter) return;
    clearTimeout(waiter.timer);
    this.waiting.delete(id);
    waiter.resolve(answer);
  }

  private onMail(text: string): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(text) as Envelope;
    } catch {
      return;
    }
    if (envelope.k === 'answer' && envelope.answer) return this.settle(String(envelope.id), envelope.answer);
    if (envelope.k !== 'post' || typeof envelope.stream !== 'string' || typeof envelope.from !== 'string' || !Array.isArray(envelope.lines)) return;
    const answer = this.takeHere(envelope.stream, {
      seq: typeof envelope.seq === 'number' ? envelope.seq : undefined,
      lines: envelope.lines.map((line) => Buffer.from(String(line))),
      user: typeof envelope.user === 'string' ? envelope.user : undefined,
    }) ?? GONE;
    const reply = JSON.stringify({ k: 'answer', id: envelope.id, answer } satisfies Envelope);
    this.mail.send(envelope.from, reply).catch((error: Error) => this.logger.debug('could not answer a carried POST', { error: error.message }));
  }
}

function unavailable(why: string): RelayAnswer {
  return { status: 503, code: 'unavailable', message: `${why}; send the same POST again shortly`, retryAfter: 1 };
}
