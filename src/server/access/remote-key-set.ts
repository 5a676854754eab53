/**
 * An identity provider's keys from its JWKS URL (--auth-jwks-url), kept across rotations and
 * outages:
 *
 * - **Cached as the provider says**: kept for its `Cache-Control: max-age` (or `Expires`), 5
 *   minutes when it says nothing, at most a day, at least --auth-jwks-cooldown; then fetched again
 *   in the background. Tokens never wait for that: they are checked with the keys in hand.
 * - **Rotation**: a token whose `kid` is not in the set makes the set be fetched again at once,
 *   and the token waits for that one fetch, shared with every token that arrives meanwhile. At
 *   most one fetch per --auth-jwks-cooldown: a flood of tokens with made-up kids costs the
 *   provider one request per cooldown, and each of those tokens is refused at once.
 * - **Outages**: keys already fetched keep working while the provider is down (a failed fetch
 *   never empties the set); fetches are retried every cooldown; once the keys are past their
 *   time and a fetch has failed, problem() says so for /readyz.
 * - **Bounds**: each fetch has --auth-jwks-timeout and --auth-jwks-max-bytes (key-fetch.ts), a
 *   set holds at most MAX_KEYS keys.
 */
import type { Logger } from '../logger.js';
import type { IncomingHttpHeaders } from 'node:http';
import { fetchBounded, freshnessOf, KeyFetchError } from './key-fetch.js';
import { MAX_KEYS } from '../bounds.js';
import { importEntry, TokenCheckUnavailableError, pickError, pickKey, type ImportKey, type JsonWebKeyLike, type KeyEntry } from './key-set.js';
import type { AsymmetricAlgorithm } from './token-algorithms.js';

export interface RemoteKeySetOptions {
  url: string;
  algorithms: readonly AsymmetricAlgorithm[];
  /** Least ms between two fetches. */
  cooldown: number;
  /** ms one fetch may take. */
  timeout: number;
  /** Largest key set, in bytes. */
  maxBytes: number;
}

/** How long keys are kept when the provider's answer has no cache headers. */
export const DEFAULT_FRESH_MS = 5 * 60_000;
/** Longest keys are kept before they are fetched again, whatever the headers say. */
export const MAX_FRESH_MS = 24 * 3600_000;

/** How long (ms) keys fetched with these response headers are kept before they are fetched again. */
export function keepFor(headers: IncomingHttpHeaders, cooldown: number): number {
  return Math.min(MAX_FRESH_MS, Math.max(cooldown, freshnessOf(headers) ?? DEFAULT_FRESH_MS));
}

export class RemoteKeySet {
  private entries: KeyEntry[] = [];
  /** When keys were last fetched; 0 before the first time. */
  private fetchedAt = 0;
  /** Until when they may be used without fetching them again. */
  private freshUntil = 0;
  /** When the last fetch began (successful or not): the cooldown counts from here. */
  private lastAttempt = -Infinity;
  /** Why the last fetch failed; undefined after a success. */
  private lastError: string | undefined;
  private inflight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly abort = new AbortController();
  private closed = false;

  constructor(
    private readonly options: RemoteKeySetOptions,
    private readonly importKey: ImportKey,
    private readonly logger: Logger,
  ) {}

  /** Fetches the keys once (a failure is logged and retried, never thrown: /readyz reports it). */
  start(): Promise<void> {
    return this.refresh();
  }

  /** The key for a token's `alg` and `kid`; a promise only when the set has to be fetched first. */
  keyFor(alg: AsymmetricAlgorithm, kid: unknown): CryptoKey | Promise<CryptoKey> {
    const pick = pickKey(this.entries, alg, kid);
    if ('key' in pick) return pick.key;
    if (this.fetchedAt === 0) return this.whenFetched(alg, kid);
    if ('unknownKid' in pick && this.mayFetch()) return this.whenFetched(alg, kid);
    throw pickError(pick);
  }

