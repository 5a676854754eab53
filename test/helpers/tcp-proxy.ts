/** A TCP proxy for tests: in front of a server, it cuts, freezes or re-targets clients' links. */
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';

interface Link {
  client: Socket;
  upstream: Socket;
  frozen: boolean;
  muted?: boolean;
  /** The client's bytes kept back, in order, instead of forwarded (hold()). */
  held?: Buffer[];
  /** Its client side is gone; the server side stays open until released or closed. */
  orphaned?: boolean;
}

/** A TCP proxy in front of a port that the test can cut (both ways at once) or freeze (silent, still open). */
export class TcpProxy {
  private readonly links = new Set<Link>();
  /** Server sides kept open after their client side was dropped (keepServersOf), with what they hold. */
  private readonly orphans = new Set<Link>();
  /** Bytes the servers sent on links whose clients were dropped: the answers to what release() delivered. */
  lateAnswers = 0;
  private constructor(
    private readonly server: Server,
    /** Where new links go; change it to move clients to another server (existing links stay). */
    public targetPort: number,
  ) {}

  static async start(targetPort: number): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server, targetPort);
    server.on('connection', (client) => proxy.accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as { port: number }).port}/`;
  }

  private accept(client: Socket): void {
    const upstream = tcpConnect(this.targetPort, '127.0.0.1');
    const link: Link = { client, upstream, frozen: false };
    this.links.add(link);
    client.on('data', (chunk) => link.frozen || (link.held ? link.held.push(chunk) : upstream.write(chunk)));
    upstream.on('data', (chunk) => {
      if (link.orphaned) this.lateAnswers += chunk.length;
      else if (!(link.frozen || link.muted || link.held)) client.write(chunk);
    });
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('close', () => {
      this.links.delete(link);
      if (link.orphaned) this.orphans.add(link);
      else upstream.destroy();
    });
    // A frozen link stays open towards the client however the server ends it: silence only.
    upstream.on('close', () => link.frozen || client.destroy());
  }

  /** Drops every current link at once, like a network failure; new links pass. */
  cut(): void {
    for (const { client, upstream } of this.links) {
      client.destroy();
      upstream.destroy();
    }
  }

  /** Stops carrying bytes on every current link, without closing them; new links pass. */
  freeze(): void {
    for (const link of this.links) link.frozen = true;
  }

  /**
   * Stops carrying the server's bytes to clients on every current link, while the clients'
   * bytes still pass: a publish written now reaches the server, its ack never comes back. Then
   * cut() drops the link between the two (issue #22).
   */
  muteReplies(): void {
    for (const link of this.links) link.muted = true;
  }

  /**
   * Keeps the clients' bytes on every current link back, in order, and drops the server's: what a
   * client writes now is in flight, neither delivered nor lost yet (issue #22).
   */
  hold(): void {
    for (const link of this.links) link.held ??= [];
  }

  /**
   * Drops the client side of every held link, as a network failure would, while its server side
   * stays open with the held bytes: a copy still on its way that release() delivers late.
   */
  dropClientsOfHeld(): void {
    for (const link of this.links) {
      if (!link.held) continue;
      link.orphaned = true;
      link.client.destroy();
    }
  }

  /** Delivers the held bytes of the links whose clients were dropped, late, to their servers. */
  release(): void {
    for (const link of this.orphans) {
      for (const chunk of link.held ?? []) link.upstream.write(chunk);
      link.held = [];
    }
  }

  get linkCount(): number {
    return this.links.size;
  }

  async close(): Promise<void> {
    this.cut();
    for (const link of this.orphans) link.upstream.destroy();
    this.orphans.clear();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

