/**
 * A plaza.v1 server whose every reply the test scripts: for what a real Plaza never does
 * (repeat messages, stay silent, send garbage), so the client's handling of it can be seen.
 */
import { WebSocketServer, type WebSocket as ServerSocket } from 'ws';
import type { Welcome } from '../../src/client/index.js';

export type { ServerSocket };

export class ScriptedServer {
  readonly requests: Array<Record<string, any>> = [];
  readonly sockets: ServerSocket[] = [];
  private constructor(
    private readonly wss: WebSocketServer,
    private readonly script: (request: Record<string, any>, socket: ServerSocket) => void,
  ) {}

  static async start(script: (request: Record<string, any>, socket: ServerSocket) => void): Promise<ScriptedServer> {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => 'plaza.v1' });
    await new Promise((resolve) => wss.once('listening', resolve));
    const server = new ScriptedServer(wss, script);
    wss.on('connection', (socket) => {
      server.sockets.push(socket);
      socket.on('message', (data) => {
        const request = JSON.parse(String(data)) as Record<string, any>;
        server.requests.push(request);
        server.script(request, socket);
      });
    });
    return server;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.wss.address() as { port: number }).port}/`;
  }

  async close(): Promise<void> {
    for (const socket of this.wss.clients) socket.terminate();
    await new Promise((resolve) => this.wss.close(resolve));
  }
}

/** Sends an envelope (or text as it is) from the scripted server. */
export const send = (socket: ServerSocket, envelope: unknown) => socket.send(typeof envelope == 'string' ? envelope : JSON.stringify(envelope));

/** The welcome a real Plaza would answer `request` (a hello) with. */
export function welcomeFor(request: Record<string, any>, heartbeat = 0): Welcome {
  return {
    type: 'welcome',
    id: request.id,
    session: `s${request.id}`,
    name: request.name ?? 'anonymous',
    heartbeat,
    limits: { maxPayload: 65536, maxRoomsPerConnection: 100, maxRoomName: 128, historySize: 100, rate: { perSecond: 0, burst: 0 } },
  };
}

/** A room message at `offset` whose data is `m<offset>`. */
export function message(room: string, offset: number, epoch = 'E1'): Record<string, unknown> {
  return { type: 'message', room, id: `${epoch}:${offset}`, offset, epoch, time: 1_700_000_000_000 + offset, from: { session: 'peer', name: 'Peer' }, data: `m${offset}` };
}
