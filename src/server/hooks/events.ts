/**
 * The events a Plaza emits for the application (`plaza.on(event, listener)`): things that have
 * happened, told synchronously right after they did. Unlike hooks they decide nothing and cannot
 * be waited on. A listener that throws is logged and the others still run.
 */
import type { Logger } from '../logger.js';
import type { ClientInfo } from './types.js';

export interface PlazaEvents {
  /** A WebSocket client connected (after authenticate and the other checks at the door). */
  connect: { client: ClientInfo };
  /** It disconnected; `code` is the close code (the one Plaza sent, when Plaza closed first). */
  disconnect: { client: ClientInfo; code: number };
  /** A client joined a room on this server. */
  join: { room: string; client: ClientInfo };
  /** It left the room, or disconnected while in it. */
  leave: { room: string; client: ClientInfo };
  /**
   * A message published through this server got its offset and reached this server's members:
   * from a client (`client`), or from `plaza.publish()` or the HTTP API (`client` undefined).
   */
  publish: {
    room: string;
    /** Any JSON value; a plain client's text as a string and its binary as a Buffer. */
    data: unknown;
    offset: number;
    epoch: string;
    /** Server time of publishing, ms since the Unix epoch. */
    time: number;
    client: ClientInfo | undefined;
  };
  /** The first member of a room on this server joined it. */
  roomOccupied: { room: string };
  /** The last member of a room on this server left it. */
  roomVacated: { room: string };
}

export type PlazaEventName = keyof PlazaEvents;
export type Listener<E extends PlazaEventName> = (event: PlazaEvents[E]) => void;

const NAMES: ReadonlySet<string> = new Set<PlazaEventName>(['connect', 'disconnect', 'join', 'leave', 'publish', 'roomOccupied', 'roomVacated']);

export class Events {
  private readonly listeners = new Map<PlazaEventName, Array<Listener<never>>>();

  /** @param changed told when an event gains its first listener or loses its last one. */
  constructor(
    private readonly logger: Logger,
    private readonly changed: (event: PlazaEventName) => void = () => {},
  ) {}

  /** Listens; returns its own unsubscribe (safe to call twice). */
  on<E extends PlazaEventName>(event: E, listener: Listener<E>): () => void {
    if (!NAMES.has(event)) throw new TypeError(`Plaza: unknown event ${JSON.stringify(event)}; events are ${[...NAMES].join(', ')}`);
    if (typeof listener !== 'function') throw new TypeError(`Plaza: the listener for "${event}" must be a function`);
    const list = [...(this.listeners.get(event) ?? []), listener as Listener<never>];
    this.listeners.set(event, list);
    if (list.length === 1) this.changed(event);
    return () => {
      const now = this.listeners.get(event) ?? [];
      if (!now.includes(listener as Listener<never>)) return;
      const rest = now.filter((other) => other !== listener);
      if (rest.length === 0) this.listeners.delete(event);
      else this.listeners.set(event, rest);
      if (rest.length === 0) this.changed(event);
    };
  }

  has(event: PlazaEventName): boolean {
    return this.listeners.has(event);
  }

  /** Calls each listener of the moment (the list is replaced, never changed, when one is added or removed). */
  emit<E extends PlazaEventName>(event: E, payload: PlazaEvents[E]): void {
    const list = this.listeners.get(event);
    if (!list) return;
    for (const listener of list) {
      try {
        (listener as Listener<E>)(payload);
      } catch (error) {
        this.logger.error('event listener failed', { event, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
      }
    }
  }
}
