/**
 * Members are cut off mid-stream (socket destroyed, as a network drop) while others publish;
 * each comes back with its last {epoch, offset}. In the end every member must hold every
 * message exactly once, in publish order.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startPlaza, wsUrl } from './helpers/plaza.js';
import { V1Client } from './helpers/v1.js';

const ROOM = 'churn';

/** A member that remembers its position and resumes from it after every drop. */
class ResumingMember {
  readonly seen: number[] = [];
  private position: { epoch: string; offset: number } | undefined;
  private client: V1Client | undefined;
  drops = 0;

  constructor(private readonly url: string) {}

  async connect(): Promise<void> {
    const client = await V1Client.open(this.url);
    this.client = client;
    client.client.ws.on('message', (raw) => {
      const envelope = JSON.parse(String(raw));
      const messages = envelope.type === 'message' ? [envelope] : envelope.type === 'joined' ? envelope.messages : [];
      if (envelope.type === 'joined' && this.position && !envelope.recovered) {
        throw new Error(`resume failed: ${envelope.reason}`);
      }
      for (const m of messages) {
        this.seen.push(m.data as number);
        this.position = { epoch: m.epoch, offset: m.offset };
      }
      if (envelope.type === 'joined' && !this.position) this.position = { epoch: envelope.epoch, offset: envelope.offset };
    });
    await client.request({ type: 'join', room: ROOM, ...(this.position ? { since: this.position } : {}) });
  }

  /** A network drop: no closing handshake, the server finds out from the dead socket. */
  async drop(): Promise<void> {
    this.drops++;
    const ws = this.client!.client.ws;
    (ws as unknown as { _socket: { destroy(): void } })._socket.destroy();
    await this.client!.client.closed;
    await this.connect();
  }

  close(): Promise<number> {
    return this.client!.close();
  }
}

describe('churn', () => {
  it('every member ends with every message exactly once, in order, across drops', async () => {
    const plaza = await startPlaza({ historySize: 10_000, rateLimit: 0 });
    const url = wsUrl(plaza);
    const members = Array.from({ length: 8 }, () => new ResumingMember(url));
    const publisher = await V1Client.open(url, 'publisher');
    try {
      await Promise.all(members.map((m) => m.connect()));
      await publisher.request({ type: 'join', room: ROOM });
      const total = 600;
      for (let i = 1; i <= total; i++) {
        publisher.send({ type: 'publish', room: ROOM, data: i, ...(i % 50 === 0 ? { id: i } : {}) });
        if (i % 50 === 0) {
          await publisher.waitFor((e) => e.id === i); // let the loop breathe
          // Cut two members off while messages are in flight.
          const victims = [members[(i / 50) % members.length]!, members[(i / 50 + 3) % members.length]!];
          await Promise.all(victims.map((v) => v.drop()));
        }
      }
      const expected = Array.from({ length: total }, (_, i) => i + 1);
      const deadline = Date.now() + 10_000;
      while (members.some((m) => m.seen.length < total) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const member of members) {
        assert.ok(member.drops > 0, 'every member was dropped at least once');
        assert.deepEqual(member.seen, expected);
      }
    } finally {
      await Promise.all(members.map((m) => m.close()));
      await publisher.close();
      await plaza.close();
    }
  });
});
