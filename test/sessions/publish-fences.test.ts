/**
 * Publish fences (src/server/sessions/publish-fences.ts): which publish a connection must send
 * next to a room after one was refused `unavailable`, without sockets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { arrived, fenceOf, lowerFence, raiseFence } from '../../src/server/sessions/publish-fences.js';

describe('publish fences', () => {
  it('names the earliest refused publish even when a later one was refused first', () => {
    // Redis away: the later publish is refused at once, the earlier one (on its way) after it.
    const connection = {};
    const earlier = arrived(connection);
    const later = arrived(connection);
    raiseFence(connection, 'lobby', 'p.2', later);
    raiseFence(connection, 'lobby', 'p.1', earlier);
    assert.equal(fenceOf(connection, 'lobby'), 'p.1', 'the client re-sends p.1 first: a fence on p.2 would let p.2 land before it');
  });

  it('keeps the fence of an earlier publish when a later one is refused', () => {
    const connection = {};
    const earlier = arrived(connection);
    const later = arrived(connection);
    raiseFence(connection, 'lobby', 'p.1', earlier);
    raiseFence(connection, 'lobby', 'p.2', later);
    assert.equal(fenceOf(connection, 'lobby'), 'p.1');
  });

  it('keeps one fence per room and connection, and lowers it', () => {
    const one = {};
    const other = {};
    raiseFence(one, 'lobby', 'p.1', arrived(one));
    raiseFence(one, 'kitchen', 'p.2', arrived(one));
    assert.equal(fenceOf(other, 'lobby'), undefined);
    lowerFence(one, 'lobby');
    assert.equal(fenceOf(one, 'lobby'), undefined);
    assert.equal(fenceOf(one, 'kitchen'), 'p.2');
  });
});
