/**
 * Plaza's own client as users get it: dist/public/plaza.mjs (the bundle `npm run build` ships),
 * loaded in Node with `ws` as its WebSocket, for tests that must go the way a user goes.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import type * as Client from '../../src/client/index.js';
import { ROOT } from './plaza.js';

export type { Client };

let loaded: Promise<typeof Client> | undefined;

/** The built client module (built by `npm test` before the tests run). */
export function loadClient(): Promise<typeof Client> {
  return (loaded ??= import(pathToFileURL(join(ROOT, 'dist/public/plaza.mjs')).href) as Promise<typeof Client>);
}

/** connect() from dist/public/plaza.mjs with `ws` and the rooms protocol. */
export async function connectBuilt(url: string, options: Client.ClientOptions = {}): Promise<Client.PlazaClient> {
  const { connect } = await loadClient();
  return connect(url, { WebSocket, rooms: true, ...options });
}

/** Clients a test file opens, with fast reconnects, all closed by `closeAll()` (call it in `after`). */
export function clientPool(defaults: Client.ClientOptions = { minDelay: 20, maxDelay: 200 }) {
  const clients: Client.PlazaClient[] = [];
  return {
    async connect(url: string, options: Client.ClientOptions = {}): Promise<Client.PlazaClient> {
      const client = await connectBuilt(url, { ...defaults, ...options });
      clients.push(client);
      return client;
    },
    closeAll(): void {
      for (const client of clients.splice(0)) client.close();
    },
  };
}
