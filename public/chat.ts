/**
 * The chat page. The wire is plain WebSocket: this page sends JSON text
 * `{"name", "text", "time", "id"}` and shows anything else (wscat, tutorial pages, binary) as raw
 * text from "anonymous". Peer text reaches the DOM through textContent only.
 */
import { connect, type Status } from '../src/client/index.js';

/** What this page sends. `id` lets the sender recognize its own echo. */
interface ChatMessage {
  name: string;
  text: string;
  time: number;
  id?: string;
}

const MAX_NAME = 32;
const MAX_TEXT = 2000;
/** Messages kept on screen; older ones are removed so a long session stays light. */
const MAX_SHOWN = 500;
/** Same as the client's queue bound, so the page knows which offline messages were dropped. */
const MAX_QUEUE = 100;
const NAME_KEY = 'plaza.name';

const STATUS_TEXT: Record<Status, string> = {
  connecting: 'Connecting…',
  open: 'Connected',
  reconnecting: 'Reconnecting…',
  closed: 'Disconnected (reload to retry)',
};

function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`chat page: #${id} is missing from index.html`);
  return element;
}

/** localStorage throws in some private modes and sandboxed frames; the name then lasts a visit. */
function remembered(): string | null {
  try {
    return localStorage.getItem(NAME_KEY);
  } catch {
    return null;
  }
}

function remember(name: string): void {
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    // Not persisted; the name still works for this visit.
  }
}

/** Date accepts ±8.64e15 ms; beyond that toISOString() throws. */
const isTime = (value: number): boolean => Math.abs(value) <= 8.64e15;

function isChatMessage(value: unknown): value is ChatMessage {
  if (typeof value != 'object' || value === null) return false;
  const { name, text, time } = value as Record<string, unknown>;
  return typeof name == 'string' && typeof text == 'string' && typeof time == 'number';
}

/** Turns any frame into something to show; never throws on hostile input. */
function parse(data: string | ArrayBuffer): ChatMessage {
  const time = Date.now();
  if (typeof data != 'string') return { name: 'anonymous', text: `[${data.byteLength} bytes of binary data]`, time };
  try {
    const value: unknown = JSON.parse(data);
    if (isChatMessage(value)) {
      return {
        name: value.name.trim().slice(0, MAX_NAME) || 'anonymous',
        text: value.text.slice(0, MAX_TEXT),
        // A sender's clock is its own business; only a time Date cannot hold is replaced.
        time: isTime(value.time) ? value.time : time,
        ...(typeof value.id == 'string' && { id: value.id }),
      };
    }
  } catch {
    // Not JSON: a plain WebSocket client typed it.
  }
  return { name: 'anonymous', text: data.slice(0, MAX_TEXT), time };
}

function newId(): string {
  return typeof crypto.randomUUID == 'function' ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
}

function start(): void {
  const log = byId('log', HTMLOListElement);
  const status = byId('status', HTMLElement);
  const form = byId('compose', HTMLFormElement);
  const nameInput = byId('name', HTMLInputElement);
  const messageInput = byId('message', HTMLInputElement);

  nameInput.value = remembered() ?? `guest-${Math.floor(1000 + Math.random() * 9000)}`;
  nameInput.addEventListener('change', () => {
    nameInput.value = nameInput.value.trim().slice(0, MAX_NAME);
    if (nameInput.value) remember(nameInput.value);
  });

  /** Ids this page sent; their echo from the server is not shown twice. Bounded like the log. */
  const sentIds = new Set<string>();
  /** Messages written while offline, in queue order, until the client flushes them. */
  let pending: HTMLElement[] = [];

  function render(message: ChatMessage, mine: boolean): HTMLLIElement {
    const item = document.createElement('li');
    item.className = mine ? 'msg mine' : 'msg';
    const meta = document.createElement('div');
    meta.className = 'meta';
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = message.name;
    const time = document.createElement('time');
    const date = new Date(message.time);
    time.dateTime = date.toISOString();
    time.textContent = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    const text = document.createElement('p');
    text.className = 'text';
    text.textContent = message.text;
    meta.append(name, time);
    item.append(meta, text);

    // Follow the conversation unless the reader has scrolled up to read older messages.
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
    log.append(item);
    while (log.childElementCount > MAX_SHOWN) log.firstElementChild?.remove();
    if (atBottom || mine) log.scrollTop = log.scrollHeight;
    return item;
  }

  function showStatus(value: Status): void {
    status.dataset.status = value;
    status.textContent = STATUS_TEXT[value];
  }

  const client = connect(undefined, { maxQueue: MAX_QUEUE });
  showStatus(client.status);
  client.on('status', showStatus);
  client.on('open', () => {
    // The client has just written its queue: everything shown as pending went out.
    for (const item of pending) item.classList.remove('pending');
    pending = [];
  });
  client.on('message', (data) => {
    const message = parse(data);
    if (message.id !== undefined && sentIds.delete(message.id)) return;
    render(message, false);
  });

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = messageInput.value.trim().slice(0, MAX_TEXT);
    if (!text) return;
    const id = newId();
    const message: ChatMessage = { name: nameInput.value.trim() || 'anonymous', text, time: Date.now(), id };
    sentIds.add(id);
    if (sentIds.size > MAX_SHOWN) sentIds.delete(sentIds.values().next().value ?? '');
    const state = client.status;
    client.send(JSON.stringify(message));
    const item = render(message, true);
    if (state == 'closed') item.classList.add('failed');
    else if (state != 'open') {
      item.classList.add('pending');
      pending.push(item);
      // The client drops its oldest queued message past MAX_QUEUE; say so on that message.
      if (pending.length > MAX_QUEUE) pending.shift()?.classList.replace('pending', 'failed');
    }
    messageInput.value = '';
    messageInput.focus();
  });
}

start();
