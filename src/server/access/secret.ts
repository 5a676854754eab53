/** Comparing presented secrets (API keys) with the configured one. */
import { createHash, timingSafeEqual } from 'node:crypto';

/** Constant-time equality that does not leak the length of the secret either. */
export function sameSecret(given: string, secret: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(secret));
}
