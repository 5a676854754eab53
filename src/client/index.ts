/**
 * Plaza's embeddable client: a WebSocket that reconnects by itself, queues while offline and
 * emits typed events. Bundled as dist/public/plaza.mjs (this module) and dist/public/plaza.js
 * (the `Plaza` global, see browser.ts).
 *
 * ```ts
 * import { connect } from '/plaza.mjs';
 * const plaza = connect();            // the page's own origin
 * plaza.on('message', (data) => console.log(data));
 * plaza.send('hello');                // queued until open
 * ```
 */
export { connect, type ClientEvents, type PlazaClient } from './client.js';
export type { ClientOptions } from './options.js';
export type { CloseInfo, Data, SocketLike, Status, WebSocketConstructor } from './transport.js';
