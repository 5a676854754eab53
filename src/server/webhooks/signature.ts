/**
 * webhooks/ — telling an application that is not written in Node what happens in its rooms:
 * signed POSTs (this file: the signature, as Stripe signs its webhooks), the sender with its
 * per-room order, bounded queue, retries and backoff (sender.ts), and the events' JSON
 * (events.ts). It may import src/shared, config and logger only: plaza.ts feeds it.
 *
 * The signature: `Plaza-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over `<t>.<body>`,
 * keyed with --webhook-secret. Signing the time with the body lets a receiver refuse a replayed
 * request (older than its tolerance) as well as a forged one. docs/server.md has the recipe for
 * receivers in any language.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The header that carries the signature. */
export const SIGNATURE_HEADER = 'plaza-signature';

/** How old a signed request may be before verifyWebhook refuses it, in seconds (Stripe's default). */
export const DEFAULT_TOLERANCE_SECONDS = 300;

function hmac(secret: string, time: number, body: string | Uint8Array): Buffer {
  return createHmac('sha256', secret).update(`${time}.`).update(body).digest();
}

/** The Plaza-Signature header value for `body`, signed at `time` (seconds since the Unix epoch). */
export function signWebhook(secret: string, body: string | Uint8Array, time = Math.floor(Date.now() / 1000)): string {
  return `t=${time},v1=${hmac(secret, time, body).toString('hex')}`;
}

export interface VerifyOptions {
  /** Oldest (and furthest in the future) a signature may be, in seconds. @default 300 */
  toleranceSeconds?: number;
  /** The receiver's clock, ms since the Unix epoch. @default Date.now() */
  now?: number;
}

/**
 * Whether `header` (the Plaza-Signature value) signs exactly `body` (the raw bytes received,
 * before any JSON parsing) with `secret`, within the tolerance. Compares in constant time; any
 * of several `v1=` values may match, so a receiver can accept old and new while a secret rotates.
 */
export function verifyWebhook(body: string | Uint8Array, header: string | undefined | null, secret: string, options: VerifyOptions = {}): boolean {
  if (typeof header !== 'string' || !secret) return false;
  let time: number | undefined;
  const signatures: Buffer[] = [];
  for (const part of header.split(',')) {
    const [key, value] = part.trim().split('=', 2) as [string, string | undefined];
    if (key === 't' && value !== undefined && /^\d{1,12}$/.test(value)) time = Number(value);
    else if (key === 'v1' && value !== undefined && /^[0-9a-f]{64}$/.test(value)) signatures.push(Buffer.from(value, 'hex'));
  }
  if (time === undefined || signatures.length === 0) return false;
  const now = (options.now ?? Date.now()) / 1000;
  if (Math.abs(now - time) > (options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS)) return false;
  const expected = hmac(secret, time, body);
  return signatures.some((signature) => timingSafeEqual(signature, expected));
}
