/** The error every rejected request carries: a stable `code` to branch on, a message for people. */
import type { AppErrorCode, ErrorCode as ServerErrorCode } from '../shared/protocol.js';

/**
 * The server's error codes (PROTOCOL.md) and the client's own. A publish rejected with any of
 * them was not published, except `closed` and `not_joined` for one already written and not
 * answered (the application closed the client or left the room first: the room's history says). A link that drops before an ack is no error: the publish is re-sent (issue #22).
 * - `timeout`: `publishTimeout` passed: the publish was never written and never will be, or it
 *   was written and the server, asked to settle it, withdrew its id: not published, and no copy
 *   of it can be any more;
 * - `epoch_changed`: `publishTimeout` passed for a written publish, and the room started over (a
 *   new epoch) since its first try: the server's window may have gone with the old epoch, so
 *   whether it landed there is unknown (members were told with a reset);
 * - `queue_full`: the publish waited (offline, or behind `maxInflightBytes` unanswered) and was pushed
 *   out of the queue (`maxQueue`, `maxQueueBytes`) by newer ones, or is larger than `maxQueueBytes` alone;
 * - `closed`: `close()` was called (or the server refused to let the client back) first; for a
 *   publish already written, the one outcome left unknown (its message may be in the history);
 * - `not_joined`: the room was left (`room.leave()`) or its join was refused;
 * - `unauthorized`: the server refused the token (close code 4003) and the client has no token
 *   function to get another, so it stopped ('error' event on the client);
 * - `token_expired`: the token expired while connected (4004), likewise;
 * - `disconnected`: only for an ephemeral publish, which is never queued or sent again: not
 *   connected when publish() was called (not sent), or the link dropped before its answer (it may
 *   have reached the members there then).
 * A server application's hooks may refuse with codes of their own (`AppErrorCode`).
 */
export type ErrorCode = ServerErrorCode | 'queue_full' | 'closed' | 'disconnected' | 'epoch_changed' | 'unauthorized' | 'token_expired' | AppErrorCode;

export class PlazaError extends Error {
  override name = 'PlazaError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}
