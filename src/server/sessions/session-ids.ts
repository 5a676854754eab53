/**
 * Session ids (12 base64url characters from 9 random bytes) for new connections. crypto's
 * randomBytes costs a few microseconds per call, a fair part of a handshake, so the bytes are drawn
 * for many ids at once and handed out 9 at a time; each id is still 72 bits from the CSPRNG. The
 * 12 characters are made here from a table rather than by Buffer#toString, whose call into C++
 * cost about as much as the rest of making a connection's object (issue 24).
 */
import { randomBytes } from 'node:crypto';

const ID_BYTES = 9;
/** Ids drawn per call to randomBytes. */
const BATCH = 512;
/** RFC 4648 §5: the URL- and filename-safe alphabet. */
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

export class SessionIds {
  private pool = Buffer.alloc(0);
  private at = 0;

  next(): string {
    if (this.at >= this.pool.length) {
      this.pool = randomBytes(ID_BYTES * BATCH);
      this.at = 0;
    }
    const pool = this.pool;
    let id = '';
    // Three bytes make four characters; nine make twelve, with no padding.
    for (let i = this.at, end = this.at + ID_BYTES; i < end; i += 3) {
      const bits = (pool[i]! << 16) | (pool[i + 1]! << 8) | pool[i + 2]!;
      id += BASE64URL[bits >> 18]! + BASE64URL[(bits >> 12) & 63]! + BASE64URL[(bits >> 6) & 63]! + BASE64URL[bits & 63]!;
    }
    // Used bytes are overwritten, so no id can be read back from the pool later (a loop: fill()
    // is a call into C++ that costs more than nine stores).
    for (let i = this.at, end = this.at + ID_BYTES; i < end; i++) pool[i] = 0;
    this.at += ID_BYTES;
    return id;
  }
}
