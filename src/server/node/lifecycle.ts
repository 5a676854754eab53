/**
 * The one order in which a server's resources start and stop. Each resource registers
 * `{ start, close }` in the order it must start; `close()` undoes the started ones in reverse,
 * the same way after a failed start as at shutdown, so teardown is written once and a resource
 * that never started is never closed.
 */

/** How a close is asked for: at shutdown there is time to drain; after a failed start there is none. */
export interface Closing {
  /** How long a resource may wait for work in flight (clients, queued webhooks): 0 after a failed start. */
  readonly graceMs: number;
}

export interface Resource {
  /** Named in the log when its close throws. */
  readonly name: string;
  start?(): void | Promise<void>;
  close(closing: Closing): void | Promise<void>;
}

export class Lifecycle {
  private readonly resources: Resource[] = [];
  private readonly started: Resource[] = [];
  private starting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  /** @param onCloseError told when a close throws; the others still close. */
  constructor(private readonly onCloseError: (name: string, error: unknown) => void) {}

  /** Registers a resource after those registered before it (it starts after them and closes before them). */
  add(resource: Resource): void {
    if (this.starting) throw new Error(`resource ${resource.name} registered after start; register every resource before start()`);
    this.resources.push(resource);
  }

  /** Starts each resource in order; if one fails, closes those already started (grace 0) and rethrows. */
  start(): Promise<void> {
    if (this.starting) throw new Error('start() called twice; create a new server instead');
    this.starting = (async () => {
      for (const resource of this.resources) {
        if (this.closing) return;
        try {
          await resource.start?.();
        } catch (error) {
          await this.closeStarted({ graceMs: 0 });
          throw error;
        }
        this.started.push(resource);
      }
    })();
    return this.starting;
  }

  /** Closes the started resources in reverse order, once: later calls get the same promise. */
  close(closing: Closing): Promise<void> {
    this.closing ??= (async () => {
      // A close during start waits for the start to settle first, so nothing starts after it.
      await this.starting?.catch(() => undefined);
      await this.closeStarted(closing);
    })();
    return this.closing;
  }

  private async closeStarted(closing: Closing): Promise<void> {
    // Taken out of the list, so no resource is closed twice (a failed start during a close).
    for (const resource of this.started.splice(0).reverse()) {
      try {
        await resource.close(closing);
      } catch (error) {
        this.onCloseError(resource.name, error);
      }
    }
  }
}
