/**
 * What the door knows of a client it let in without reading its address: no credentials, and a
 * socket to read the address from when something first asks. Reading it is a getpeername(2)
 * call and about 5 µs of a 40 µs handshake, which bare ws never spends; the door reads it at
 * once whenever a check or anything after the close may need it (door.ts), since a closed
 * socket can no longer tell it. Only a side that pins its sessions' addresses when something
 * starts to read them later (Side.keepAddresses: the WebSocket side) lets clients in this way.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { peerAddress } from '../access/client-address.js';
import type { Admission } from './context.js';

export class LateAddress implements Admission {
  readonly grant = undefined;
  readonly isOperator = false;
  private address: string | undefined;

  constructor(private readonly socket: Duplex) {}

  get ip(): string {
    return (this.address ??= peerAddress(this.socket as Socket));
  }
}
