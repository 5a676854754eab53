/**
 * The chat page, on plaza.v1 (`rooms: true`): the room is the URL hash (`/#team`, default
 * `lobby`), the recent conversation loads on arrival, the people online are listed (one entry
 * per connection: a person with two tabs shows twice), and after a reconnect the client catches
 * up without duplicates. A message is published as its plain text, so plain WebSocket clients
 * (wscat) in the server's default room read it as-is and their text shows here from "anonymous".
 * Peer text reaches the DOM through textContent only. While someone types, the others see
 * "… is typing": an ephemeral publish (issue #22, item 8), at most one per TYPING_EVERY per page,
 * shown for TYPING_SHOWN or until that person's message arrives; never kept in history.
 *
 * The page also works opened from disk (file:): it then talks to ws://localhost:8080, or to the
 * server named by `?server=` or `#server=`. A sign-in token comes as `#token=…`; it is taken out
 * of the address bar at once (history.replaceState), so it stays out of history and bookmarks,
 * and kept for this tab only (sessionStorage) so a reload still works. With a token the server
 * names this page after the token (its `name` claim, or `sub`), whatever the page asks for: the
 * name field then shows that name, read-only, and the page labels its own messages with it.
 */
import { connect, type EphemeralMeta, type Member, type MessageMeta, type PlazaClient, type PlazaError, type Room, type Status, type UnrecoveredReason } from '../src/client/index.js';

const DEFAULT_ROOM = 'lobby';
const MAX_NAME = 64;
const MAX_TEXT = 2000;
/** Recent messages shown on arrival in a room. */
const HISTORY = 50;
/** Messages kept on screen; older ones are removed so a long session stays light. */
const MAX_SHOWN = 500;
/** Publishes kept while offline; the client rejects older ones with 'queue_full'. */
const MAX_QUEUE = 100;
/** Session ids of this tab kept across reloads, so its own messages in history show as its own. */
const MAX_SESSIONS = 20;
/** A page sends "typing" at most this often while its person types (ms): a throttle, not a stream per key. */
const TYPING_EVERY = 2000;
/** "… is typing" stays this long after the last signal (ms), unless that person's message comes first. */
const TYPING_SHOWN = 4500;
/** People listed as typing at once; more are counted, not named. */
const MAX_TYPERS = 3;
/** Typing signals kept at once (one per connection); older ones go first. */
const MAX_TYPING = 100;
const NAME_KEY = 'plaza.name';
const SESSIONS_KEY = 'plaza.sessions';
const TOKEN_KEY = 'plaza.token';
const SERVER_KEY = 'plaza.server';
/** Where a page that was not served by Plaza (opened from disk) looks for it. */
const LOCAL_SERVER = 'ws://localhost:8080';
/** How to start a server and how to mint a token, as the page tells people. */
const START_COMMAND = 'node dist/server.js';
const TOKEN_COMMAND = 'node dist/server.js token --sub your-name';

const STATUS_TEXT: Record<Status, string> = {
  connecting: 'Connecting…',
  open: 'Connected',
  reconnecting: 'Reconnecting…',
  closed: 'Disconnected (reload to retry)',
};

const RESET_TEXT: Record<UnrecoveredReason, string> = {
  epoch_changed: 'The server restarted without its history: messages sent while you were away are missing.',
  window_passed: 'You were away for longer than the server keeps history: some messages are missing.',
  offset_ahead: 'The server’s history changed: some messages may be missing.',
  no_position: 'The connection could not tell where you left this room: some messages may be missing.',
};

/** A message this page published and has not yet seen come back from the server. */
interface Outgoing {
  item: HTMLLIElement;
  text: string;
}

function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`chat page: #${id} is missing from index.html`);
  return element;
}

/** Web storage throws in some private modes and sandboxed frames; then nothing is remembered. */
function load(storage: () => Storage, key: string): string | null {
  try {
    return storage().getItem(key);
  } catch {
    return null;
  }
}

function save(storage: () => Storage, key: string, value: string): void {
  try {
    storage().setItem(key, value);
  } catch {
    // Not persisted; it still works for this visit.
  }
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return '';
  }
}

