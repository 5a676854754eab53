/**
 * Every client session of this node, whatever side (transport) it came through. Each side keeps
 * its own set (it closes its own at shutdown); the node reads them all as one: for the operator's
 * disconnect, /metrics and the status feed.
 */
import type { WireProtocol } from '../engine/hub.js';
import type { Disconnectable } from '../rooms/local-node.js';

/** What the node needs of any client session. */
export interface NodeSession extends Disconnectable {
  readonly protocol: WireProtocol;
}

export class SessionRegistry<S extends NodeSession = NodeSession> implements Iterable<S> {
  private readonly groups: Set<S>[] = [];

  /** A new set for one side's sessions, read with all the others. */
  group<T extends S>(): Set<T> {
    const group = new Set<T>();
    this.groups.push(group as unknown as Set<S>);
    return group;
  }

  get size(): number {
    let size = 0;
    for (const group of this.groups) size += group.size;
    return size;
  }

  *[Symbol.iterator](): Iterator<S> {
    for (const group of this.groups) yield* group;
  }
}
