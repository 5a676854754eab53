/**
 * Who may read a client's address after its socket is gone (issue #24): the door lets a plain
 * client in without the getpeername(2) call while nobody will (sessions/late-address.ts).
 */
import type { Events, PlazaEventName } from '../hooks/events.js';
import type { Logger } from '../logger.js';

/** The events that carry a client, and with it its address. */
export const CLIENT_EVENTS: readonly PlazaEventName[] = ['connect', 'disconnect', 'join', 'leave', 'publish'];

/**
 * True while info log lines (the close line names the address), room hooks (onLeave runs on
 * disconnect) or the application's client events may ask for an address later.
 */
export function addressReaders(logger: Logger, hasRoomHooks: boolean, events: Events): () => boolean {
  return () => {
    if (logger.writes?.('info') !== false || hasRoomHooks) return true;
    for (const event of CLIENT_EVENTS) if (events.has(event)) return true;
    return false;
  };
}
