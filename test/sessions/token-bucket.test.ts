/**
 * The token bucket behind message rates, error allowances and room creations
 * (src/server/sessions/token-bucket.ts), driven with explicit times.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TokenBucket } from '../../src/server/sessions/token-bucket.js';

/** How many of `tries` takes at time `now` succeed. */
const takes = (bucket: TokenBucket, tries: number, now: number) => Array.from({ length: tries }, () => bucket.take(now)).filter(Boolean).length;

describe('TokenBucket', () => {
  it('gives a full burst at once, then nothing until it refills', () => {
    const bucket = new TokenBucket(10, 5, 0);
    assert.equal(takes(bucket, 8, 0), 5);
  });

  it('refills at the rate, one token per 1000 / rate ms, never past the burst', () => {
    const bucket = new TokenBucket(10, 5, 0);
    takes(bucket, 5, 0);
    assert.equal(bucket.take(99), false, '0.99 of a token');
    assert.equal(bucket.take(100), true);
    assert.equal(takes(bucket, 10, 350), 2, '2.5 tokens came back in 250 ms');
    assert.equal(takes(bucket, 10, 100_000), 5, 'a long pause refills to the burst only');
  });

  it('keeps fractions: slow rates still come back', () => {
    const bucket = new TokenBucket(1 / 6, 1, 0);
    assert.equal(bucket.take(0), true);
    assert.equal(bucket.take(3_000), false, 'half a token');
    assert.equal(bucket.take(5_990), false);
    // Kept in floating point, the sixths add up to a hair under one at 6000 ms exactly.
    assert.equal(bucket.take(6_001), true);
  });

  it('adds nothing when the clock goes back', () => {
    const bucket = new TokenBucket(10, 1, 1_000);
    assert.equal(bucket.take(1_000), true);
    assert.equal(bucket.take(0), false);
    assert.equal(bucket.take(1_099), false, 'still counted from 1000');
    assert.equal(bucket.take(1_100), true);
  });
});
