/**
 * hooks/ — the application's code in Plaza's path: the hook types an app implements
 * (authenticate, onJoin, onLeave, onPublish) and the verdicts they return (this file), the runner
 * that calls them with a timeout and a bound and turns every failure into a coded answer, the
 * typed events a Plaza emits, and the bridge from an `authenticate` identity to a grant.
 * It may import the engine (member types), access/ (room patterns, display names), src/shared,
 * config and logger; rooms/, sessions/ and the sides call it, never the other way round.
 *
 * The reference is docs/server.md ("Hooks"). Every hook is optional; with none set, nothing of
 * this folder runs on any message.
 */
import type { IncomingMessage } from 'node:http';
import type { WireProtocol } from '../engine/hub.js';

/** Who a hook or an event is about: one WebSocket connection, as the app sees it. */
export interface ClientInfo {
  /** The connection's session id, as others see it in presence and as a message's sender. */
  readonly session: string;
  /** The user: the `id` authenticate returned, or the token's `sub`; undefined when anonymous. */
  readonly user: string | undefined;
  /** The display name others see. */
  readonly name: string;
  /** The client's address (behind `trustProxy`, the one the proxy reports). */
  readonly address: string;
  /** `v1` for Plaza's client over a WebSocket (plaza.v1), `plain` for any other WebSocket, `sse` for a server-sent-events stream. */
  readonly protocol: WireProtocol;
  /** What `authenticate` returned as `data`, untouched; undefined otherwise. */
  readonly data: unknown;
}

/** Rooms an authenticated client may use: names, `prefix-*` patterns or `*`, as in tokens. */
export interface Grants {
  /** Rooms it may join. @default ['*'] (every room: decide per room in onJoin) */
  join?: readonly string[];
  /** Rooms it may publish to. @default the same as `join` */
  publish?: readonly string[];
}

/** Who a connection is, as `authenticate` says. */
export interface Identity {
  /** The user id (1 to 256 characters): `ClientInfo.user`, the HTTP API's `user`, `POST /api/disconnect`'s selector. */
  id: string;
  /** Display name, under the same rules as a name sent in `hello`. @default id */
  name?: string;
  grants?: Grants;
  /** Anything the app wants back in every hook and event about this connection (`client.data`). */
  data?: unknown;
}

/** `refuse(status, reason)`: the upgrade is refused. */
export interface Refusal {
  readonly verdict: 'refuse';
  readonly status: number;
  readonly reason: string;
}

export interface Allowance {
  readonly verdict: 'allow';
}

/** `reject(code, message)`: the request is answered with an error envelope carrying `code`. */
export interface Rejection {
  readonly verdict: 'reject';
  readonly code: string;
  readonly message: string;
}

/** `replace(data)`: the message is published with `data` instead of what the client sent. */
export interface Replacement {
  readonly verdict: 'replace';
  readonly data: unknown;
}

export type JoinVerdict = Allowance | Rejection;
export type PublishVerdict = Allowance | Rejection | Replacement;

/** What every hook call gets besides its subject. */
export interface HookCall {
  /** Aborted when the call passes `hookTimeout`: pass it to fetch() or your database driver. */
  readonly signal: AbortSignal;
}

export interface JoinContext extends HookCall {
  readonly room: string;
  readonly client: ClientInfo;
}

export interface LeaveContext extends HookCall {
  readonly room: string;
  readonly client: ClientInfo;
}

export interface PublishContext extends HookCall {
  readonly room: string;
  /**
   * What the client published: any JSON value from Plaza's client (plaza.v1); a string (text) or
   * a Buffer (binary) from a plain WebSocket. Do not change it: return `replace(data)`.
   */
  readonly data: unknown;
  /** True when `data` is a Buffer a plain client sent as a binary frame. */
  readonly binary: boolean;
  readonly client: ClientInfo;
}

type MaybePromise<T> = T | PromiseLike<T>;

/** The hooks an application may set, all optional; see docs/server.md for every failure mode. */
export interface PlazaHooks {
  /**
   * Decides who an upgrade on Plaza's path is, before the WebSocket exists. Return an Identity,
   * `refuse(status, reason)`, or nothing to let the built-in rules decide (`authSecret` tokens,
   * or anonymous without one).
   */
  authenticate?(request: IncomingMessage, call: HookCall): MaybePromise<Identity | Refusal | undefined | null | void>;
  /** Runs before a client joins a room (not again on a rejoin); nothing or `allow()` lets it in. */
  onJoin?(context: JoinContext): MaybePromise<JoinVerdict | undefined | null | void>;
  /** Runs after a client left a room, or closed while in it; its outcome changes nothing. */
  onLeave?(context: LeaveContext): MaybePromise<unknown>;
  /**
   * Runs before a client's message gets its offset; nothing or `allow()` publishes it as sent.
   * The same connection's next request waits until this one is decided.
   */
  onPublish?(context: PublishContext): MaybePromise<PublishVerdict | undefined | null | void>;
  /** How long one hook call may take (ms); then the client gets `hook_timeout`. @default 5000 */
  hookTimeout?: number;
  /** Hook calls running at once across the server; past it a call is answered `hook_busy` at once. @default 1000 */
  maxHookCalls?: number;
}

/** Lets a join or a publish through unchanged (the same as returning nothing). */
export function allow(): Allowance {
  return { verdict: 'allow' };
}

/**
 * Refuses a join or a publish: the client gets an `error` envelope with `code` (lower-case
 * letters, digits and `_`, 1 to 64 characters, e.g. `moderated`) and `message`.
 */
export function reject(code = 'rejected', message = 'the server refused this request'): Rejection {
  return { verdict: 'reject', code, message };
}

/** Publishes `data` (any JSON value) instead of what the client sent. */
export function replace(data: unknown): Replacement {
  return { verdict: 'replace', data };
}

/**
 * Refuses an upgrade with an HTTP status (400–599) and a reason. A plaza.v1 client refused with
 * 401 or 403 is closed with 4003 and the reason instead, because a browser cannot read a refused
 * upgrade's status; every other status is an HTTP answer for both kinds of client.
 */
export function refuse(status = 401, reason = 'not allowed to connect'): Refusal {
  return { verdict: 'refuse', status, reason };
}
