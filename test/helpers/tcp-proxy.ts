/** A TCP proxy for tests: in front of a server, it cuts, freezes or re-targets clients' links. */
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';

/** A TCP proxy in front of a port that the test can cut (both ways at once) or freeze (silent, still open). */
export class TcpProxy {
  private readonly links = new Set<{ client: Socket; upstream: Socket; frozen: boolean; muted?: boolean }>();
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
    const link: { client: Socket; upstream: Socket; frozen: boolean; muted?: boolean } = { client, upstream, frozen: false };
    this.links.add(link);
    client.on('data', (chunk) => link.frozen || upstream.write(chunk));
    upstream.on('data', (chunk) => link.frozen || link.muted || client.write(chunk));
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('close', () => {
      upstream.destroy();
      this.links.delete(link);
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

  get linkCount(): number {
    return this.links.size;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

