/**
 * The wire to Redis for a Plaza cluster, in three parts with one job each: the connections
 * (connections.ts: the three kinds of Redis, readiness, channels), a room's commands
 * (room-commands.ts: the scripts that sequence and read rooms) and what nodes tell each other
 * (presence-control.ts: presence, summaries, control, mail). It knows keys and formats
 * (keys.ts, codec.ts), nothing of members or logs.
 */
import { RedisConnections, type RedisLinkEvents } from './connections.js';
import { PresenceControl } from './presence-control.js';
import { RoomCommands, type RoomCommandsOptions } from './room-commands.js';

export interface RedisLinkOptions extends RoomCommandsOptions {
  url: string;
}

export class RedisLink {
  readonly connections: RedisConnections;
  readonly rooms: RoomCommands;
  readonly presence: PresenceControl;

  constructor(options: RedisLinkOptions, events: RedisLinkEvents) {
    this.connections = new RedisConnections({ url: options.url, nodeId: options.nodeId }, events);
    this.rooms = new RoomCommands(this.connections, options);
    this.presence = new PresenceControl(this.connections, options.nodeId);
  }

  /** Every connection up and the channels subscribed: commands can be sent. */
  get ready(): boolean {
    return this.connections.ready;
  }

  get lastError(): string | undefined {
    return this.connections.lastError;
  }

  connect(): Promise<void> {
    return this.connections.connect();
  }

  close(): Promise<void> {
    return this.connections.close();
  }
}
