/**
 * This server's side of every room: the fan-out to its members. Both backplanes deliver through
 * it, so metrics and the choice of recipients have one place.
 */
import { CloseCode } from '../../shared/protocol.js';
import type { DisconnectSelector, LocalNode } from './backplane/types.js';
import { Envelope } from '../engine/publication.js';
import type { Hub, Member, Outgoing, Room } from '../engine/hub.js';
import type { Metrics } from '../engine/metrics.js';

/** What this node needs of a connection to disconnect it on an operator's request. */
export interface Disconnectable {
  readonly id: string;
  readonly userId: string | undefined;
  close(code: number, reason: string): void;
}

export function createLocalNode(hub: Hub, metrics: Metrics, connections: Iterable<Disconnectable>): LocalNode {
  return {
    hub,
    deliver(room: Room, message: Outgoing, except: Member | undefined): number {
      const delivered = hub.publish(room, message, except);
      metrics.deliveries += delivered;
      return delivered;
    },
    tell(room: Room, json: string, except?: Member): number {
      // Plain clients cannot read envelopes; v1 and SSE members get it framed their way.
      const message = new Envelope(json);
      let told = 0;
      for (const member of room.members) {
        if (member.protocol === 'plain' || member === except) continue;
        member.deliver(message.frameFor(member.protocol));
        told++;
      }
      return told;
    },
    presence(room: Room, json: string, subject: string | undefined): void {
      if (room.watchers.size === 0) return;
      let except: Member | undefined;
      if (subject !== undefined) for (const member of room.watchers) if (member.id === subject) except = member;
      hub.notifyWatchers(room, new Envelope(json), except);
    },
    disconnect(selector: DisconnectSelector): number {
      // Never "everyone": a request without a selector is a mistake.
      if (selector.session === undefined && selector.user === undefined) return 0;
      let disconnected = 0;
      for (const connection of [...connections]) {
        if (selector.session !== undefined && connection.id !== selector.session) continue;
        if (selector.user !== undefined && connection.userId !== selector.user) continue;
        connection.close(CloseCode.Disconnected, selector.reason);
        disconnected++;
      }
      return disconnected;
    },
  };
}
