/**
 * Session ids (12 base64url characters from 9 random bytes) for new connections. crypto's
 * randomBytes costs a few microseconds per call, a fair part of a handshake, so the bytes are drawn
 * for many ids at once and handed out 9 at a time; each id is still 72 bits from the CSPRNG.
 */
import { randomBytes } from 'node:crypto';

const ID_BYTES = 9;
/** Ids drawn per call to randomBytes. */
const BATCH = 512;

export class SessionIds {
  private pool = Buffer.alloc(0);
  private at = 0;

  next(): string {
    if (this.at >= this.pool.length) {
      this.pool = randomBytes(ID_BYTES * BATCH);
      this.at = 0;
    }
    const id = this.pool.toString('base64url', this.at, this.at + ID_BYTES);
    // Used bytes are overwritten, so no id can be read back from the pool later.
    this.pool.fill(0, this.at, this.at + ID_BYTES);
    this.at += ID_BYTES;
    return id;
  }
}
