/**
 * The HTTP API's `Idempotency-Key` header (issue #22, after Stripe's API): a request sent again
 * with the same key is answered with the first one's place instead of publishing again. The key
 * goes into the room's publish-id window (`api:` + key, apart from clients' ids) with a
 * fingerprint of the request body; the same key with another body is a mistake the caller must
 * hear about: 422 `idempotency_key_reused`, and nothing is published.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ErrorCode, MAX_PUBLISH_ID, PUBLISH_ID_PATTERN } from '../../shared/protocol.js';
import { HttpError } from './respond.js';

export interface Idempotency {
  /** The key as the room's window holds it. */
  readonly publishId: string;
  /** Of the request as parsed (its rooms and data): spacing does not matter, key order does. */
  readonly fingerprint: string;
  mismatch(): HttpError;
}

/** The request's Idempotency-Key, checked, with the fingerprint of `body`; undefined without the header. */
export function idempotencyOf(req: IncomingMessage, body: unknown): Idempotency | undefined {
  const key = req.headers['idempotency-key'];
  if (key === undefined) return undefined;
  if (typeof key !== 'string' || !PUBLISH_ID_PATTERN.test(key)) {
    throw new HttpError(400, ErrorCode.BadRequest, `the Idempotency-Key header must be 1 to ${MAX_PUBLISH_ID} printable ASCII characters without spaces, e.g. a UUID`);
  }
  const fingerprint = createHash('sha256').update(JSON.stringify(body)).digest('base64url').slice(0, 22);
  return {
    publishId: `api:${key}`,
    fingerprint,
    mismatch: () => new HttpError(422, 'idempotency_key_reused', 'this Idempotency-Key was already used with a different body (within --publish-id-ttl); use a new key for a new message'),
  };
}
