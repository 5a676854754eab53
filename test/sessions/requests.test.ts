/**
 * plaza.v1 requests (src/server/sessions/requests.ts): every field rule, one by one. A frame
 * becomes a typed request with only the known fields, or a coded error that echoes the request's
 * id when it had a valid one.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_JSON_DEPTH } from '../../src/shared/json.js';
import { parseRequest, requestIdOf } from '../../src/server/sessions/requests.js';

const LIMITS = { maxRoomName: 16, historySize: 50 };

const parse = (request: unknown) => parseRequest(typeof request === 'string' ? request : JSON.stringify(request), LIMITS);

function accepted(request: unknown): unknown {
  const result = parse(request);
  assert.ok(result.ok, `refused: ${!result.ok && result.message}`);
  return result.request;
}

/** [code, id, message] of a refusal. */
function refused(request: unknown): [code: string, id: number | string | undefined, message: string] {
  const result = parse(request);
  assert.ok(!result.ok, `accepted: ${JSON.stringify(result)}`);
  assert.ok(result.message.length > 0);
  return [result.code, result.id, result.message];
}

describe('parseRequest', () => {
  describe('the frame', () => {
    it('answers bad_json to text that is not JSON, without an id', () => {
      assert.deepEqual(refused('{"type":"hello",'), ['bad_json', undefined, 'the frame is not valid JSON']);
      assert.deepEqual(refused('').slice(0, 2), ['bad_json', undefined]);
    });

    it('answers bad_request to JSON that is not an object', () => {
      for (const value of ['[]', '[{"type":"hello"}]', '7', 'null', '"hello"', 'true']) {
        assert.deepEqual(refused(value).slice(0, 2), ['bad_request', undefined], value);
      }
    });

    it(`refuses nesting deeper than ${MAX_JSON_DEPTH} levels inside the envelope before parsing, and allows exactly that`, () => {
      const nested = (depth: number) => `{"type":"publish","room":"r","data":${'['.repeat(depth)}${']'.repeat(depth)}}`;
      assert.equal(parse(nested(MAX_JSON_DEPTH)).ok, true);
      const [code, , message] = refused(nested(MAX_JSON_DEPTH + 1));
      assert.equal(code, 'bad_request');
      assert.match(message, /nests deeper than 100 levels/);
      // Brackets inside strings are text, not nesting.
      assert.equal(parse({ type: 'publish', room: 'r', data: '['.repeat(500) }).ok, true);
    });
  });

  describe('id', () => {
    it('takes a finite number or a string of at most 64 characters, and echoes it on errors', () => {
      assert.deepEqual(accepted({ type: 'hello', id: 3 }), { type: 'hello', id: 3, name: undefined });
      assert.deepEqual(accepted({ type: 'hello', id: -1.5 }), { type: 'hello', id: -1.5, name: undefined });
      assert.deepEqual(accepted({ type: 'hello', id: 'x'.repeat(64) }), { type: 'hello', id: 'x'.repeat(64), name: undefined });
      assert.deepEqual(refused({ type: 'nope', id: 'q7' }).slice(0, 2), ['unknown_type', 'q7']);
      assert.deepEqual(refused({ type: 'join', id: 8, room: '' }).slice(0, 2), ['bad_room', 8]);
    });

    it('refuses any other id, without echoing it', () => {
      for (const id of ['x'.repeat(65), true, null, { a: 1 }, [1]]) {
        const [code, echoed, message] = refused({ type: 'hello', id });
        assert.deepEqual([code, echoed], ['bad_request', undefined], JSON.stringify(id));
        assert.match(message, /"id" must be a number or a string of at most 64 characters/);
      }
      assert.deepEqual(refused('{"type":"hello","id":1e400}').slice(0, 2), ['bad_request', undefined], 'Infinity is no id');
    });
  });

  describe('type', () => {
    it('must be a string, and one of hello, join, leave and publish', () => {
      assert.deepEqual(refused({ id: 1 }).slice(0, 2), ['bad_request', 1]);
      assert.match(refused({ type: 7 })[2], /"type" must be a string/);
      const [code, , message] = refused({ type: `subscribe${'x'.repeat(100)}` });
      assert.equal(code, 'unknown_type');
      assert.match(message, /unknown type "subscribexxxxxxxxxxxxxxxxxxxxxxx"; expected hello, join, leave, publish or withdraw/, 'the name is cut at 32 characters');
      assert.equal(refused({ type: 'Hello' })[0], 'unknown_type');
    });
  });

  describe('hello', () => {
    it('takes an optional display name, normalized', () => {
      assert.deepEqual(accepted({ type: 'hello' }), { type: 'hello', id: undefined, name: undefined });
      assert.deepEqual(accepted({ type: 'hello', name: '  Ada\u0000 ' }), { type: 'hello', id: undefined, name: 'Ada' });
    });

    it('refuses a name that is not a string or shows nothing', () => {
      assert.match(refused({ type: 'hello', name: 5 })[2], /"name" must be a string/);
      assert.deepEqual(refused({ type: 'hello', name: '\u200b\u0007 ' }).slice(0, 1), ['bad_request']);
      assert.match(refused({ type: 'hello', name: 'x'.repeat(65) })[2], /1 to 64 visible characters/);
    });
  });

  describe('room names (join, leave, publish)', () => {
    it('accept letters, digits and _ - . : @ # / + = ~ up to maxRoomName characters', () => {
      for (const room of ['lobby', 'team-7', 'a_b.c:d@e#f/g+h=i~j'.slice(0, 16), 'émoji', '日本語', 'x'.repeat(16)]) {
        assert.equal((accepted({ type: 'leave', room }) as { room: string }).room, room);
      }
    });

    it('refuse anything else with bad_room, for every request that names a room', () => {
      for (const room of [undefined, '', 7, ['lobby'], 'x'.repeat(17), 'has space', 'a{b}', 'tab\t', 'new\nline', 'quote"', '🌍']) {
        for (const type of ['join', 'leave', 'publish']) {
          assert.equal(refused({ type, room, data: 1 })[0], 'bad_room', `${type} ${JSON.stringify(room)}`);
        }
      }
    });
  });

  describe('join', () => {
    it('reads since, history (capped at historySize) and presence, and nothing else', () => {
      const request = accepted({ type: 'join', id: 1, room: 'r', since: { epoch: 'E1', offset: 4 }, history: 500, presence: true, extra: 'ignored' });
      assert.deepEqual(request, { type: 'join', id: 1, room: 'r', since: { epoch: 'E1', offset: 4 }, history: 50, presence: true });
      assert.deepEqual(accepted({ type: 'join', room: 'r' }), { type: 'join', id: undefined, room: 'r', since: undefined, history: undefined, presence: undefined });
      assert.deepEqual(accepted({ type: 'join', room: 'r', history: 0, since: { epoch: 'E', offset: 0 } }), { type: 'join', id: undefined, room: 'r', since: { epoch: 'E', offset: 0 }, history: 0, presence: undefined });
    });

    it('refuses a history that is not an integer ≥ 0', () => {
      for (const history of [-1, 1.5, '10', null, true, 2 ** 53]) {
        assert.match(refused({ type: 'join', room: 'r', history })[2], /"history" must be an integer ≥ 0/, JSON.stringify(history));
      }
    });

    it('refuses a since that is not {epoch, offset} as the server sent them', () => {
      assert.match(refused({ type: 'join', room: 'r', since: 'E1:4' })[2], /"since" must be an object/);
      assert.match(refused({ type: 'join', room: 'r', since: [1] })[2], /"since" must be an object/);
      assert.match(refused({ type: 'join', room: 'r', since: null })[2], /"since" must be an object/);
      for (const epoch of [undefined, '', 7, 'e'.repeat(33)]) {
        assert.match(refused({ type: 'join', room: 'r', since: { epoch, offset: 1 } })[2], /"since.epoch"/, JSON.stringify(epoch));
      }
      assert.equal(parse({ type: 'join', room: 'r', since: { epoch: 'e'.repeat(32), offset: 1 } }).ok, true);
      for (const offset of [undefined, -1, 1.5, '4', 2 ** 53]) {
        assert.match(refused({ type: 'join', room: 'r', since: { epoch: 'E', offset } })[2], /"since.offset" must be an integer ≥ 0/, JSON.stringify(offset));
      }
    });

    it('refuses a presence that is not true or false', () => {
      for (const presence of [1, 'yes', null]) assert.match(refused({ type: 'join', room: 'r', presence })[2], /"presence" must be true or false/);
    });

    it('reads only its own fields: __proto__ in the JSON reaches nothing', () => {
      const request = accepted(JSON.parse('{"type":"join","room":"r","__proto__":{"presence":true,"history":9}}') as unknown) as Record<string, unknown>;
      assert.equal(request.presence, undefined);
      assert.equal(request.history, undefined);
      assert.equal(({} as Record<string, unknown>).presence, undefined);
      assert.equal(refused('{"room":"r","__proto__":{"type":"join"}}')[0], 'bad_request');
    });
  });

  describe('leave', () => {
    it('needs only a room', () => {
      assert.deepEqual(accepted({ type: 'leave', id: 'l', room: 'r', since: 'ignored' }), { type: 'leave', id: 'l', room: 'r' });
    });
  });

  describe('publish', () => {
    it('takes any JSON value as data, null and false included, and an optional excludeSelf', () => {
      for (const data of [null, false, 0, '', [], {}, { nested: [1, 'two'] }]) {
        assert.deepEqual(accepted({ type: 'publish', room: 'r', data }), { type: 'publish', id: undefined, room: 'r', data, excludeSelf: undefined, publishId: undefined });
      }
      assert.deepEqual(accepted({ type: 'publish', id: 2, room: 'r', data: 1, excludeSelf: true }), { type: 'publish', id: 2, room: 'r', data: 1, excludeSelf: true, publishId: undefined });
    });

    it('takes a publishId of 1 to 64 printable ASCII characters, and refuses any other (issue #22)', () => {
      assert.equal((accepted({ type: 'publish', room: 'r', data: 1, publishId: 'Zx9_-.~!' }) as { publishId?: string }).publishId, 'Zx9_-.~!');
      assert.equal((accepted({ type: 'publish', room: 'r', data: 1, publishId: 'x'.repeat(64) }) as { publishId?: string }).publishId, 'x'.repeat(64));
      for (const publishId of ['', 'x'.repeat(65), 'has space', 'ünï', 7, null, ['a']]) {
        assert.deepEqual(refused({ type: 'publish', id: 4, room: 'r', data: 1, publishId }).slice(0, 2), ['bad_request', 4], JSON.stringify(publishId));
      }
    });

    it('refuses a publish without data, or with an excludeSelf that is not true or false', () => {
      assert.deepEqual(refused({ type: 'publish', id: 3, room: 'r' }), ['bad_request', 3, '"data" is required (any JSON value)']);
      assert.match(refused({ type: 'publish', room: 'r', data: 1, excludeSelf: 'yes' })[2], /"excludeSelf" must be true or false/);
    });
  });
});

describe('requestIdOf', () => {
  it("finds the id of a frame that will not be handled, when it has a valid one", () => {
    assert.equal(requestIdOf('{"type":"publish","id":"p9","room":"r","data":1}'), 'p9');
    assert.equal(requestIdOf('{"id":4}'), 4);
    for (const text of ['not json', '[{"id":1}]', '{"id":true}', `{"id":"${'x'.repeat(65)}"}`, '{}', '{"id":1e400}']) {
      assert.equal(requestIdOf(text), undefined, text);
    }
  });
});
