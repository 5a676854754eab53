/**
 * A room message on its way out. v1 members get the envelope, plain members the bare payload;
 * each form is framed at most once per message, and only if some recipient speaks it.
 */
import { encodeFrame, encodeTextFrame, Opcode } from './frame.js';
import type { Outgoing, WireProtocol } from './hub.js';
import { encodeSseEnvelope } from './sse-event.js';

/** A plaza.v1 envelope framed for a member that speaks plaza.v1 (over a WebSocket or as events). */
export function frameEnvelope(protocol: WireProtocol, json: string): Buffer {
  return protocol === 'sse' ? encodeSseEnvelope(json) : encodeTextFrame(json);
}

/** One envelope for several members (presence, a cluster's notice of a gap): framed once per protocol. */
export class Envelope implements Outgoing {
  private readonly frames: Partial<Record<WireProtocol, Buffer>> = {};
  constructor(readonly json: string) {}

  frameFor(protocol: WireProtocol): Buffer {
    return (this.frames[protocol] ??= frameEnvelope(protocol, this.json));
  }
}

/** What was published, in the form it arrived. */
export type Payload =
  /** Text from a plain client: `bytes` are its exact UTF-8 bytes. */
  | { kind: 'text'; text: string; bytes: Buffer }
  /** Binary from a plain client; v1 clients get it as base64. */
  | { kind: 'binary'; bytes: Buffer }
  /** Any JSON value from a v1 client or the HTTP API. */
  | { kind: 'json'; data: unknown };

/**
 * How plain clients receive a message, as stored with it in Redis: `t` text (data is a JSON
 * string), `b` binary (data is base64 in a JSON string), `j` the JSON text of data.
 */
export type PlainKind = 't' | 'b' | 'j';

export function plainKindOf(payload: Payload): PlainKind {
  if (payload.kind === 'binary') return 'b';
  return payload.kind === 'json' && typeof payload.data !== 'string' ? 'j' : 't';
}

/** `data` as it appears in the v1 envelope. */
export function dataJsonOf(payload: Payload): string {
  switch (payload.kind) {
    case 'text':
      return JSON.stringify(payload.text);
    case 'binary':
      return `"${payload.bytes.toString('base64')}"`;
    case 'json':
      return JSON.stringify(payload.data);
  }
}

/** Published on this node: the payload is at hand, so plain frames need no parsing. */
export class Publication implements Outgoing {
  constructor(
    readonly envelope: string,
    private readonly payload: Payload,
    private readonly dataJson: string,
  ) {}

  frameFor(protocol: WireProtocol): Buffer {
    if (protocol !== 'plain') return frameEnvelope(protocol, this.envelope);
    const payload = this.payload;
    if (payload.kind === 'binary') return encodeFrame(payload.bytes, Opcode.Binary);
    if (payload.kind === 'text') return encodeFrame(payload.bytes, Opcode.Text);
    // Plain clients read text: a string as itself, anything else as its JSON.
    return typeof payload.data === 'string' ? encodeTextFrame(payload.data) : encodeTextFrame(this.dataJson);
  }
}

/** Published elsewhere (another node, or before a resync): rebuilt from its stored parts. */
export class StoredPublication implements Outgoing {
  constructor(
    readonly envelope: string,
    private readonly dataJson: string,
    private readonly plain: PlainKind,
  ) {}

  frameFor(protocol: WireProtocol): Buffer {
    if (protocol !== 'plain') return frameEnvelope(protocol, this.envelope);
    if (this.plain === 'j') return encodeTextFrame(this.dataJson);
    const text = JSON.parse(this.dataJson) as string;
    return this.plain === 'b' ? encodeFrame(Buffer.from(text, 'base64'), Opcode.Binary) : encodeTextFrame(text);
  }
}
