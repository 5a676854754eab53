/**
 * plaza-realtime/react where no browser is: dist/react.js imported in Node (no window) and
 * rendered to HTML with react-dom/server, as a server-rendered page is. Nothing connects during
 * a render; the hooks show an empty room and 'connecting' until the page's own effects run, and
 * misuse throws errors that say what to do.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createElement, type ReactNode } from 'react';
import { renderToString } from 'react-dom/server';
import type * as Hooks from '../../src/react/index.js';
import type { RoomView } from '../../src/react/index.js';
import type { Plaza } from '../../src/server/plaza.js';
import { listening } from '../helpers/library.js';
import { ROOT } from '../helpers/plaza.js';

describe('plaza-realtime/react rendered on the server', () => {
  let hooks: typeof Hooks;
  let plaza: Plaza;
  let sockets = 0;
  /** A WebSocket class that counts what would be opened (nothing should be). */
  class Counting {
    constructor() {
      sockets++;
      throw new Error('a server render must not open a WebSocket');
    }
  }

  before(async () => {
    assert.equal(typeof (globalThis as { window?: unknown }).window, 'undefined');
    hooks = (await import(pathToFileURL(join(ROOT, 'dist/react.js')).href)) as typeof Hooks;
    plaza = await listening();
  });
  after(() => plaza?.close());

  const inProvider = (child: ReactNode) =>
    createElement(hooks.PlazaProvider, { url: plaza.url, options: { name: 'Ada', WebSocket: Counting as unknown as typeof WebSocket } }, child);

  it('renders an empty room and "connecting", and opens no connection', async () => {
    let view: RoomView<string> | undefined;
    function Chat() {
      view = hooks.useRoom<string>('lobby', { history: 10, presence: true });
      return createElement('p', { 'data-status': view.status }, `${view.messages.length} messages, ${view.memberCount} online`);
    }
    const html = renderToString(inProvider(createElement(Chat)));
    assert.equal(html, '<p data-status="connecting">0 messages, 0 online</p>');
    assert.equal(view!.joined, false);
    assert.equal(view!.reset, undefined);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(sockets, 0);
    assert.equal(plaza.connectionCount, 0);
    // Nothing holds the room in a server render: publishing says so instead of queueing forever.
    await assert.rejects(view!.publish('hello'), (error: Error & { code?: string }) => error.code == 'not_joined' && /mounted component/.test(error.message));
  });

  it('says what to do when a hook has no provider above it', () => {
    const Orphan = () => (hooks.useRoom('lobby'), null);
    assert.throws(() => renderToString(createElement(Orphan)), /needs a <PlazaProvider> above it/);
  });

  it('refuses an empty room name and a bad keep with a TypeError naming the option', () => {
    const Bad = ({ room, keep }: { room: string; keep?: number }) => (hooks.useRoom(room, { keep }), null);
    assert.throws(() => renderToString(inProvider(createElement(Bad, { room: '' }))), { name: 'TypeError', message: /room name/ });
    assert.throws(() => renderToString(inProvider(createElement(Bad, { room: 'lobby', keep: 0 }))), { name: 'TypeError', message: /keep must be/ });
  });

  it('refuses a client and a URL together', () => {
    const client = {} as Parameters<typeof hooks.PlazaProvider>[0]['client'];
    assert.throws(() => renderToString(createElement(hooks.PlazaProvider, { client, url: plaza.url })), { name: 'TypeError', message: /either client, or url and options/ });
  });
});
