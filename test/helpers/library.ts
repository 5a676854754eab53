/**
 * Fixtures for Plaza used as a library: a Plaza with hooks on port 0, Plaza's own client in
 * rooms mode, and small waits the hook, event and webhook tests share.
 */
import type { MessageMeta, Room } from '../../src/client/index.js';
import type { PlazaOptions } from '../../src/server/config.js';
import { createPlaza, type Plaza, type PlazaConfig, type PlazaDependencies } from '../../src/server/plaza.js';

/** The one rooms client of the tests (rooms-client.ts), for the files that start from here. */
export { rejection, roomsClient } from './rooms-client.js';

/** createPlaza(config) listening on 127.0.0.1, port 0, quiet unless PLAZA_TEST_LOG is set. */
export async function listening(config: PlazaConfig = {}, dependencies: PlazaDependencies = {}): Promise<Plaza> {
  const plaza = createPlaza({
    port: 0,
    host: '127.0.0.1',
    logLevel: (process.env.PLAZA_TEST_LOG as PlazaOptions['logLevel']) ?? 'silent',
    ...config,
  }, dependencies);
  await plaza.listen();
  return plaza;
}

/** Resolves once the room's join was answered; rejects with the join's error. */
export function joined(room: Room): Promise<void> {
  return new Promise((resolve, reject) => {
    const offJoined = room.on('joined', () => {
      offJoined();
      offError();
      resolve();
    });
    const offError = room.on('error', (error) => {
      offJoined();
      offError();
      reject(error);
    });
  });
}

/** Every message a room delivers, with its meta. */
export function messages(room: Room): Array<{ data: unknown; meta: MessageMeta }> {
  const seen: Array<{ data: unknown; meta: MessageMeta }> = [];
  room.on('message', (data, meta) => seen.push({ data, meta }));
  return seen;
}

/** A promise with its resolve, for hooks a test holds and releases. */
export function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}
