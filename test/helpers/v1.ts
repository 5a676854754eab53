/** A bare plaza.v1 client for tests: raw JSON envelopes over a real ws socket. */
import { connect, type TestClient } from './plaza.js';

/** A parsed envelope; tests check it field by field. */
export type Envelope = Record<string, any>;

export class V1Client {
  private nextId = 1;
  constructor(readonly client: TestClient) {}

  static async open(url: string, name?: string): Promise<V1Client> {
    const client = await connect(url, 'plaza.v1');
    const v1 = new V1Client(client);
    if (name) await v1.request({ type: 'hello', name });
    return v1;
  }

  /** Every envelope received so far, parsed. */
  get envelopes(): Envelope[] {
    return this.client.received.map((r) => JSON.parse(r.text) as Envelope);
  }

  /** Messages received (live or in joined replies), flattened in arrival order. */
  messages(room?: string): Envelope[] {
    const out: Envelope[] = [];
    for (const e of this.envelopes) {
      if (e.type === 'message') out.push(e);
      if (e.type === 'joined') out.push(...(e.messages as Envelope[]));
    }
    return room ? out.filter((m) => m.room === room) : out;
  }

  send(envelope: Envelope | string): void {
    this.client.send(typeof envelope === 'string' ? envelope : JSON.stringify(envelope));
  }

  /** Sends with a fresh id and resolves with the reply carrying that id. */
  async request(envelope: Envelope, ms = 5000): Promise<Envelope> {
    const id = `q${this.nextId++}`;
    const seen = this.client.received.length;
    this.send({ ...envelope, id });
    return this.waitFor((e) => e.id === id, ms, seen);
  }

  /** Resolves with the first envelope (from index `from`) matching `match`. */
  async waitFor(match: (e: Envelope) => boolean, ms = 5000, from = 0): Promise<Envelope> {
    const deadline = Date.now() + ms;
    for (let i = from; ; ) {
      while (i < this.client.received.length) {
        const envelope = JSON.parse(this.client.received[i++]!.text) as Envelope;
        if (match(envelope)) return envelope;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching envelope; got ${this.client.received.map((r) => r.text).join('\n')}`);
      await this.client.waitFor(i + 1, left).catch(() => undefined);
    }
  }

  /** Waits until `count` messages for `room` have arrived (live + recovered). */
  async waitForMessages(count: number, room?: string, ms = 5000): Promise<Envelope[]> {
    const deadline = Date.now() + ms;
    while (this.messages(room).length < count) {
      if (Date.now() > deadline) throw new Error(`expected ${count} messages, got ${this.messages(room).length}`);
      await this.client.waitFor(this.client.received.length + 1, Math.max(1, deadline - Date.now())).catch(() => undefined);
    }
    return this.messages(room);
  }

  close(): Promise<number> {
    return this.client.close();
  }
}
