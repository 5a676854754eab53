/**
 * One timer for every connection's liveness (no timer per socket): each sweep pings every
 * client and cuts off those that left the last two pings unanswered. plaza.v1 clients also
 * get a tiny `{"type":"beat"}`, because browsers answer pings without telling the page, so a
 * page can only notice a dead server by the beats stopping.
 */
import { encodeTextFrame } from '../engine/frame.js';

export interface Beating {
  readonly protocol: 'plain' | 'v1';
  missedPongs: number;
  readonly ws: { ping(): void; terminate(): void };
  isWritable(): boolean;
  deliver(frame: Buffer): void;
}

/** Pings unanswered before a peer counts as gone. */
const MAX_MISSED = 2;

export function startHeartbeat(connections: Iterable<Beating>, intervalMs: number): { stop(): void } {
  if (intervalMs <= 0) return { stop() {} };
  const beat = encodeTextFrame('{"type":"beat"}');
  const timer = setInterval(() => {
    for (const connection of connections) {
      if (connection.missedPongs >= MAX_MISSED) {
        connection.ws.terminate();
        continue;
      }
      if (!connection.isWritable()) continue;
      connection.missedPongs++;
      connection.ws.ping();
      if (connection.protocol === 'v1') connection.deliver(beat);
    }
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