  /** Why tokens may be refused for want of keys, with the URL and the error (for operators); undefined when all is well. */
  problem(now = Date.now()): string | undefined {
    const { url } = this.options;
    if (this.fetchedAt === 0) return `no keys fetched from ${url} yet${this.lastError ? `: ${this.lastError}` : ''}`;
    if (now >= this.freshUntil && this.lastError !== undefined) {
      return `the keys fetched from ${url} expired at ${new Date(this.freshUntil).toISOString()} and fetching them again failed (${this.lastError}); tokens signed with them are still accepted`;
    }
    return undefined;
  }

  /** Stops the timer and any fetch on its way. Idempotent. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.abort.abort();
  }

  private mayFetch(): boolean {
    return this.inflight !== undefined || Date.now() - this.lastAttempt >= this.options.cooldown;
  }

  private async whenFetched(alg: AsymmetricAlgorithm, kid: unknown): Promise<CryptoKey> {
    if (this.mayFetch()) await this.refresh();
    if (this.fetchedAt === 0) throw new TokenCheckUnavailableError("the identity provider's keys could not be fetched yet; retry shortly");
    const pick = pickKey(this.entries, alg, kid);
    if ('key' in pick) return pick.key;
    throw pickError(pick);
  }

  /** One fetch at a time: a caller that comes while one is on its way waits for that one. */
  private refresh(): Promise<void> {
    if (this.inflight) return this.inflight;
    if (this.closed) return Promise.resolve();
    clearTimeout(this.timer);
    this.lastAttempt = Date.now();
    this.inflight = this.load().then(
      ({ entries, freshFor, skipped }) => {
        this.entries = entries;
        this.fetchedAt = Date.now();
        this.freshUntil = this.fetchedAt + freshFor;
        if (this.lastError !== undefined) this.logger.info("the identity provider's keys can be fetched again", { url: this.options.url });
        this.lastError = undefined;
        this.logger.debug("fetched the identity provider's keys", { url: this.options.url, keys: entries.length, freshForMs: freshFor });
        if (skipped.length > 0) this.logger.warn('skipped keys in the key set', { url: this.options.url, skipped: skipped.join('; ') });
        this.schedule(freshFor);
      },
      (error: unknown) => {
        if (this.closed) return;
        this.lastError = error instanceof Error ? error.message : String(error);
        this.logger.warn("could not fetch the identity provider's keys", { url: this.options.url, error: this.lastError, retryInMs: this.options.cooldown, keys: this.entries.length });
        this.schedule(this.options.cooldown);
      },
    ).finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refresh(), ms);
    this.timer.unref();
  }

  private async load(): Promise<{ entries: KeyEntry[]; freshFor: number; skipped: string[] }> {
    const { url, timeout, maxBytes, cooldown, algorithms } = this.options;
    const fetched = await fetchBounded(url, { timeout, maxBytes }, this.abort.signal);
    let document: unknown;
    try {
      document = JSON.parse(fetched.body.toString('utf8'));
    } catch {
      throw new KeyFetchError('the answer is not JSON');
    }
    const keys = (document as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys)) throw new KeyFetchError('the answer is not a JWKS: it has no "keys" list');
    if (keys.length > MAX_KEYS) throw new KeyFetchError(`the key set has ${keys.length} keys, more than ${MAX_KEYS}`);
    const entries: KeyEntry[] = [];
    const skipped: string[] = [];
    for (const [index, jwk] of keys.entries()) {
      if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) {
        skipped.push(`key ${index} is not an object`);
        continue;
      }
      const entry = await importEntry(jwk as JsonWebKeyLike, algorithms, this.importKey);
      if (typeof entry === 'string') skipped.push(`key ${typeof jwk.kid === 'string' ? JSON.stringify(jwk.kid.slice(0, 64)) : index}: ${entry}`);
      else entries.push(entry);
    }
    if (entries.length === 0) throw new KeyFetchError(`the key set holds no key for ${algorithms.join(', ')}${skipped.length ? ` (${skipped.join('; ')})` : ''}`);
    return { entries, freshFor: keepFor(fetched.headers, cooldown), skipped };
  }
}
