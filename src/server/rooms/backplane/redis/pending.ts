/**
 * One publish of this node between its script call and its delivery here, and the answer a
 * publish gets when Redis cannot give one. Shared by the publishes in flight (in-flight.ts) and
 * the room mirrors that deliver and settle them (mirrors.ts).
 */
import type { Member } from '../../../engine/hub.js';
import type { Payload } from '../../../engine/publication.js';
import type { PublishOnce, PublishParts } from './codec.js';
import { BackplaneError, type Published } from '../types.js';

export interface Pending {
  readonly token: string;
  readonly room: string;
  readonly payload: Payload;
  readonly dataJson: string;
  readonly except: Member | undefined;
  readonly bytes: number;
  /** What the publish script gets. */
  readonly parts: PublishParts & PublishOnce;
  /** The script found its publish id in the window: settled once `offset` is delivered here, with the first publish's fingerprint. */
  repeat?: { fingerprint: string };
  readonly sentAt: number;
  /** Known once the script answered. */
  offset?: number;
  epoch?: string;
  settled: boolean;
  resolve(published: Published): void;
  reject(error: Error): void;
}

/** What settles a publish once its fate is known (in-flight.ts). */
export interface Settler {
  /** This node's publish with that channel token, if it still waits. */
  byToken(token: string): Pending | undefined;
  /** Delivered here to `delivered` members (or known to be in the room already): resolved. */
  settle(pending: Pending, delivered: number): void;
  fail(pending: Pending, error: Error): void;
}

export function unavailable(why: string): BackplaneError {
  return new BackplaneError('unavailable', `the cluster backplane ${why}; retry shortly`);
}
