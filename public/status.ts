/**
 * The live status page. With Plaza's own client in rooms mode (plaza.v1 over the hub's own
 * WebSocket) it joins the reserved room `plaza:status` and draws each snapshot the server
 * publishes there once a second (src/server/http/status-feed.ts). The API key, when the page was opened with `?key=`, goes
 * on to the WebSocket URL: the server only lets operators into that room (unless --status). It
 * is taken out of the address bar at once (history.replaceState), as the chat page does with
 * `#token=`, so it stays out of the tab's history and of bookmarks.
 * Everything reaches the DOM through textContent and SVG attributes; nothing is parsed as HTML.
 */
import { connect, type Status } from '../src/client/index.js';
import type { StatusSnapshot } from '../src/shared/status-snapshot.js';

const ROOM = 'plaza:status';
/** The snapshots' sender; anything else said in the room is ignored. */
const SENDER = 'plaza';
/** Points per sparkline: one a second, so a minute. */
const POINTS = 60;
const SVG = 'http://www.w3.org/2000/svg';

const STATUS_TEXT: Record<Status, string> = {
  connecting: 'Connecting…',
  open: 'Live',
  reconnecting: 'Reconnecting…',
  closed: 'Disconnected (reload to retry)',
};

function byId<T extends Element>(id: string, type: abstract new () => T): T {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`status page: #${id} is missing from status.html`);
  return element;
}

function part<T extends Element>(card: Element, selector: string, type: abstract new () => T): T {
  const element = card.querySelector(selector);
  if (!(element instanceof type)) throw new Error(`status page: ${selector} is missing in #${card.id}`);
  return element;
}

