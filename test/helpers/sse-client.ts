/**
 * A raw server-sent-events client for tests: a real HTTP GET that keeps every event (parsed by
 * the shared EventStreamParser, as a browser's EventSource would read them), and POSTs to its
 * stream. What a library-less client does, nothing more.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { EventStreamParser, type StreamEvent } from '../../src/shared/sse.js';

export interface Envelope {
  type: string;
  [key: string]: unknown;
}

export interface Event extends StreamEvent {
  /** The event's `data` as JSON, when it had data. */
  json: Envelope | undefined;
}

export interface HttpAnswer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
  json: { error?: { code: string; message: string } } | undefined;
}

/** Any HTTP request, answered whole (for refusals, preflights and POSTs). */
export function httpSend(url: string, init: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: init.method ?? 'GET', headers: { Connection: 'close', ...init.headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let json: HttpAnswer['json'];
        try {
          json = body ? (JSON.parse(body) as HttpAnswer['json']) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

export class SseClient {
  readonly events: Event[] = [];
  readonly parser = new EventStreamParser();
  /** Everything the response carried, as text. */
  raw = '';
  ended = false;
  private waiters: Array<() => void> = [];
  private seq = 0;

  private constructor(
    readonly url: string,
    readonly response: IncomingMessage,
    private readonly destroy: () => void,
  ) {
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      this.raw += chunk;
      for (const event of this.parser.feed(chunk)) {
        let json: Envelope | undefined;
        if (event.data !== undefined) json = JSON.parse(event.data) as Envelope;
        this.events.push({ ...event, json });
      }
      this.wake();
    });
    const end = () => {
      this.ended = true;
      this.wake();
    };
    response.on('end', end);
    response.on('close', end);
    response.on('error', end);
  }

  /** Opens a stream; rejects with the answer when it is not a 200 event stream. */
  static open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(url, { headers: { Accept: 'text/event-stream', ...headers }, agent: false }, (res) => {
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => reject(Object.assign(new Error(`stream refused: ${res.statusCode}`), { status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers })));
          return;
        }
        resolve(new SseClient(url, res, () => req.destroy()));
      });
      req.on('error', reject);
      req.end();
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves once `check` holds (re-checked on every chunk), or rejects after `ms`. */
  async until<T>(check: () => T | undefined | false, ms = 5000, what = 'an event'): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = check();
      if (value !== undefined && value !== false) return value;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.envelopes().map((e) => e.type))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The first envelope (from `from` on) that matches. */
  next(match: (envelope: Envelope) => boolean, ms = 5000, from = 0): Promise<Envelope> {
    return this.until(() => this.envelopes().slice(from).find(match), ms, 'a matching envelope');
  }

  envelopes(): Envelope[] {
    return this.events.flatMap((event) => (event.json ? [event.json] : []));
  }

  get lastEventId(): string {
    return this.events.length === 0 ? '' : this.events[this.events.length - 1]!.lastEventId;
  }

  async welcome(): Promise<Envelope & { stream: string; session: string }> {
    return (await this.next((e) => e.type === 'welcome')) as Envelope & { stream: string; session: string };
  }

  /** The POST URL of this stream. */
  async postUrl(base = this.url): Promise<string> {
    const { stream } = await this.welcome();
    const url = new URL(base);
    return `${url.origin}${url.pathname}/${stream}`;
  }

  /** POSTs requests (one JSON per line), numbered with Plaza-Seq unless `seq: null`. */
  async post(requests: Array<Record<string, unknown>> | string, options: { seq?: number | null; headers?: Record<string, string>; base?: string } = {}): Promise<HttpAnswer> {
    const body = typeof requests === 'string' ? requests : requests.map((r) => JSON.stringify(r)).join('\n');
    const seq = options.seq === undefined ? ++this.seq : options.seq;
    const headers: Record<string, string> = { 'Content-Type': 'text/plain', ...(seq !== null && { 'Plaza-Seq': String(seq) }), ...options.headers };
    return httpSend(await this.postUrl(options.base), { method: 'POST', headers, body });
  }

  /** Stops reading: the server's writes pile up in the socket buffers (a slow reader). */
  pause(): void {
    this.response.pause();
  }

  resume(): void {
    this.response.resume();
  }

  close(): void {
    this.destroy();
  }
}
