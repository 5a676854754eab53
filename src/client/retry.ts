/**
 * When and how soon the client reconnects. Pure functions, so they are tested without sockets.
 */

/**
 * Milliseconds to wait before reconnect attempt `attempt` (0 for the first retry after a drop).
 *
 * "Full jitter" (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/):
 * a uniformly random wait in [0, min(maxDelay, minDelay · 2^attempt)). When a server restarts,
 * all its clients drop at the same instant; random waits spread their return instead of sending
 * them back in synchronized waves.
 */
export function backoffDelay(
  attempt: number,
  minDelay: number,
  maxDelay: number,
  random: () => number = Math.random,
): number {
  // The exponent is capped so that 2 ** attempt stays finite: 0 · Infinity would be NaN.
  return random() * Math.min(maxDelay, minDelay * 2 ** Math.min(attempt, 30));
}

/**
 * Close codes after which a new connection would be refused the same way, so retrying only
 * hammers the server (RFC 6455 §7.4.1): 1002 protocol error, 1003 unsupported data,
 * 1007 invalid payload, 1008 policy violation (Plaza: the client kept flooding or breaking the
 * rules), 1010 missing extension.
 */
const FINAL_CODES = [1002, 1003, 1007, 1008, 1010];

/** Plaza's 4003 (the token was refused) and 4004 (the token expired while connected). */
const TOKEN_CODES = [4003, 4004];

/**
 * Whether to reconnect after the socket closed with `code`. Everything not in FINAL_CODES is
 * retried: 1000 (a server has no "done" for a live chat), 1001 going away (restart, deploy),
 * 1006 dropped or refused, 1009 one message was too big (it is not re-sent, so a new connection
 * works), 1011 server error, 1012 service restart, 1013 try again later (slow consumer), and
 * application codes 3000–4999 — except 4003 and 4004, which only a new token can answer, so
 * they are retried only when the client can get one (`renewsToken`: options.token is a function).
 */
export function shouldReconnect(code: number, renewsToken = false): boolean {
  if (TOKEN_CODES.includes(code)) return renewsToken;
  return !FINAL_CODES.includes(code);
}