/**
 * Splits the hash into settings and the room: `#team`, `#token=…`, `#server=ws://…&token=…&team`.
 * Parts are separated by `&` (never part of a room name); `token=`, `server=` and `room=` parts
 * are settings, the first other part is the room.
 */
function readHash(): { room: string; token?: string; server?: string } {
  const found: { room: string; token?: string; server?: string } = { room: '' };
  for (const part of location.hash.slice(1).split('&')) {
    const match = /^(token|server|room)=(.*)$/.exec(part);
    if (match) found[match[1] as 'token' | 'server' | 'room'] = decode(match[2]!).trim();
    else if (!found.room) found.room = decode(part).trim();
  }
  return found;
}

/** The room named by the URL hash, e.g. `#team-7`; the default room without one. */
function roomFromHash(): string {
  return readHash().room || DEFAULT_ROOM;
}

/**
 * Takes a token and a server out of the hash into this tab's storage, and the address bar
 * without them into history, in place of the address that had them.
 */
function takeSettingsFromHash(): void {
  const { room, token, server } = readHash();
  if (token === undefined && server === undefined) return;
  if (token) save(() => sessionStorage, TOKEN_KEY, token);
  if (server) save(() => sessionStorage, SERVER_KEY, server);
  const bare = `${location.href.split('#')[0]}${room ? `#${encodeURIComponent(room)}` : ''}`;
  try {
    history.replaceState(history.state, '', bare);
  } catch {
    // Some sandboxed frames refuse it; the settings still work for this visit.
  }
}

/** The WebSocket URL to use, or undefined for the page's own server (served over http/https). */
function serverUrl(): string | undefined {
  const chosen = new URLSearchParams(location.search).get('server') || load(() => sessionStorage, SERVER_KEY);
  if (chosen) return chosen;
  return /^https?:$/.test(location.protocol) ? undefined : LOCAL_SERVER;
}

/** A paragraph of text and `code` pieces, built with textContent only. */
function sentence(...parts: Array<string | { code: string }>): HTMLParagraphElement {
  const p = document.createElement('p');
  for (const part of parts) {
    if (typeof part == 'string') p.append(part);
    else {
      const code = document.createElement('code');
      code.textContent = part.code;
      p.append(code);
    }
  }
  return p;
}

const sameDay = (a: Date, b: Date) => a.toDateString() == b.toDateString();

/** `14:02` today, `Yesterday 14:02`, `Nov 3, 14:02` earlier (with the year when it is not this one). */
function timeLabel(date: Date, now = new Date()): string {
  const clock = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (sameDay(date, now)) return clock;
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (sameDay(date, yesterday)) return `Yesterday ${clock}`;
  const year = date.getFullYear() == now.getFullYear() ? {} : { year: 'numeric' as const };
  return `${date.toLocaleDateString([], { month: 'short', day: 'numeric', ...year })}, ${clock}`;
}

/** What to show for a message's data: text as itself, binary (base64 from a plain client) by size, anything else as JSON. */
function textOf(data: unknown, meta: MessageMeta): string {
  if (meta.encoding == 'base64' && typeof data == 'string') {
    const bytes = Math.floor((data.length * 3) / 4) - (data.match(/=+$/)?.[0].length ?? 0);
    return `[${bytes} bytes of binary data]`;
  }
  const text = typeof data == 'string' ? data : (JSON.stringify(data) ?? '');
  return text.slice(0, MAX_TEXT);
}

