/**
 * The room hooks as the broker calls them: onJoin and onPublish screen a request before it takes
 * effect, onLeave is told afterwards. Each verdict is checked here, so the broker only ever sees
 * "go on" (with the payload to publish) or a code and a message to answer with.
 */
import { MAX_JSON_DEPTH, nestsWithin } from '../../shared/json.js';
import type { Member } from '../engine/hub.js';
import type { Payload } from '../engine/publication.js';
import type { HookName, HookRunner } from './runner.js';
import type { ClientInfo, PlazaHooks } from './types.js';
import { MAX_HOOK_MESSAGE } from '../bounds.js';

/** What a refused request is answered with; `hook` tells a hook's answer from Plaza's own checks. */
export interface Refused {
  ok: false;
  code: string;
  message: string;
}

export type Screened = { ok: true; payload: Payload } | Refused;
export type Admitted = { ok: true } | Refused;

/** An app's own error code: what clients can branch on, so it has a fixed shape. */
const APP_CODE = /^[a-z][a-z0-9_]{0,63}$/;

const ALLOWED: Admitted = { ok: true };

/** The member as hooks and events see it; built only when a hook or a listener needs it. */
export function clientOf(member: Member): ClientInfo {
  return {
    session: member.id,
    user: member.userId,
    name: member.name,
    address: member.remoteAddress ?? '',
    protocol: member.protocol,
    data: member.data,
  };
}

/** The data hooks and events see, in the form it was published: JSON value, text or bytes. */
export function dataOf(payload: Payload): unknown {
  return payload.kind === 'json' ? payload.data : payload.kind === 'text' ? payload.text : payload.bytes;
}

export class RoomHooks {
  /** onJoin is set: joins wait for it. */
  readonly screensJoins: boolean;
  /** onPublish is set: client publishes wait for it (and are ordered behind each other). */
  readonly screensPublishes: boolean;

  constructor(
    private readonly hooks: Pick<PlazaHooks, 'onJoin' | 'onLeave' | 'onPublish'>,
    private readonly runner: HookRunner,
    /** Largest replacement data accepted, in bytes of JSON (--max-payload). */
    private readonly maxPayload: number,
  ) {
    this.screensJoins = typeof hooks.onJoin === 'function';
    this.screensPublishes = typeof hooks.onPublish === 'function';
  }

  async screenJoin(room: string, member: Member): Promise<Admitted> {
    const onJoin = this.hooks.onJoin;
    if (!onJoin) return ALLOWED;
    const client = clientOf(member);
    const outcome = await this.runner.run('onJoin', (signal) => onJoin({ room, client, signal }), (verdict: unknown): Admitted => {
      const kind = verdictOf(verdict);
      if (verdict === undefined || verdict === null || kind === 'allow') return ALLOWED;
      if (kind === 'reject') return this.rejection('onJoin', verdict as Record<string, unknown>);
      return this.runner.invalid('onJoin', `expected allow(), reject(code, message) or nothing, got ${describe(verdict)}`);
    });
    return outcome.ok ? outcome.value : outcome;
  }

  async screenPublish(room: string, payload: Payload, member: Member): Promise<Screened> {
    const onPublish = this.hooks.onPublish;
    if (!onPublish) return { ok: true, payload };
    const client = clientOf(member);
    const data = dataOf(payload);
    const binary = payload.kind === 'binary';
    const outcome = await this.runner.run('onPublish', (signal) => onPublish({ room, data, binary, client, signal }), (verdict: unknown): Screened => {
      const kind = verdictOf(verdict);
      if (verdict === undefined || verdict === null || kind === 'allow') return { ok: true, payload };
      if (kind === 'reject') return this.rejection('onPublish', verdict as Record<string, unknown>);
      if (kind === 'replace') return this.replacement(verdict as Record<string, unknown>);
      return this.runner.invalid('onPublish', `expected allow(), reject(code, message), replace(data) or nothing, got ${describe(verdict)}`);
    });
    return outcome.ok ? outcome.value : outcome;
  }

  /** Tells onLeave; nobody waits for it, and what becomes of it is only logged and counted. */
  left(room: string, member: Member): void {
    const onLeave = this.hooks.onLeave;
    if (!onLeave) return;
    const client = clientOf(member);
    void this.runner.run('onLeave', (signal) => onLeave({ room, client, signal }), () => undefined);
  }

  private rejection(hook: HookName, verdict: Record<string, unknown>): Refused {
    const { code, message } = verdict;
    if (typeof code !== 'string' || !APP_CODE.test(code)) {
      return this.runner.invalid(hook, `reject() needs a code of 1 to 64 lower-case letters, digits or _, starting with a letter; got ${describe(code)}`);
    }
    if (typeof message !== 'string') return this.runner.invalid(hook, `reject() needs a message string; got ${describe(message)}`);
    this.runner.refused(hook);
    return { ok: false, code, message: message.slice(0, MAX_HOOK_MESSAGE) };
  }

  private replacement(verdict: Record<string, unknown>): Screened {
    const data = verdict.data;
    let json: string | undefined;
    try {
      json = JSON.stringify(data);
    } catch (error) {
      return this.runner.invalid('onPublish', `replace() data cannot be encoded as JSON: ${(error as Error).message}`);
    }
    if (json === undefined) return this.runner.invalid('onPublish', `replace() needs a JSON value; got ${describe(data)}`);
    if (Buffer.byteLength(json) > this.maxPayload) {
      return this.runner.invalid('onPublish', `replace() data is larger than maxPayload (${this.maxPayload} bytes)`);
    }
    // Published as its JSON, and checked as such: `data` may be changed by the app later (or
    // answer differently when read again), the message may not.
    const copy = JSON.parse(json) as unknown;
    if (!nestsWithin(copy, MAX_JSON_DEPTH)) return this.runner.invalid('onPublish', `replace() data nests deeper than ${MAX_JSON_DEPTH} levels`);
    return { ok: true, payload: { kind: 'json', data: copy } };
  }
}

/** Which verdict a hook returned: its `verdict` field, read once. */
function verdictOf(value: unknown): unknown {
  return typeof value === 'object' && value !== null ? (value as { verdict?: unknown }).verdict : undefined;
}

/** A short description of what a hook returned, for the log. */
function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return 'a function';
  try {
    return (JSON.stringify(value) ?? String(value)).slice(0, 100);
  } catch {
    return typeof value;
  }
}
