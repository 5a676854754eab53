/**
 * The chat page, on plaza.v1 (`rooms: true`): the room is the URL hash (`/#team`, default
 * `lobby`), the recent conversation loads on arrival, the people online are listed (one entry
 * per connection: a person with two tabs shows twice), and after a reconnect the client catches
 * up without duplicates. A message is published as its plain text, so plain WebSocket clients
 * (wscat) in the server's default room read it as-is and their text shows here from "anonymous".
 * Peer text reaches the DOM through textContent only.
 */
import { connect, type Member, type MessageMeta, type PlazaError, type Room, type Status, type UnrecoveredReason } from '../src/client/index.js';

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
const NAME_KEY = 'plaza.name';
const SESSIONS_KEY = 'plaza.sessions';

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

/** The room named by the URL hash, e.g. `#team-7`; the default room without one. */
function roomFromHash(): string {
  try {
    return decodeURIComponent(location.hash.slice(1)).trim() || DEFAULT_ROOM;
  } catch {
    return DEFAULT_ROOM;
  }
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

  nameInput.value = load(() => localStorage, NAME_KEY) ?? `guest-${Math.floor(1000 + Math.random() * 9000)}`;
  const myName = () => nameInput.value.trim() || 'anonymous';

  /** This tab's session ids: one per connection, new after every reconnect and reload. */
  const sessions = new Set<string>((load(() => sessionStorage, SESSIONS_KEY) ?? '').split(' ').filter(Boolean));
  /** Sent and not yet seen back, oldest first. */
  let outgoing: Outgoing[] = [];
  let room: Room | undefined;

  function timeElement(ms: number): HTMLTimeElement {
    const time = document.createElement('time');
    const date = new Date(ms);
    time.dateTime = date.toISOString();
    time.textContent = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
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

  /** A line from the page itself (not a message): a reset, a refused room. */
  function notice(text: string): void {
    const item = document.createElement('li');
    item.className = 'notice';
    item.textContent = text;
    append(item, true);
  }

  /** Marks a message of ours as stored by the server, at the server's time. */
  function delivered(entry: Outgoing, time: number): void {
    entry.item.classList.remove('pending', 'failed');
    entry.item.removeAttribute('title');
    entry.item.querySelector('time')?.replaceWith(timeElement(time));
  }

  function showMessage(data: unknown, meta: MessageMeta): void {
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
    joined.on('presence', showMembers);
    joined.on('reset', ({ reason }) => notice(RESET_TEXT[reason] ?? RESET_TEXT.offset_ahead));
    joined.on('error', (error: PlazaError) => notice(`Cannot join #${name}: ${error.message}`));
    room = joined;
  }

  function enter(name: string): void {
    if (room?.name == name && room.active) return;
    room?.leave();
    outgoing = [];
    log.replaceChildren();
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
    status.textContent = STATUS_TEXT[value];
    document.body.dataset.status = value;
  }

  const client = connect(undefined, { rooms: true, name: myName(), maxQueue: MAX_QUEUE });
  showStatus(client.status);
  client.on('status', showStatus);
  client.on('welcome', ({ session }) => {
    sessions.add(session);
    while (sessions.size > MAX_SESSIONS) sessions.delete(sessions.values().next().value ?? '');
    save(() => sessionStorage, SESSIONS_KEY, [...sessions].join(' '));
  });
  enter(roomFromHash());

  addEventListener('hashchange', () => enter(roomFromHash()));
  roomForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = roomInput.value.trim();
    if (name) location.hash = encodeURIComponent(name);
  });
  nameInput.addEventListener('change', () => {
    nameInput.value = nameInput.value.trim().slice(0, MAX_NAME);
    if (!nameInput.value) return;
    save(() => localStorage, NAME_KEY, nameInput.value);
    client.setName(nameInput.value);
    rejoin();
  });

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
        // A message lost with the link may still have been stored: recovery may show it yet.
        if (error.code != 'disconnected') outgoing.splice(outgoing.indexOf(entry), 1);
      },
    );
    messageInput.value = '';
    messageInput.focus();
  });
}

start();