function start(): void {
  const log = byId('log', HTMLOListElement);
  const status = byId('status', HTMLElement);
  const compose = byId('compose', HTMLFormElement);
  const roomForm = byId('room-form', HTMLFormElement);
  const roomInput = byId('room', HTMLInputElement);
  const nameInput = byId('name', HTMLInputElement);
  const messageInput = byId('message', HTMLInputElement);
  const memberList = byId('members', HTMLUListElement);
  const memberCount = byId('member-count', HTMLElement);
  const problem = byId('problem', HTMLElement);
  const typingLine = byId('typing', HTMLElement);

  takeSettingsFromHash();
  const token = load(() => sessionStorage, TOKEN_KEY) || undefined;
  /** The name the server gave this connection when a token decides it; until then, none. */
  let tokenName: string | undefined;
  if (token) {
    nameInput.value = '';
    nameInput.readOnly = true;
    nameInput.placeholder = 'from your sign-in token';
    nameInput.title = 'Your sign-in token decides your name';
  } else {
    nameInput.value = load(() => localStorage, NAME_KEY) ?? `guest-${Math.floor(1000 + Math.random() * 9000)}`;
  }
  const myName = () => tokenName ?? (nameInput.value.trim() || 'anonymous');

  /** This tab's session ids: one per connection, new after every reconnect and reload. */
  const sessions = new Set<string>((load(() => sessionStorage, SESSIONS_KEY) ?? '').split(' ').filter(Boolean));
  /** Sent and not yet seen back, oldest first. */
  let outgoing: Outgoing[] = [];
  /** Why the client stopped for good, when it was for want of a (fresh) sign-in token. */
  let signInProblem: string | undefined;
  let room: Room | undefined;

  function timeElement(ms: number): HTMLTimeElement {
    const time = document.createElement('time');
    const date = new Date(ms);
    time.dateTime = date.toISOString();
    time.title = date.toLocaleString();
    time.textContent = timeLabel(date);
    return time;
  }

  /** Appends to the log, keeping it bounded and following the conversation unless the reader scrolled up. */
  function append(item: HTMLLIElement, follow = false): HTMLLIElement {
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
    log.append(item);
    while (log.childElementCount > MAX_SHOWN) log.firstElementChild?.remove();
    if (atBottom || follow) log.scrollTop = log.scrollHeight;
    return item;
  }

  function render(name: string, text: string, time: number, mine: boolean): HTMLLIElement {
    const item = document.createElement('li');
    item.className = mine ? 'msg mine' : 'msg';
    const meta = document.createElement('div');
    meta.className = 'meta';
    const who = document.createElement('span');
    who.className = 'name';
    who.textContent = name;
    const body = document.createElement('p');
    body.className = 'text';
    body.textContent = text;
    meta.append(who, timeElement(time));
    item.append(meta, body);
    return append(item, mine);
  }

  /**
   * A line from the page itself (not a message): a reset, a refused room, the server's welcome.
   * It goes above our messages still on their way, which were written after what it is about
   * (a resent message must not read as lost in a restart announced below it).
   */
  function notice(text: string): HTMLLIElement {
    const item = document.createElement('li');
    item.className = 'notice';
    item.textContent = text;
    const waiting = outgoing.find((entry) => entry.item.isConnected);
    if (!waiting) return append(item, true);
    log.insertBefore(item, waiting.item);
    return item;
  }

  /** Says what stands in the way (no server, no token), or clears it with no arguments. */
  function showProblem(...paragraphs: HTMLParagraphElement[]): void {
    problem.replaceChildren(...paragraphs);
    problem.hidden = paragraphs.length == 0;
  }

  /** Marks a message of ours as stored by the server, at the server's time. */
  function delivered(entry: Outgoing, time: number): void {
    entry.item.classList.remove('pending', 'failed');
    entry.item.removeAttribute('title');
    entry.item.querySelector('time')?.replaceWith(timeElement(time));
  }

  /** Who is typing now, by session: their name and when the signal expires. */
  const typing = new Map<string, { name: string; until: number }>();
  let typingTimer: ReturnType<typeof setTimeout> | undefined;
  /** When this page last told the room its person is typing (0: not since the last send). */
  let lastTyping = 0;

  function showTyping(): void {
    clearTimeout(typingTimer);
    const now = Date.now();
    for (const [session, entry] of typing) if (entry.until <= now) typing.delete(session);
    const names = [...new Set([...typing.values()].map((entry) => entry.name))];
    typingLine.textContent =
      names.length == 0 ? '' :
      names.length == 1 ? `${names[0]} is typing…` :
      names.length <= MAX_TYPERS ? `${names.slice(0, -1).join(', ')} and ${names.at(-1)} are typing…` :
      `${names.length} people are typing…`;
    if (typing.size) typingTimer = setTimeout(showTyping, Math.min(...[...typing.values()].map((entry) => entry.until)) - now);
  }

  function onEphemeral(data: unknown, meta: EphemeralMeta): void {
    if (!(typeof data == 'object' && data && (data as { typing?: unknown }).typing === true)) return;
    if (sessions.has(meta.sender.session)) return;
    typing.delete(meta.sender.session);
    typing.set(meta.sender.session, { name: meta.sender.name.slice(0, MAX_NAME) || 'anonymous', until: Date.now() + TYPING_SHOWN });
    while (typing.size > MAX_TYPING) typing.delete(typing.keys().next().value ?? '');
    showTyping();
  }

  /** Tells the room, at most once per TYPING_EVERY, that this page's person is typing; lost signals do not matter. */
  function sayTyping(): void {
    if (!room?.active || !messageInput.value.trim() || Date.now() - lastTyping < TYPING_EVERY) return;
    lastTyping = Date.now();
    room.publish({ typing: true }, { ephemeral: true, excludeSelf: true }).catch(() => undefined);
  }

  function showMessage(data: unknown, meta: MessageMeta): void {
    // Their message is here: they are done typing it.
    if (typing.delete(meta.sender.session)) showTyping();
    const text = textOf(data, meta);
    const mine = sessions.has(meta.sender.session);
    // Our own message coming back (live, or recovered after a reconnect): confirm, don't repeat.
    const index = mine ? outgoing.findIndex((entry) => entry.text == text) : -1;
    const entry = outgoing[index];
    if (entry) {
      outgoing.splice(index, 1);
      return delivered(entry, meta.time);
    }
    render(meta.sender.name.slice(0, MAX_NAME) || 'anonymous', text, meta.time, mine);
  }

  function showMembers(members: readonly Member[], count: number): void {
    const items = [...members]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((member) => {
        const item = document.createElement('li');
        item.textContent = member.name.slice(0, MAX_NAME);
        if (member.session == client.session) {
          item.className = 'me';
          const you = document.createElement('span');
          you.className = 'you';
          you.textContent = ' (you)';
          item.append(you);
        }
        return item;
      });
    memberList.replaceChildren(...items);
    memberCount.textContent = String(count);
  }

  function attach(joined: Room): void {
    const name = joined.name;
    joined.on('message', showMessage);
    joined.on('ephemeral', onEphemeral);
    joined.on('presence', showMembers);
    joined.on('reset', ({ reason }) => notice(RESET_TEXT[reason] ?? RESET_TEXT.offset_ahead));
    joined.on('error', (error: PlazaError) => notice(`Cannot join #${name}: ${error.message}`));
    room = joined;
  }

  /** The server's --welcome text, shown at the top of each room's log (once, however often it comes). */
  let greeting: HTMLLIElement | undefined;
  function greet(text: string): void {
    if (greeting?.isConnected && greeting.textContent == text) return;
    greeting?.remove();
    greeting = document.createElement('li');
    greeting.className = 'notice welcome';
    greeting.textContent = text;
    log.prepend(greeting);
  }

  function enter(name: string): void {
    if (room?.name == name && room.active) return;
    room?.leave();
    outgoing = [];
    typing.clear();
    showTyping();
    log.replaceChildren(...(greeting ? [greeting] : []));
    showMembers([], 0);
    roomInput.value = name;
    document.title = `#${name} · Plaza chat`;
    attach(client.join(name, { history: HISTORY, presence: true }));
  }

  /**
   * Presence lists learn a name when its connection joins, so after a rename the room is left
   * and joined again, resuming where it was: others see the new name, this page repeats nothing.
   */
  function rejoin(): void {
    if (!room?.active) return;
    const { name, position } = room;
    room.leave();
    attach(client.join(name, { history: HISTORY, presence: true, ...(position && { since: position }) }));
  }

  function showStatus(value: Status): void {
    status.dataset.status = value;
    // Behind a proxy that lets no WebSocket through the page chats over server-sent events; say so.
    // (`client` is unset when connect() threw.)
    const transport = client?.transport ?? '';
    status.textContent = (value == 'closed' && signInProblem) || STATUS_TEXT[value] + (value == 'open' && transport == 'sse' ? ' (server-sent events)' : '');
    status.dataset.transport = transport;
    document.body.dataset.status = value;
  }

  const server = serverUrl();
  let client: PlazaClient;
  try {
    client = connect(server, { rooms: true, name: myName(), maxQueue: MAX_QUEUE, ...(token && { token }) });
  } catch (error) {
    showStatus('closed');
    showProblem(
      sentence(`This page cannot use the server address ${JSON.stringify(server ?? '')}: ${(error as Error).message.replace(/^Plaza: /, '')}`),
      sentence('Open it with ', { code: '?server=ws://host:port' }, ' at the end of its address, e.g. ', { code: `?server=${LOCAL_SERVER}` }, '.'),
    );
    return;
  }
  const where = client.url.replace(/\/$/, '');
  showStatus(client.status);
  client.on('status', showStatus);
  client.on('transport', () => showStatus(client.status));
  client.on('welcome', ({ session, name }) => {
    if (token) {
      tokenName = name;
      nameInput.value = name;
    }
    sessions.add(session);
    while (sessions.size > MAX_SESSIONS) sessions.delete(sessions.values().next().value ?? '');
    save(() => sessionStorage, SESSIONS_KEY, [...sessions].join(' '));
  });
  client.on('notice', greet);
  let everOpened = false;
  let lastReason = '';
  client.on('open', () => {
    everOpened = true;
    showProblem();
  });
  // Until the first connection opens, a failed attempt most likely means nothing listens there.
  client.on('close', ({ reason, willReconnect }) => {
    lastReason = reason;
    if (everOpened || !willReconnect) return;
    showProblem(
      sentence(`No Plaza server answers at ${where}. This page keeps trying.`),
      sentence('To start one, run ', { code: START_COMMAND }, ' in the Plaza folder (', { code: 'npm start' }, ' builds it first).'),
      sentence('Another server: add ', { code: '?server=ws://host:port' }, ' to this page’s address.'),
    );
  });
  client.on('error', (error) => {
    // The stored token is the one refused: forget it so that a new #token= is the next one.
    save(() => sessionStorage, TOKEN_KEY, '');
    signInProblem = error.code == 'token_expired' ? 'Sign-in expired' : 'Not signed in';
    const how = [
      sentence('Ask whoever runs it for a link that ends in ', { code: '#token=…' }, ', or mint a token on the server with ', { code: TOKEN_COMMAND }, '.'),
      sentence('Then open this page with ', { code: '#token=<the token>' }, ' at the end of its address.'),
    ];
    if (error.code == 'token_expired') showProblem(sentence('Your sign-in token has expired.'), ...how);
    else {
      const said = lastReason ? ` It said: “${lastReason}”.` : '';
      showProblem(sentence(`This server needs a sign-in token${token ? ', and refused the one this page had' : ''}.${said}`), ...how);
    }
  });
  enter(roomFromHash());

  addEventListener('hashchange', () => enter(roomFromHash()));
  roomForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = roomInput.value.trim();
    if (name) location.hash = encodeURIComponent(name);
  });
  nameInput.addEventListener('change', () => {
    if (token) return;
    nameInput.value = nameInput.value.trim().slice(0, MAX_NAME);
    if (!nameInput.value) return;
    save(() => localStorage, NAME_KEY, nameInput.value);
    client.setName(nameInput.value);
    rejoin();
  });

  messageInput.addEventListener('input', sayTyping);

  compose.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = messageInput.value.trim().slice(0, MAX_TEXT);
    if (!text || !room) return;
    const entry: Outgoing = { item: render(myName(), text, Date.now(), true), text };
    entry.item.classList.add('pending');
    outgoing.push(entry);
    if (outgoing.length > MAX_SHOWN) outgoing.shift();
    room.publish(text).then(
      (ack) => {
        // The message itself came back before its ack; this only covers an echo that did not.
        const index = outgoing.indexOf(entry);
        if (index >= 0) {
          outgoing.splice(index, 1);
          delivered(entry, Date.now());
          entry.item.dataset.offset = String(ack.offset);
        }
      },
      (error: PlazaError) => {
        if (!outgoing.includes(entry)) return;
        entry.item.classList.replace('pending', 'failed');
        entry.item.title = error.message;
        // A publish is re-sent across reconnects (issue #22): a rejection means it was not published.
        outgoing.splice(outgoing.indexOf(entry), 1);
      },
    );
    messageInput.value = '';
    messageInput.focus();
    // The next message's first key tells the room again at once.
    lastTyping = 0;
  });
}

start();
