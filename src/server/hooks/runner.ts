/**
 * Calls the application's hooks, each under a timeout and all under one bound, and turns every
 * way a hook can go wrong into a coded outcome: the caller answers the client with the code and
 * the process never sees the error. Details go to the log, never to the client (the app's error
 * messages may name its internals).
 */
import type { HookBounds } from '../config.js';
import type { Logger } from '../logger.js';

export type HookName = 'authenticate' | 'onJoin' | 'onLeave' | 'onPublish';

/** The stable codes a client gets when a hook could not decide (README, PROTOCOL.md). */
export type HookFailureCode = 'hook_failed' | 'hook_timeout' | 'hook_busy';

export interface HookFailure {
  ok: false;
  code: HookFailureCode;
  message: string;
}

export type HookOutcome<T> = { ok: true; value: T } | HookFailure;

/** Counters for /metrics, bumped only when a hook runs. */
export interface HookStats {
  /** Calls started, by hook. */
  readonly calls: Map<HookName, number>;
  /** Calls that ended without a verdict, by hook and code. */
  readonly failures: Map<string, number>;
  /** Verdicts that said no (refuse, reject), by hook. */
  readonly refusals: Map<HookName, number>;
  /** Calls running now, timed-out ones included until they settle. */
  readonly active: number;
}

export class HookRunner implements HookStats {
  readonly calls = new Map<HookName, number>();
  readonly failures = new Map<string, number>();
  readonly refusals = new Map<HookName, number>();
  active = 0;

  constructor(
    readonly bounds: HookBounds,
    private readonly logger: Logger,
  ) {}

  /**
   * Calls `hook` with an AbortSignal that fires at the timeout, and reads what it returned with
   * `read`. Resolves, never rejects: with what `read` made of the hook's value, or with
   * `hook_busy` (at once, past maxCalls), `hook_timeout` or `hook_failed` (it threw or rejected,
   * or its value threw while `read` looked at it: a getter, a Proxy). `read` is where a value is
   * looked at, once: whatever it returns is Plaza's own copy. A call that times out keeps its
   * slot until it settles, so a hook that hangs for ever fills the bound and Plaza answers
   * `hook_busy` instead of piling up calls; its value is then never read.
   */
  run<T, R>(name: HookName, hook: (signal: AbortSignal) => T | PromiseLike<T>, read: (value: Awaited<T>) => R): Promise<HookOutcome<R>> {
    this.calls.set(name, (this.calls.get(name) ?? 0) + 1);
    if (this.active >= this.bounds.maxCalls) {
      return Promise.resolve(this.failed(name, 'hook_busy', `more than ${this.bounds.maxCalls} hook calls are running (maxHookCalls); try again shortly`));
    }
    this.active++;
    const controller = new AbortController();
    let timedOut = false;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        timedOut = true;
        controller.abort(new Error(`${name} took longer than ${this.bounds.timeout} ms`));
        this.logger.warn('hook timed out', { hook: name, ms: this.bounds.timeout });
        resolve(this.failed(name, 'hook_timeout', `the server's ${name} hook did not answer in time; try again`));
      }, this.bounds.timeout);
      const settle = (outcome: HookOutcome<R>) => {
        clearTimeout(timer);
        resolve(outcome);
      };
      let pending: PromiseLike<Awaited<T>>;
      try {
        pending = Promise.resolve(hook(controller.signal)) as PromiseLike<Awaited<T>>;
      } catch (error) {
        pending = Promise.reject(error);
      }
      const fail = (what: string, error: unknown) => {
        this.logger.error(what, { hook: name, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
        settle(this.failed(name, 'hook_failed', `the server's ${name} hook failed; try again later`));
      };
      Promise.resolve(pending)
        .then(
          (value) => {
            if (timedOut) return;
            let result: R;
            try {
              result = read(value);
            } catch (error) {
              return fail('hook returned a value that throws when read', error);
            }
            settle({ ok: true, value: result });
          },
          (error: unknown) => fail('hook failed', error),
        )
        .finally(() => {
          this.active--;
        });
    });
  }

  /** A hook answered with something it may not: logged for the app's developer, `hook_failed` for the client. */
  invalid(name: HookName, problem: string): HookFailure {
    this.logger.error('hook returned an invalid verdict', { hook: name, problem });
    return this.failed(name, 'hook_failed', `the server's ${name} hook failed; try again later`);
  }

  /** Counts a verdict that said no. */
  refused(name: HookName): void {
    this.refusals.set(name, (this.refusals.get(name) ?? 0) + 1);
  }

  private failed(name: HookName, code: HookFailureCode, message: string): HookFailure {
    const key = `${name} ${code}`;
    this.failures.set(key, (this.failures.get(key) ?? 0) + 1);
    return { ok: false, code, message };
  }
}
