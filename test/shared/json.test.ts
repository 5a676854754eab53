/**
 * The JSON helpers every surface shares (src/shared/json.ts): the nesting bound counted on the
 * text before parsing and on a parsed value, and reading untrusted objects by own keys only.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isObject, MAX_JSON_DEPTH, nestsWithin, own, textNestsWithin } from '../../src/shared/json.js';

const arrays = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
const objects = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

describe('json', () => {
  describe('textNestsWithin', () => {
    it('counts arrays and objects alike, and allows exactly the bound', () => {
      for (const nest of [arrays, objects]) {
        assert.equal(textNestsWithin(nest(MAX_JSON_DEPTH), MAX_JSON_DEPTH), true);
        assert.equal(textNestsWithin(nest(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH), false);
      }
      assert.equal(textNestsWithin('[{"a":[{"b":[]}]}]', 5), true);
      assert.equal(textNestsWithin('[{"a":[{"b":[]}]}]', 4), false);
      assert.equal(textNestsWithin('"no nesting"', 0), true);
    });

    it('counts depth, not brackets: siblings do not add up', () => {
      assert.equal(textNestsWithin(`[${Array.from({ length: 1000 }, () => '[1]').join(',')}]`, 2), true);
    });

    it('skips brackets inside strings, escaped quotes included', () => {
      assert.equal(textNestsWithin(JSON.stringify({ text: '[[[[[{{{{{' }), 1), true);
      assert.equal(textNestsWithin(JSON.stringify({ text: 'say \\"[[[[\\" \\\\' }), 1), true);
      assert.equal(textNestsWithin(JSON.stringify(['a"[[', ['b']]), 2), true);
      assert.equal(textNestsWithin(JSON.stringify(['a"[[', [['b']]]), 2), false);
    });

    it('agrees with nestsWithin on the parsed value', () => {
      for (const text of [arrays(3), objects(4), '[[1,[2,[3]]],{"a":{"b":[]}}]', '{"s":"[[[["}', '1', 'null']) {
        for (const max of [0, 1, 2, 3, 4, 5]) {
          assert.equal(textNestsWithin(text, max), nestsWithin(JSON.parse(text), max), `${text} within ${max}`);
        }
      }
    });
  });

  describe('nestsWithin', () => {
    it('walks a parsed value without recursion, so a deep one cannot overflow the stack', () => {
      let deep: unknown = [];
      for (let i = 0; i < 100_000; i++) deep = [deep];
      assert.equal(nestsWithin(deep, MAX_JSON_DEPTH), false);
      assert.equal(nestsWithin({ a: [{ b: 1 }] }, 3), true);
      assert.equal(nestsWithin({ a: [{ b: {} }] }, 3), false);
    });
  });

  describe('isObject and own', () => {
    it('isObject: a JSON object, not an array or null', () => {
      assert.deepEqual([{}, [], null, 'x', 1, true, undefined].map(isObject), [true, false, false, false, false, false, false]);
    });

    it('own: own keys only, what a prototype holds is never seen', () => {
      const parsed = JSON.parse('{"type":"join","__proto__":{"admin":true}}') as Record<string, unknown>;
      assert.equal(own(parsed, 'type'), 'join');
      assert.equal(own(parsed, 'admin'), undefined);
      assert.equal(own(parsed, 'toString'), undefined);
      assert.equal(own(parsed, 'constructor'), undefined);
      assert.deepEqual(own(parsed, '__proto__'), { admin: true }, 'an own "__proto__" key is plain data');
    });
  });
});
