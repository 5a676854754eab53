/**
 * A typed event emitter in the spirit of nanoevents: `on()` returns its own unsubscribe.
 * `Events` maps each event name to its listener's argument list, e.g. `{ message: [data: string] }`.
 */

export type EventMap<Events> = { [K in keyof Events]: unknown[] };

export type Listener<Args extends unknown[]> = (...args: Args) => void;

export interface Emitter<Events extends EventMap<Events>> {
  /** Calls `fn` on every `event` until the returned function is called (idempotent). */
  on<K extends keyof Events>(event: K, fn: Listener<Events[K]>): () => void;
  /** Calls the listeners registered when emit starts; a throwing one does not stop the rest. */
  emit<K extends keyof Events>(event: K, ...args: Events[K]): void;
}

/**
 * Hands a listener's error to the platform, as EventTarget does: `reportError` in browsers
 * (window 'error' event, console), an uncaught exception on a later tick elsewhere. Either way the
 * emitter, and the client that owns it, carry on.
 */
function report(error: unknown): void {
  if (typeof reportError == 'function') reportError(error);
  else
    setTimeout(() => {
      throw error;
    });
}

export function createEmitter<Events extends EventMap<Events>>(): Emitter<Events> {
  const listeners: { [K in keyof Events]?: Listener<Events[K]>[] } = {};
  return {
    on(event, fn) {
      const list = (listeners[event] ??= []);
      list.push(fn);
      let subscribed = true;
      return () => {
        if (!subscribed) return;
        subscribed = false;
        list.splice(list.indexOf(fn), 1);
      };
    },
    emit(event, ...args) {
      // A snapshot: listeners added or removed by a listener take effect from the next emit.
      for (const fn of listeners[event]?.slice() ?? []) {
        try {
          fn(...args);
        } catch (error) {
          report(error);
        }
      }
    },
  };
}
