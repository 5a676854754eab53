/**
 * plaza.v1 envelopes (src/server/engine/envelope.ts). The hot ones are assembled from
 * pre-encoded parts instead of JSON.stringify; each must be exactly the JSON a plain
 * JSON.stringify of the same object would give, whatever the room name or data holds.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeSender, errorEnvelope, joinedEnvelope, messageEnvelope, presenceEnvelope } from '../../src/server/engine/envelope.js';

const ROOMS = ['lobby', 'team-7', 'quote"back\\slash', 'émoji 🌍', '__proto__', '\u2028'];

describe('envelope', () => {
  it('builds a message envelope that is exactly JSON.stringify of the message', () => {
    for (const room of ROOMS) {
      for (const data of ['text', 'say "hi"\n', { a: [1, null] }, 0, null, false]) {
        const fromJson = encodeSender('s3ss10n', 'Ada "the" Countess');
        const envelope = messageEnvelope({ roomJson: JSON.stringify(room), offset: 42, epoch: 'Ab-_9z', time: 1_700_000_000_123, fromJson, dataJson: JSON.stringify(data), base64: false });
        const expected = { type: 'message', room, id: 'Ab-_9z:42', offset: 42, epoch: 'Ab-_9z', time: 1_700_000_000_123, from: { session: 's3ss10n', name: 'Ada "the" Countess' }, data };
        assert.equal(envelope, JSON.stringify(expected));
      }
    }
  });

  it('marks base64 data of binary messages with "encoding"', () => {
    const envelope = messageEnvelope({ roomJson: '"r"', offset: 1, epoch: 'E', time: 5, fromJson: encodeSender('s', 'n'), dataJson: '"AAEC"', base64: true });
    assert.deepEqual(JSON.parse(envelope), { type: 'message', room: 'r', id: 'E:1', offset: 1, epoch: 'E', time: 5, from: { session: 's', name: 'n' }, data: 'AAEC', encoding: 'base64' });
    assert.equal(JSON.parse(messageEnvelope({ roomJson: '"r"', offset: 1, epoch: 'E', time: 5, fromJson: '{}', dataJson: '"AAEC"', base64: false })).encoding, undefined);
  });

  it('splices already encoded messages into a joined reply', () => {
    const messages = [1, 2, 3].map((offset) =>
      messageEnvelope({ roomJson: '"r"', offset, epoch: 'E', time: offset, fromJson: encodeSender('s', 'n'), dataJson: JSON.stringify({ n: offset }), base64: false }),
    );
    const reply = { type: 'joined' as const, id: 'q1', room: 'r', epoch: 'E', offset: 3, recovered: true, members: [{ session: 's', name: 'n' }], memberCount: 1 };
    const joined = joinedEnvelope(reply, messages);
    assert.equal(joined, JSON.stringify({ ...reply, messages: messages.map((m) => JSON.parse(m)) }));
    assert.equal(joinedEnvelope({ type: 'joined', room: 'r', epoch: 'E', offset: 0 }, []), '{"type":"joined","room":"r","epoch":"E","offset":0,"messages":[]}');
  });

  it('builds error envelopes with the request id when there is one', () => {
    assert.deepEqual(JSON.parse(errorEnvelope(7, 'not_joined', 'join first')), { type: 'error', id: 7, code: 'not_joined', message: 'join first' });
    assert.deepEqual(JSON.parse(errorEnvelope('q"1', 'bad_room', 'no')), { type: 'error', id: 'q"1', code: 'bad_room', message: 'no' });
    const anonymous = JSON.parse(errorEnvelope(undefined, 'bad_json', 'not JSON'));
    assert.deepEqual(anonymous, { type: 'error', code: 'bad_json', message: 'not JSON' });
    assert.equal('id' in anonymous, false);
  });

  it('builds presence deltas for a join and a leave', () => {
    const ada = { session: 'a', name: 'Ada' };
    assert.deepEqual(JSON.parse(presenceEnvelope('r', 'joined', ada, 2)), { type: 'presence', room: 'r', joined: [ada], memberCount: 2 });
    assert.deepEqual(JSON.parse(presenceEnvelope('r', 'left', ada, 1)), { type: 'presence', room: 'r', left: [ada], memberCount: 1 });
  });
});
