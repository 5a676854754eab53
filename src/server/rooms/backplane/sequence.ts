/**
 * Giving a message its place in a room's log on this node, in one synchronous step: the next
 * offset, the entry kept, the members here handed it. The local backplane does it for every
 * message; the Redis one for messages sequenced while Redis is away (an island epoch).
 */
import { messageEnvelope } from '../../engine/envelope.js';
import { Publication } from '../../engine/publication.js';
import type { HistoryStore, RoomLog } from '../history.js';
import type { Draft, LocalNode, Published } from './types.js';

export function sequence(node: LocalNode, store: HistoryStore, log: RoomLog, draft: Draft): Published {
  const { roomJson, time, fromJson, dataJson, payload } = draft;
  const envelope = store.append(log, time, (offset, epoch) =>
    messageEnvelope({ roomJson, offset, epoch, time, fromJson, dataJson, base64: payload.kind === 'binary' }),
    draft.publishId === undefined ? undefined : { publishId: draft.publishId, fingerprint: draft.fingerprint ?? '' },
  );
  const room = node.hub.room(draft.room);
  const delivered = room ? node.deliver(room, new Publication(envelope, payload, dataJson), draft.except) : 0;
  return { offset: log.lastOffset, epoch: log.epoch, delivered };
}
