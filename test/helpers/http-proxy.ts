/**
 * A real HTTP reverse proxy for tests, in front of one or more Plaza servers, that treats
 * WebSockets the ways networks do (issue #21): it passes them, refuses the upgrade (403), strips
 * `Upgrade` so the server answers a plain GET, or accepts the upgrade and then drops every frame
 * both ways while the socket stays open. Plain HTTP (pages, event streams, POSTs) always passes,
 * streamed as it comes, each request to a target picked at random (a load balancer without
 * sticky sessions). The mode can change while clients run, and cut() drops every current link.
 */
import { Agent, createServer, request, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';

export type UpgradeMode = 'pass' | 'refuse' | 'strip' | 'eat';

export class HttpProxy {
  /** What happens to a WebSocket upgrade from now on (links already upgraded keep theirs). */
  upgrades: UpgradeMode;
  /** Upgrade requests seen, in every mode; and plain HTTP requests. */
  upgradeAttempts = 0;
  requests = 0;
  private readonly sockets = new Set<Socket>();
  private readonly agent = new Agent({ keepAlive: true });

  private constructor(
    private readonly server: Server,
    /** Ports of the servers behind; each request and upgrade goes to one at random. */
    public targets: number[],
    upgrades: UpgradeMode,
    private readonly random: () => number,
  ) {
    this.upgrades = upgrades;
  }

  static async start(targets: number | number[], options: { upgrades?: UpgradeMode; random?: () => number } = {}): Promise<HttpProxy> {
    const server = createServer();
    const proxy = new HttpProxy(server, ([] as number[]).concat(targets), options.upgrades ?? 'pass', options.random ?? Math.random);
    server.on('connection', (socket) => proxy.track(socket));
    server.on('request', (req, res) => {
      proxy.requests++;
      const upstream = request(
        { host: '127.0.0.1', port: proxy.pick(), method: req.method, path: req.url, headers: req.headers, agent: proxy.agent },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          // Event streams must pass event by event: flush every chunk as it comes.
          res.flushHeaders();
          answer.pipe(res);
          answer.on('error', () => res.destroy());
        },
      );
      upstream.on('socket', (socket) => proxy.track(socket));
      upstream.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
      res.on('close', () => upstream.destroy());
      req.pipe(upstream);
    });
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => proxy.upgrade(req, socket, head));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  /** The proxy's address as a page or Plaza's client would use it. */
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}/`;
  }

  /** One target only, as a TcpProxy's: where new requests and upgrades go. */
  get targetPort(): number {
    return this.targets[0]!;
  }

  set targetPort(port: number) {
    this.targets = [port];
  }

  private pick(): number {
    return this.targets[Math.floor(this.random() * this.targets.length)]!;
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => this.sockets.delete(socket));
  }

  private upgrade(req: IncomingMessage, client: Socket, head: Buffer): void {
    this.upgradeAttempts++;
    const mode = this.upgrades;
    if (mode === 'refuse') {
      client.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 26\r\nConnection: close\r\n\r\nWebSockets are not allowed');
      return;
    }
    const upstream = connect(this.pick(), '127.0.0.1');
    this.track(upstream);
    const drop = /^(upgrade|connection|sec-websocket-.*)$/i;
    const lines = [`${req.method} ${req.url} HTTP/1.1`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      if (mode === 'strip' && drop.test(req.rawHeaders[i]!)) continue;
      lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    }
    if (mode === 'strip') lines.push('Connection: close');
    upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length) upstream.write(head);
    let answered = false;
    let seen = '';
    upstream.on('data', (chunk: Buffer) => {
      if (mode !== 'eat' || !answered) {
        if (mode === 'eat') {
          // Pass the handshake's answer, then nothing: the link looks open and carries no frame.
          seen += chunk.toString('latin1');
          const end = seen.indexOf('\r\n\r\n');
          if (end >= 0) {
            answered = true;
            client.write(chunk.subarray(0, chunk.length - (seen.length - end - 4)));
            return;
          }
        }
        client.write(chunk);
      }
    });
    client.on('data', (chunk: Buffer) => mode === 'eat' || upstream.write(chunk));
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
  }

  /** Drops every current link (pages, streams, POSTs, WebSockets) at once, like a network failure. */
  cut(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    this.agent.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
