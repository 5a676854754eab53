/**
 * A real HTTP proxy for tests, in front of one Plaza or spread over several: what stands between
 * a browser and Plaza on networks where WebSockets do not pass. Plain HTTP requests (pages, SSE
 * streams, POSTs) are forwarded as they come, streamed both ways without buffering; WebSocket
 * upgrades get what `upgrades` says:
 *
 * - `pass`: tunnelled to the server like any proxy that allows them;
 * - `refuse`: answered `refuseStatus` (407 by default, as corporate proxies do) and closed;
 * - `strip`: forwarded as a plain request without `Upgrade` and `Connection` (the server answers
 *   a normal response, never 101);
 * - `eat`: the handshake passes (the client sees 101 and an open socket), then every byte after
 *   it is dropped both ways, as middleboxes that accept the upgrade and drop frames do.
 *
 * With several targets each request (and each upgrade) goes to one picked at random (seeded), as
 * a load balancer without sticky sessions does. `upgrades` and `targets` may change at any time;
 * links already open stay as they are. Used as a reverse proxy: clients connect to `url`.
 */
import { createServer, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { connect as tcpConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { seeded } from './workload.js';

export type UpgradeMode = 'pass' | 'refuse' | 'strip' | 'eat';

export interface HttpProxyOptions {
  /** Ports of the servers behind it (on 127.0.0.1). */
  targets: number[];
  /** @default 'pass' */
  upgrades?: UpgradeMode;
  /** The status of a refused upgrade. @default 407 */
  refuseStatus?: number;
  /** Seed of the random spread over targets. @default 1 */
  seed?: number;
}

/** Headers that belong to one hop, never forwarded (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate']);

function endToEnd(headers: IncomingMessage['headers']): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (!HOP_BY_HOP.has(name) && value !== undefined) out[name] = value;
  return out;
}

export class HttpProxy {
  upgrades: UpgradeMode;
  targets: number[];
  readonly refuseStatus: number;
  /** Requests and upgrades sent to each target port, for tests that check the spread. */
  readonly sent = new Map<number, number>();
  /** Upgrades seen, by what became of them. */
  readonly upgradesSeen: Record<UpgradeMode, number> = { pass: 0, refuse: 0, strip: 0, eat: 0 };
  private random: () => number;
  private readonly sockets = new Set<Duplex>();

  private constructor(private readonly server: Server, options: HttpProxyOptions) {
    this.targets = [...options.targets];
    this.upgrades = options.upgrades ?? 'pass';
    this.refuseStatus = options.refuseStatus ?? 407;
    this.random = seeded(options.seed ?? 1);
  }

  static async start(options: HttpProxyOptions): Promise<HttpProxy> {
    const server = createServer();
    const proxy = new HttpProxy(server, options);
    server.on('request', (req, res) => proxy.forward(req, res));
    server.on('upgrade', (req, socket, head) => proxy.upgrade(req, socket, head));
    server.on('connection', (socket) => proxy.track(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  /** `http://127.0.0.1:<port>`: the origin clients use. */
  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private track(socket: Duplex): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  }

  private pick(): number {
    if (this.targets.length === 0) throw new Error('the proxy has no target');
    const port = this.targets[Math.floor(this.random() * this.targets.length)]!;
    this.sent.set(port, (this.sent.get(port) ?? 0) + 1);
    return port;
  }

  private forward(req: IncomingMessage, res: ServerResponse, headers = endToEnd(req.headers)): void {
    const port = this.pick();
    const upstream = httpRequest({ host: '127.0.0.1', port, method: req.method, path: pathOf(req.url), headers, agent: false }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers));
      // Streamed as it comes: an event stream must not wait for its end.
      res.flushHeaders();
      answer.pipe(res);
      answer.on('error', () => res.destroy());
    });
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' }).end('bad gateway\n');
      else res.destroy();
    });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const mode = this.upgrades;
    this.upgradesSeen[mode]++;
    if (mode === 'refuse') {
      socket.end(`HTTP/1.1 ${this.refuseStatus} Refused By Proxy\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    if (mode === 'strip') {
      // The request goes on as plain HTTP: whatever the server answers, it is never a 101.
      const headers = endToEnd(req.headers);
      for (const name of Object.keys(headers)) if (name.startsWith('sec-websocket')) delete headers[name];
      const port = this.pick();
      const upstream = httpRequest({ host: '127.0.0.1', port, method: req.method, path: pathOf(req.url), headers, agent: false }, (answer) => {
        const lines = [`HTTP/1.1 ${answer.statusCode} ${answer.statusMessage ?? ''}`, 'Connection: close'];
        for (const [name, value] of Object.entries(endToEnd(answer.headers))) if (name !== 'content-length') lines.push(`${name}: ${String(value)}`);
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          const body = Buffer.concat(chunks);
          socket.end(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\nContent-Length: ${body.length}\r\n\r\n`), body]));
        });
      });
      upstream.on('error', () => socket.destroy());
      upstream.end();
      return;
    }
    const port = this.pick();
    const upstream = tcpConnect(port, '127.0.0.1');
    this.track(upstream);
    const lines = [`${req.method} ${req.url} HTTP/1.1`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (mode === 'pass') {
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    } else {
      // eat: only the server's handshake answer reaches the client; nothing after it, either way.
      let seen = Buffer.alloc(0);
      let through = false;
      upstream.on('data', (chunk: Buffer) => {
        if (through) return;
        seen = Buffer.concat([seen, chunk]);
        const end = seen.indexOf('\r\n\r\n');
        if (end === -1) return;
        through = true;
        socket.write(seen.subarray(0, end + 4));
      });
      socket.on('data', () => undefined);
    }
    const end = () => {
      socket.destroy();
      upstream.destroy();
    };
    socket.once('close', end);
    upstream.once('close', end);
  }

  /** Cuts every link now (both ways), as a proxy restart would. */
  cutAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  async close(): Promise<void> {
    this.cutAll();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The path and query of a request target, also when a client sent the absolute form (`GET http://host/x`). */
function pathOf(url: string | undefined): string {
  if (!url) return '/';
  if (url.startsWith('/')) return url;
  try {
    const parsed = new URL(url);
    return `${parsed.pathname}${parsed.search}`;
  } catch {
    return '/';
  }
}
