/**
 * A room's copy on a node that has members in it: its log (the same HistoryStore as one server
 * uses), whether it is continuous with the cluster, and what waits on it. mirrors.ts keeps them;
 * in-flight.ts reads them to settle its publishes and to publish on an island.
 */
import type { RoomLog } from '../../history.js';
import type { ChannelMessage } from './codec.js';
import type { Pending } from './pending.js';

export interface Mirror {
  readonly room: string;
  readonly roomJson: string;
  readonly log: RoomLog;
  /** Continuous with the cluster and following the channel. */
  synced: boolean;
  /** The log's epoch is this node's own (never synced, or island messages were published). */
  island: boolean;
  syncing: Promise<void> | undefined;
  /** Another resync was asked for while one ran. */
  again: boolean;
  /** Channel messages that arrived during a resync, and their bytes. */
  buffer: ChannelMessage[];
  bufferBytes: number;
  overflowed: boolean;
  /** Re-reads have failed since the last good one (logged once, not at every retry). */
  failing: boolean;
  /** Own publishes the script has sequenced, waiting for their delivery here. */
  readonly pending: Set<Pending>;
}

/** A new room copy: an island until its first read from Redis. */
export function newMirror(room: string, log: RoomLog): Mirror {
  return {
    room, roomJson: JSON.stringify(room), log, synced: false, island: true, syncing: undefined, again: false,
    buffer: [], bufferBytes: 0, overflowed: false, failing: false, pending: new Set(),
  };
}
