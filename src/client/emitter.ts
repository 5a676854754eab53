/** A typed event emitter in the spirit of nanoevents: `on()` returns its own unsubscribe. */

export type Listener<T> = (payload: T) => void;

export interface Emitter<Events> {
  /** Calls `fn` on every `event` until the returned function is called (idempotent). */
  on<K extends keyof Events>(event: K, fn: Listener<Events[K]>): () => void;
  /** Calls the listeners registered when emit starts; a throwing one does not stop the rest. */
  emit<K extends keyof Events>(event: K, payload: Events[K]): void;
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

export function createEmitter<Events>(): Emitter<Events> {
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
    emit(event, payload) {
      // A snapshot: listeners added or removed by a listener take effect from the next emit.
      for (const fn of listeners[event]?.slice() ?? []) {
        try {
          fn(payload);
        } catch (error) {
          report(error);
        }
      }
    },
  };
}
