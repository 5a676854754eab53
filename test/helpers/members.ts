/**
 * Members without sockets for the hub, broker and backplane tests: a plain object that keeps
 * every frame it is handed, as the Member seam (src/server/engine/hub.ts) allows.
 */
import type { Member, Room, WireProtocol } from '../../src/server/engine/hub.js';
import { payloadOf } from './frames.js';

export { payloadOf };

export class Collector implements Member {
  readonly rooms = new Set<Room>();
  readonly frames: Buffer[] = [];
  open = true;
  /** Room creations left; undefined: the member has no allowance (unlimited). */
  creations: number | undefined;
  creationChecks = 0;
  constructor(
    readonly id: string,
    readonly protocol: WireProtocol = 'v1',
    readonly name = id,
  ) {}
  isOpen(): boolean {
    return this.open;
  }
  deliver(frame: Buffer): void {
    this.frames.push(frame);
  }
  mayCreateRoom(): boolean {
    this.creationChecks++;
    if (this.creations === undefined) return true;
    if (this.creations === 0) return false;
    this.creations--;
    return true;
  }
  /** Every frame's payload as text. */
  get texts(): string[] {
    return this.frames.map((frame) => payloadOf(frame).toString('utf8'));
  }
  /** Every frame parsed as a plaza.v1 envelope. */
  get envelopes(): Array<Record<string, any>> {
    return this.texts.map((text) => JSON.parse(text) as Record<string, any>);
  }
}
