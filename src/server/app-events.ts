/**
 * What the application hears of this server: the broker's and the connections' news turned into
 * `plaza.on(…)` events and webhook events. Nothing is built for an event nobody listens to, and
 * the broker is not even told about publishes while neither listens to them.
 */
import type { WebhookEventType } from './config.js';
import type { Member, Room } from './engine/hub.js';
import type { Payload } from './engine/publication.js';
import { Events, type PlazaEventName } from './hooks/events.js';
import { clientOf, dataOf } from './hooks/room-hooks.js';
import type { Logger } from './logger.js';
import type { Draft, Published } from './rooms/backplane/types.js';
import type { Publisher, RoomObserver } from './rooms/broker.js';
import { memberFields, publishedFields, type WebhookMember } from './webhooks/events.js';
import type { WebhookSender } from './webhooks/sender.js';

export interface AppEvents {
  readonly events: Events;
  readonly observer: RoomObserver;
  connected(member: Member): void;
  disconnected(member: Member, code: number): void;
}

/** A publisher that is a connection (not the server itself or the HTTP API). */
function isMember(from: Publisher): from is Publisher & Member {
  return 'protocol' in from && 'rooms' in from;
}

function webhookMember(member: Member): WebhookMember {
  return { session: member.id, name: member.name, user: member.userId };
}

export function createAppEvents(logger: Logger, webhooks: WebhookSender | undefined): AppEvents {
  const wants = (type: WebhookEventType): boolean => webhooks?.wants(type) === true;
  const observer: RoomObserver & { watchesPublishes: boolean } = {
    watchesPublishes: wants('message_published'),
    joined(room: Room, member: Member): void {
      if (room.members.size === 1) {
        events.emit('roomOccupied', { room: room.name });
        if (wants('room_occupied')) webhooks!.enqueue('room_occupied', room.name, '');
      }
      if (events.has('join')) events.emit('join', { room: room.name, client: clientOf(member) });
      if (wants('member_joined')) webhooks!.enqueue('member_joined', room.name, memberFields(webhookMember(member)));
    },
    left(room: Room, member: Member): void {
      if (events.has('leave')) events.emit('leave', { room: room.name, client: clientOf(member) });
      if (wants('member_left')) webhooks!.enqueue('member_left', room.name, memberFields(webhookMember(member)));
      if (room.members.size === 0) {
        events.emit('roomVacated', { room: room.name });
        if (wants('room_vacated')) webhooks!.enqueue('room_vacated', room.name, '');
      }
    },
    published(draft: Draft, published: Published, from: Publisher): void {
      const payload: Payload = draft.payload;
      const sender = isMember(from) ? from : undefined;
      if (events.has('publish')) {
        events.emit('publish', {
          room: draft.room,
          data: dataOf(payload),
          offset: published.offset,
          epoch: published.epoch,
          time: draft.time,
          client: sender && clientOf(sender),
        });
      }
      if (wants('message_published')) {
        const fields = publishedFields(published.offset, published.epoch, sender && webhookMember(sender), draft.dataJson, payload.kind === 'binary');
        webhooks!.enqueue('message_published', draft.room, fields);
      }
    },
  };
  const events = new Events(logger, (event: PlazaEventName) => {
    if (event === 'publish') observer.watchesPublishes = events.has('publish') || wants('message_published');
  });
  return {
    events,
    observer,
    connected(member) {
      if (events.has('connect')) events.emit('connect', { client: clientOf(member) });
    },
    disconnected(member, code) {
      if (events.has('disconnect')) events.emit('disconnect', { client: clientOf(member), code });
    },
  };
}
