/**
 * The door lets a plain client in without reading its address (a getpeername(2) call) while
 * nothing needs it (sessions/late-address.ts, decided by sessions/door.ts). What may read it once the socket is closed must
 * still find the real one: the application's client events, whenever their listener was added,
 * and the room hooks.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { createPlaza, type Plaza } from '../../src/server/plaza.js';
import { until } from '../helpers/wait.mjs';

/** A plain client from `localAddress` (127.0.0.x are all loopback on Linux), open. */
async function plainFrom(plaza: Plaza, localAddress: string): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${plaza.port}/`, { localAddress });
  ws.on('error', () => {});
  await once(ws, 'open');
  return ws;
}

async function closed(ws: WebSocket): Promise<void> {
  ws.close();
  await once(ws, 'close');
}

describe('the address of a client let in without reading it', () => {
  it('is the real one for a disconnect listener added while the client was connected, and for one added before', async () => {
    const plaza = createPlaza({ port: 0, host: '127.0.0.1', logLevel: 'silent' });
    await plaza.start();
    try {
      const early = await plainFrom(plaza, '127.0.0.2');
      const seen: string[] = [];
      plaza.on('disconnect', ({ client }) => void seen.push(client.address));
      const late = await plainFrom(plaza, '127.0.0.3');
      await closed(early);
      await closed(late);
      await until(() => seen.length === 2, 3000, 'two disconnect events');
      assert.deepEqual(seen.sort(), ['127.0.0.2', '127.0.0.3']);
    } finally {
      await plaza.close();
    }
  });

  it('is the real one in onLeave when the client leaves by disconnecting', async () => {
    const left: string[] = [];
    const plaza = createPlaza({ port: 0, host: '127.0.0.1', logLevel: 'silent', onLeave: ({ client }) => void left.push(client.address) });
    await plaza.start();
    try {
      await closed(await plainFrom(plaza, '127.0.0.4'));
      await until(() => left.length === 1, 3000, 'the onLeave call');
      assert.deepEqual(left, ['127.0.0.4']);
    } finally {
      await plaza.close();
    }
  });
});
