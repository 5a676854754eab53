/**
 * The authenticate hook as the upgrade calls it: runs it under the runner's bounds and turns what
 * it returned into one of four answers the door understands: an identity (as a grant, the same
 * shape a token gives), a refusal with an HTTP status, "decide by the built-in rules", or a
 * failure code.
 */
import type { IncomingMessage } from 'node:http';
import { DisplayNameError, normalizeDisplayName } from '../access/display-name.js';
import { roomMatcher, type Grant } from '../access/tokens.js';
import type { HookFailure, HookRunner } from './runner.js';
import type { PlazaHooks } from './types.js';
import { MAX_HOOK_REASON, MAX_HOOK_USER_ID } from '../bounds.js';

export type Authentication =
  /** The hook said who this is: `grant` as a token would give it, `data` for hooks and events. */
  | { kind: 'identity'; grant: Grant; data: unknown }
  /** The hook refused the upgrade. */
  | { kind: 'refused'; status: number; reason: string }
  /** The hook returned nothing: --auth-secret's token decides, or nobody (anonymous). */
  | { kind: 'pass' }
  /** The hook threw, timed out, was busy or returned something it may not. */
  | { kind: 'failed'; code: HookFailure['code']; message: string };

export type Authenticator = (request: IncomingMessage) => Promise<Authentication>;

const EVERY_ROOM = ['*'];

/** Returns the function the upgrade calls, or undefined when the app set no authenticate hook. */
export function createAuthenticator(hooks: Pick<PlazaHooks, 'authenticate'>, runner: HookRunner): Authenticator | undefined {
  const authenticate = hooks.authenticate;
  if (typeof authenticate !== 'function') return undefined;
  return async (request) => {
    const outcome = await runner.run('authenticate', (signal) => authenticate(request, { signal }), (value) => read(value, runner));
    return outcome.ok ? outcome.value : failed(outcome);
  };
}

/** What the hook returned, each field read once (the runner turns a throwing getter into hook_failed). */
function read(value: unknown, runner: HookRunner): Authentication {
  if (value === undefined || value === null) return { kind: 'pass' };
  if (typeof value !== 'object') return failed(runner.invalid('authenticate', `expected an identity { id, name, grants }, refuse(status, reason) or nothing, got ${typeof value}`));
  const record = value as Record<string, unknown>;
  if (record.verdict === 'refuse') {
    const { status, reason } = record;
    if (!Number.isInteger(status) || (status as number) < 400 || (status as number) > 599) {
      return failed(runner.invalid('authenticate', `refuse() needs an HTTP status from 400 to 599, got ${String(status)}`));
    }
    if (typeof reason !== 'string') return failed(runner.invalid('authenticate', 'refuse() needs a reason string'));
    runner.refused('authenticate');
    // Control characters would let a reason forge lines where clients show or log it.
    return { kind: 'refused', status: status as number, reason: reason.replace(/[\p{Cc}\p{Cf}]/gu, '').slice(0, MAX_HOOK_REASON) };
  }
  const { id, name, grants, data } = record;
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_HOOK_USER_ID) {
    return failed(runner.invalid('authenticate', `an identity needs "id", a string of 1 to ${MAX_HOOK_USER_ID} characters`));
  }
  let displayName = id;
  if (name !== undefined) {
    if (typeof name !== 'string') return failed(runner.invalid('authenticate', 'an identity\'s "name" must be a string'));
    try {
      displayName = normalizeDisplayName(name);
    } catch (error) {
      if (error instanceof DisplayNameError) return failed(runner.invalid('authenticate', `an identity's ${error.message}`));
      throw error;
    }
  }
  if (grants !== undefined && (typeof grants !== 'object' || grants === null)) return failed(runner.invalid('authenticate', '"grants" must be { join?, publish? }'));
  const rooms = patterns(grants, 'join') ?? EVERY_ROOM;
  const publish = patterns(grants, 'publish') ?? rooms;
  if (rooms === false || publish === false) return failed(runner.invalid('authenticate', '"grants.join" and "grants.publish" must be lists of room names or patterns'));
  return { kind: 'identity', grant: { userId: id, name: displayName, mayJoin: roomMatcher(rooms), mayPublish: roomMatcher(publish) }, data };
}

function failed(failure: HookFailure): Authentication {
  return { kind: 'failed', code: failure.code, message: failure.message };
}

/** A list of room patterns from `grants`; undefined when absent, false when not a list of strings. */
function patterns(grants: unknown, key: 'join' | 'publish'): readonly string[] | undefined | false {
  if (typeof grants !== 'object' || grants === null) return undefined;
  const list = (grants as Record<string, unknown>)[key];
  if (list === undefined) return undefined;
  if (!Array.isArray(list) || !list.every((item) => typeof item === 'string')) return false;
  return list.map((item: string) => item.trim()).filter(Boolean);
}
