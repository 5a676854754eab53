/**
 * The page test/react/hooks.test.ts drives in Chromium: a small chat on plaza-realtime/react,
 * bundled by the test with esbuild against dist/react.js and dist/public/plaza.mjs (what the
 * package ships) and a chosen React. `window.harness` mounts it (in StrictMode or not), switches
 * its room, unmounts it, and counts, from the page, the WebSockets made and still open, and the
 * listeners held on the client and its rooms.
 */
import { StrictMode, useState, version, type FormEvent } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { connect, type PlazaClient, type Room } from '../../src/client/index.js';
import { PlazaProvider, usePlazaStatus, useRoom } from '../../src/react/index.js';

export interface MountOptions {
  url: string;
  room: string;
  name: string;
  strict: boolean;
  /** Give the provider a client of the page's own, wrapped to count its listeners. */
  ownClient?: boolean;
}

export interface Harness {
  mount(options: MountOptions): void;
  setRoom(room: string): void;
  unmount(): void;
  /** WebSockets this page made, those not closed yet, and listeners held on the own client. */
  counts(): { sockets: number; open: number; listeners: number };
  closeOwnClient(): void;
  reactVersion: string;
}

declare global {
  interface Window {
    harness: Harness;
  }
}

const sockets: WebSocket[] = [];
/** The page's WebSocket, counting every one it makes. */
class CountingWebSocket extends WebSocket {
  constructor(url: string | URL, protocols?: string | string[]) {
    super(url, protocols);
    sockets.push(this);
  }
}

let listeners = 0;
/** `on` that counts subscriptions until their unsubscribe is called (once). */
function countingOn<F extends (...args: never[]) => () => void>(on: F): F {
  return ((...args: Parameters<F>) => {
    const off = on(...args);
    listeners++;
    let held = true;
    return () => {
      if (held) listeners--;
      held = false;
      off();
    };
  }) as F;
}

function counted(client: PlazaClient): PlazaClient {
  const room = (r: Room): Room => new Proxy(r, { get: (target, key) => (key == 'on' ? countingOn(target.on) : Reflect.get(target, key)) });
  return new Proxy(client, {
    get: (target, key) => (key == 'on' ? countingOn(target.on) : key == 'join' ? (...args: Parameters<PlazaClient['join']>) => room(target.join(...args)) : Reflect.get(target, key)),
  });
}

function Chat({ room }: { room: string }) {
  const view = useRoom<{ text: string }>(room, { history: 20, presence: true, keep: 50 });
  const { status } = usePlazaStatus();
  const [failed, setFailed] = useState('');
  const send = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const input = event.currentTarget.elements.namedItem('text') as HTMLInputElement;
    view.publish({ text: input.value }).then(
      (ack) => (document.body.dataset.lastAck = String(ack.offset)),
      (error: Error) => setFailed(error.message),
    );
    input.value = '';
  };
  return (
    <main>
      <p id="status" data-status={status} data-joined={String(view.joined)} data-room={view.room}>{status}</p>
      <p id="reset">{view.reset ? view.reset.reason : ''}</p>
      <p id="failed">{failed}</p>
      <ul id="members">{view.members.map((m) => <li key={m.session}>{m.name}</li>)}</ul>
      <ul id="messages">{view.messages.map((m) => <li key={m.meta.id}>{`${m.meta.sender.name}: ${m.data.text}`}</li>)}</ul>
      <form onSubmit={send}><input name="text" /></form>
    </main>
  );
}

let root: Root | undefined;
let current: MountOptions | undefined;
let ownClient: PlazaClient | undefined;

function render(): void {
  const { url, room, name, strict } = current!;
  const chat = ownClient ? (
    <PlazaProvider client={ownClient}><Chat room={room} /></PlazaProvider>
  ) : (
    <PlazaProvider url={url} options={{ name, WebSocket: CountingWebSocket, minDelay: 50, maxDelay: 300 }}><Chat room={room} /></PlazaProvider>
  );
  root!.render(strict ? <StrictMode>{chat}</StrictMode> : chat);
}

window.harness = {
  mount(options) {
    current = options;
    if (options.ownClient) ownClient = counted(connect(options.url, { rooms: true, name: options.name, WebSocket: CountingWebSocket }));
    root = createRoot(document.getElementById('app')!);
    render();
  },
  setRoom(room) {
    current = { ...current!, room };
    render();
  },
  unmount() {
    root?.unmount();
    root = undefined;
  },
  counts: () => ({ sockets: sockets.length, open: sockets.filter((s) => s.readyState != WebSocket.CLOSED).length, listeners }),
  closeOwnClient: () => ownClient?.close(),
  reactVersion: version,
};
