/**
 * One limiter for every place a secret is checked: the API key on the HTTP API, /metrics,
 * /status and /readyz, `?key=` and `?token=` on the WebSocket upgrade. Each client address has a
 * bucket of failed attempts; while it is empty, every check from that address is refused with
 * 429 before the secret is even compared, so no surface is a free yes/no oracle for guessing.
 * The address is the client's as resolved by client-address.ts (with --trust-proxy, the one
 * the proxy reports), so one client cannot empty everyone's bucket behind a proxy.
 */
import { AUTH_FAILURE_BURST, AUTH_FAILURE_REFILL, AUTH_FAILURE_REMOTES } from '../bounds.js';

interface Bucket {
  tokens: number;
  at: number;
}

export class AuthFailureLimiter {
  /** Insertion order is failure order: fail() re-inserts, so the first key failed longest ago. */
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly maxRemotes = AUTH_FAILURE_REMOTES) {}

  /** Addresses tracked right now (at most maxRemotes). */
  get size(): number {
    return this.buckets.size;
  }

  /** Seconds until `remote` may try again; 0 when it may now. */
  retryAfter(remote: string, now = Date.now()): number {
    const bucket = this.refill(remote, now);
    return bucket === undefined || bucket.tokens >= 1 ? 0 : Math.ceil((1 - bucket.tokens) / AUTH_FAILURE_REFILL);
  }

  /** Records one failed check from `remote`. */
  fail(remote: string, now = Date.now()): void {
    const bucket = this.refill(remote, now) ?? { tokens: AUTH_FAILURE_BURST, at: now };
    bucket.tokens = Math.max(0, bucket.tokens - 1);
    this.buckets.delete(remote);
    if (this.buckets.size >= this.maxRemotes) this.buckets.delete(this.buckets.keys().next().value!);
    this.buckets.set(remote, bucket);
  }

  private refill(remote: string, now: number): Bucket | undefined {
    const bucket = this.buckets.get(remote);
    if (!bucket) return undefined;
    bucket.tokens = Math.min(AUTH_FAILURE_BURST, bucket.tokens + ((now - bucket.at) / 1000) * AUTH_FAILURE_REFILL);
    bucket.at = now;
    // A full bucket is the same as no bucket: forgetting it keeps the table small.
    if (bucket.tokens >= AUTH_FAILURE_BURST) {
      this.buckets.delete(remote);
      return undefined;
    }
    return bucket;
  }
}