const integer = new Intl.NumberFormat('en', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en', { maximumFractionDigits: 1 });

function bytes(value: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${decimal.format(value)} ${units[unit]}`;
}

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${m} min`;
  return m > 0 ? `${m} min ${s} s` : `${s} s`;
}

/** One number with its detail line and a sparkline of its last POINTS values. */
class Card {
  private readonly values: number[] = [];
  private readonly value: HTMLElement;
  private readonly detail: HTMLElement;
  private readonly area: SVGPolygonElement;
  private readonly line: SVGPolylineElement;

  constructor(id: string) {
    const card = byId(id, HTMLElement);
    this.value = part(card, '[data-value]', HTMLElement);
    this.detail = part(card, '[data-detail]', HTMLElement);
    const svg = part(card, '[data-spark]', SVGSVGElement);
    this.area = document.createElementNS(SVG, 'polygon');
    this.area.setAttribute('class', 'area');
    this.line = document.createElementNS(SVG, 'polyline');
    this.line.setAttribute('class', 'line');
    svg.append(this.area, this.line);
  }

  push(value: number, text: string, detail: string): void {
    this.values.push(Number.isFinite(value) ? value : 0);
    if (this.values.length > POINTS) this.values.shift();
    this.value.textContent = text;
    this.detail.textContent = detail;
    this.draw();
  }

  /**
   * Scaled to the largest value shown, so a quiet minute still has a shape, and stretched over
   * the width, so a page opened a few seconds ago already draws a line.
   */
  private draw(): void {
    const top = Math.max(...this.values, 1e-9);
    const step = 120 / Math.max(1, this.values.length - 1);
    const points = this.values.map((v, i) => `${(i * step).toFixed(1)},${(31 - (v / top) * 29).toFixed(1)}`);
    this.line.setAttribute('points', points.join(' '));
    this.area.setAttribute('points', points.length > 1 ? `0,32 ${points.join(' ')} 120,32` : '');
  }
}

/** A shape check: the page only draws what it can read, whatever someone sends to the room. */
function isSnapshot(value: unknown): value is StatusSnapshot {
  if (typeof value != 'object' || value === null) return false;
  const s = value as Partial<StatusSnapshot>;
  return (
    s.v === 1 && typeof s.time == 'number' && typeof s.connections?.total == 'number' && typeof s.rates?.published == 'number' &&
    typeof s.eventLoop?.p99 == 'number' && typeof s.memory?.rss == 'number' && Array.isArray(s.busiest) && typeof s.history?.entries == 'number'
  );
}

/** The `?key=` the page was opened with, removed from the address bar (and the tab's history entry). */
function takeKeyFromAddress(): string | null {
  const query = new URLSearchParams(location.search);
  const key = query.get('key');
  if (key === null) return null;
  query.delete('key');
  const rest = query.toString();
  try {
    history.replaceState(history.state, '', `${location.pathname}${rest ? `?${rest}` : ''}${location.hash}`);
  } catch {
    // Some sandboxed frames refuse it; the key still works for this visit.
  }
  return key;
}

function start(): void {
  const statusLine = byId('status', HTMLElement);
  const updated = byId('updated', HTMLElement);
  const notice = byId('notice', HTMLElement);
  const busiest = byId('busiest', HTMLTableSectionElement);
  const cards = {
    connections: new Card('card-connections'),
    published: new Card('card-published'),
    deliveries: new Card('card-deliveries'),
    received: new Card('card-in'),
    loop: new Card('card-loop'),
    memory: new Card('card-memory'),
  };
  const facts = {
    rooms: byId('fact-rooms', HTMLElement),
    history: byId('fact-history', HTMLElement),
    published: byId('fact-published', HTMLElement),
    drops: byId('fact-drops', HTMLElement),
    uptime: byId('fact-uptime', HTMLElement),
  };

  function show(s: StatusSnapshot): void {
    const c = s.connections;
    cards.connections.push(c.total, integer.format(c.total), `plain ${integer.format(c.plain)} · plaza.v1 ${integer.format(c.v1)} · SSE ${integer.format(c.sse ?? 0)}`);
    cards.published.push(s.rates.published, decimal.format(s.rates.published), `${integer.format(s.totals.published)} in all`);
    cards.deliveries.push(s.rates.deliveries, decimal.format(s.rates.deliveries), `${integer.format(s.totals.deliveries)} in all`);
    cards.received.push(s.rates.messagesIn, decimal.format(s.rates.messagesIn), `${bytes(s.rates.bytesIn)}/s`);
    cards.loop.push(s.eventLoop.p99, `${decimal.format(s.eventLoop.p99)} ms`, `p50 ${decimal.format(s.eventLoop.p50)} ms · max ${decimal.format(s.eventLoop.max)} ms`);
    cards.memory.push(s.memory.rss, bytes(s.memory.rss), `heap ${bytes(s.memory.heapUsed)}`);

    const rows = s.busiest.slice(0, 20).map((room) => {
      const row = document.createElement('tr');
      const name = document.createElement('td');
      name.textContent = String(room.room);
      const members = document.createElement('td');
      members.className = 'num';
      members.textContent = integer.format(Number(room.members));
      row.append(name, members);
      return row;
    });
    if (rows.length === 0) {
      const row = document.createElement('tr');
      const empty = document.createElement('td');
      empty.colSpan = 2;
      empty.className = 'empty';
      empty.textContent = 'No rooms with members';
      row.append(empty);
      rows.push(row);
    }
    busiest.replaceChildren(...rows);

    facts.rooms.textContent = integer.format(s.rooms);
    facts.history.textContent = `${integer.format(s.history.entries)} messages in ${integer.format(s.history.rooms)} rooms, ${bytes(s.history.bytes)}`;
    facts.published.textContent = integer.format(s.totals.published);
    facts.drops.textContent = integer.format(s.totals.slowConsumerDrops);
    facts.uptime.textContent = duration(s.uptime);
    updated.textContent = `Updated ${new Date(s.time).toLocaleTimeString()}`;
  }

  function warn(text: string): void {
    notice.textContent = text;
    notice.hidden = false;
  }

  const key = takeKeyFromAddress();
  const client = connect(key ? `/?key=${encodeURIComponent(key)}` : '/', { rooms: true, name: 'status page' });
  client.on('status', (status) => {
    statusLine.dataset.status = status;
    statusLine.textContent = STATUS_TEXT[status];
  });
  // The status room keeps no history (a snapshot is stale a second later), so the charts start
  // from the next snapshot; after a reconnect they go on from there.
  const room = client.join(ROOM);
  room.on('joined', () => {
    notice.hidden = true;
  });
  room.on('message', (data, meta) => {
    if (meta.sender.session === SENDER && isSnapshot(data)) show(data);
  });
  room.on('error', (error) => {
    warn(
      error.code === 'forbidden'
        ? 'This server shows its status only to operators: open this page as /status?key=<API key>.'
        : `The server refused: ${error.message}`,
    );
  });
}

start();
