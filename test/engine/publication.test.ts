/**
 * Publications (src/server/engine/publication.ts): a room message framed for each wire protocol.
 * Plain clients get what was sent in the form it was sent; plaza.v1 clients the envelope; and a
 * message rebuilt from its stored parts (another node's, or a resync's) is framed to exactly the
 * same bytes as the one published here. Frames are read back with ws's own parser.
 */
import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import * as wsModule from 'ws';
import { dataJsonOf, plainKindOf, Publication, StoredPublication, type Payload } from '../../src/server/engine/publication.js';

interface FrameReceiver extends EventEmitter {
  write(chunk: Buffer): void;
}
// ws exports its frame parser at runtime but @types/ws does not declare it.
const { Receiver } = wsModule as unknown as {
  Receiver: new (options: { isServer: boolean; maxPayload: number }) => FrameReceiver;
};

/** What a client reads from one server frame. */
function read(frame: Buffer): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve, reject) => {
    const receiver = new Receiver({ isServer: false, maxPayload: 0 });
    receiver.on('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary }));
    receiver.on('error', reject);
    receiver.write(frame);
  });
}

const text = (value: string): Payload => ({ kind: 'text', text: value, bytes: Buffer.from(value) });
const binary = (bytes: number[]): Payload => ({ kind: 'binary', bytes: Buffer.from(bytes) });
const json = (data: unknown): Payload => ({ kind: 'json', data });

const ENVELOPE = '{"type":"message","room":"r","data":"whatever"}';

describe('publication', () => {
  it('says how plain clients receive each payload (the kind stored with it in Redis)', () => {
    assert.equal(plainKindOf(text('hi')), 't');
    assert.equal(plainKindOf(binary([1])), 'b');
    assert.equal(plainKindOf(json('a string')), 't', 'a JSON string reaches plain clients as its text');
    for (const data of [{ a: 1 }, [1, 2], 0, false, null]) assert.equal(plainKindOf(json(data)), 'j', JSON.stringify(data));
  });

  it('encodes data as the v1 envelope carries it: text as a JSON string, binary as base64', () => {
    assert.equal(dataJsonOf(text('say "hi"\n\u2028🌍')), JSON.stringify('say "hi"\n\u2028🌍'));
    assert.equal(dataJsonOf(binary([0, 1, 2, 250, 255])), `"${Buffer.from([0, 1, 2, 250, 255]).toString('base64')}"`);
    assert.equal(dataJsonOf(json({ text: 'x', n: [1, null] })), '{"text":"x","n":[1,null]}');
  });

  it('gives v1 members the envelope as a text frame', async () => {
    for (const payload of [text('hi'), binary([1, 2]), json({ a: 1 })]) {
      const read1 = await read(new Publication(ENVELOPE, payload, dataJsonOf(payload)).frameFor('v1'));
      assert.equal(read1.isBinary, false);
      assert.equal(read1.data.toString(), ENVELOPE);
    }
  });

  it('gives plain members what was sent, in the form it was sent', async () => {
    const exact = Buffer.from('exact bytes: é 🌍');
    const fromText = await read(new Publication(ENVELOPE, { kind: 'text', text: exact.toString(), bytes: exact }, '').frameFor('plain'));
    assert.deepEqual([fromText.isBinary, fromText.data], [false, exact]);
    const fromBinary = await read(new Publication(ENVELOPE, binary([0, 255, 7]), '"AP8H"').frameFor('plain'));
    assert.deepEqual([fromBinary.isBinary, [...fromBinary.data]], [true, [0, 255, 7]]);
    const fromString = await read(new Publication(ENVELOPE, json('plain words'), '"plain words"').frameFor('plain'));
    assert.deepEqual([fromString.isBinary, fromString.data.toString()], [false, 'plain words']);
    const fromObject = await read(new Publication(ENVELOPE, json({ a: [1] }), '{"a":[1]}').frameFor('plain'));
    assert.deepEqual([fromObject.isBinary, fromObject.data.toString()], [false, '{"a":[1]}']);
  });

  it('frames a message rebuilt from its stored parts to the very same bytes, for both protocols', () => {
    const payloads = [
      text('hello'),
      text('quotes " and \\ and\nlines \u2028 🌍'),
      binary([]),
      binary([0, 1, 2, 3, 254, 255]),
      json('a json string'),
      json(''),
      json({ nested: { list: [1, 'two', null, true] } }),
      json(0),
      json(null),
      json(false),
    ];
    for (const payload of payloads) {
      const dataJson = dataJsonOf(payload);
      const local = new Publication(ENVELOPE, payload, dataJson);
      const stored = new StoredPublication(ENVELOPE, dataJson, plainKindOf(payload));
      for (const protocol of ['plain', 'v1'] as const) {
        assert.deepEqual(stored.frameFor(protocol), local.frameFor(protocol), `${JSON.stringify(payload)} for ${protocol}`);
      }
    }
  });
});
