/**
 * The fixed bounds: every limit on a buffer, queue, table or input that is not an option, in one
 * place, each with why it is fixed rather than set. The bounds a person may change are options
 * (config.ts, with the hook bounds); these guard against peers and inputs no deployment should
 * need to accommodate, so each sits far above any honest use. Every one has a test that crosses it.
 *
 * The Redis backplane's (publish batches, the resync buffer) belong here too, in a section of
 * their own. May import nothing: every part of the server reads it.
 */

// ── WebSocket connections (websocket/) ───────────────────────────────────────────────────────

/**
 * The connection request gate: frames queued behind a request waiting on the backplane or a
 * hook. Past REQUEST_GATE_PAUSE_FRAMES (or --max-buffered bytes) the socket is no longer read;
 * past REQUEST_GATE_MAX_FRAMES (or 4 × --max-buffered bytes), which only a peer ignoring TCP
 * backpressure reaches, the connection is closed with 1008.
 */
export const REQUEST_GATE_PAUSE_FRAMES = 100;
export const REQUEST_GATE_MAX_FRAMES = 1000;

/** Protocol errors a connection may make in a burst before it is closed with 1008... */
export const PROTOCOL_ERROR_BURST = 20;
/** ...and how fast that allowance comes back, per second. */
export const PROTOCOL_ERROR_REFILL = 2;

/** ws keeps at most this many TCP chunks of one unfinished message (its default is 256 Ki). */
export const MAX_MESSAGE_CHUNKS = 16 * 1024;

/** Connections sent their close frame per event-loop turn on shutdown, so a big server stays responsive. */
export const SHUTDOWN_CLOSE_BATCH = 500;

// ── plaza.v1 requests (sessions/) ────────────────────────────────────────────────────────────

/** Longest request id a client may send; it is echoed in the reply. */
export const MAX_REQUEST_ID_LENGTH = 64;
/** Longest epoch a client may name when it resumes a room. */
export const MAX_EPOCH_LENGTH = 32;

// ── The application's hooks (hooks/) ─────────────────────────────────────────────────────────

/** Longest hookTimeout accepted (ms): a minute is already far longer than any client waits. */
export const MAX_HOOK_TIMEOUT = 60_000;
/** Largest maxHookCalls accepted. */
export const MAX_HOOK_CALLS = 1_000_000;
/** Longest message a hook's rejection carries to the client, in characters. */
export const MAX_HOOK_MESSAGE = 1024;
/** Longest user id authenticate may return, as for a token's `sub`. */
export const MAX_HOOK_USER_ID = 256;
/** Longest refusal reason kept, in characters; a close frame cuts it further (123 bytes). */
export const MAX_HOOK_REASON = 1024;

// ── HTTP (http/, access/) ────────────────────────────────────────────────────────────────────

/**
 * Headers in one request. Browsers send about 20 and proxies add a few; the byte limit (Node's
 * 16 KiB) still allows thousands of tiny ones, each costing a property and an array slot.
 */
export const MAX_REQUEST_HEADERS = 100;
/**
 * Longest static-file request target. Node already caps the request line with maxHeaderSize
 * (16 KiB); no mapped path comes anywhere near this, so a longer target is refused before any
 * decoding work.
 */
export const MAX_URL_LENGTH = 2048;
/** Rooms one POST /api/broadcast may name. */
export const MAX_BROADCAST_ROOMS = 100;

// ── Tokens and failed checks (access/) ───────────────────────────────────────────────────────

/**
 * Longest token accepted, in characters. Identity providers' tokens carry more claims than
 * Plaza's own (Keycloak's roles, Auth0's permissions), so 8 KiB; the URL it travels in is
 * bounded by the server's header limit anyway.
 */
export const MAX_TOKEN_LENGTH = 8192;
/**
 * Signature checks on their way at once (in WebCrypto's thread pool, or waiting for a fetch of
 * the key set); past it a token is answered 503 at once instead of joining the queue.
 */
export const MAX_PENDING_CHECKS = 1024;
/** Keys in one key set, at most: the document's byte bound limits it too, this bounds the work. */
export const MAX_KEYS = 100;
/** Longest `kid` kept, in characters. */
export const MAX_KID = 256;
/** Failed checks one address may make in a burst... */
export const AUTH_FAILURE_BURST = 10;
/** ...refilled at this many per second (10 a minute): a typo'd scraper never reaches the limit. */
export const AUTH_FAILURE_REFILL = 1 / 6;
/** Addresses tracked at once; past it the one that failed longest ago is forgotten. */
export const AUTH_FAILURE_REMOTES = 10_000;

// ── Webhooks (webhooks/) ─────────────────────────────────────────────────────────────────────

/** POSTs on their way at once, across rooms. */
export const WEBHOOK_CONCURRENCY = 8;
/** Most events of one room in one POST... */
export const WEBHOOK_BATCH_EVENTS = 100;
/** ...and most bytes (a single larger event still goes alone). */
export const WEBHOOK_BATCH_BYTES = 1024 * 1024;
/** Bytes of a receiver's answer read before its socket is closed instead of kept for the next POST. */
export const WEBHOOK_MAX_RESPONSE_BYTES = 64 * 1024;

// ── Options (config.ts) ──────────────────────────────────────────────────────────────────────

/** Longest --welcome text, in characters. */
export const MAX_WELCOME = 4096;
