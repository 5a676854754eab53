import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { WebSocket, type RawData } from 'ws';
import { CloseCode } from '../shared/protocol.js';
import type { PlazaOptions } from './config.js';
import { encodeFrame, Opcode } from './frame.js';
import type { Hub, Member, Outgoing, Room, WireProtocol } from './hub.js';
import type { Logger } from './logger.js';
import type { Outbox, OutboxEntry } from './outbox.js';

/** What every connection shares: the server's registry, outbox, options and log. */
export interface ConnectionContext {
  readonly hub: Hub;
  readonly outbox: Outbox;
  readonly logger: Logger;
  readonly options: PlazaOptions;
  /** The server's live connections; a connection removes itself when it closes. */
  readonly connections: Set<Connection>;
  /** The room plain WebSocket clients talk in. */
  readonly defaultRoom: string;
}

/** A plain client's message: the same bytes and the same frame type go out to everyone. */
class PlainMessage implements Outgoing {
  constructor(
    private readonly data: Buffer,
    private readonly isBinary: boolean,
  ) {}

  frameFor(_protocol: WireProtocol): Buffer {
    return encodeFrame(this.data, this.isBinary ? Opcode.Binary : Opcode.Text);
  }
}

/** One WebSocket client: reads its messages, hands them to the hub, and owns its outgoing queue. */
export class Connection implements Member, OutboxEntry {
  readonly id = randomBytes(9).toString('base64url');
  readonly rooms = new Set<Room>();
  pending: Buffer[] = [];
  pendingBytes = 0;
  private readonly openedAt = Date.now();
  private messagesIn = 0;
  private bytesIn = 0;
  private closeSent = false;

  constructor(
    private readonly context: ConnectionContext,
    readonly ws: WebSocket,
    /** The raw socket under `ws`: broadcast frames are written here directly, already framed. */
    readonly socket: Duplex,
    readonly protocol: WireProtocol,
    readonly remoteAddress: string,
  ) {
    context.connections.add(this);
    context.hub.join(this, context.defaultRoom);
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', (code) => this.onClose(code));
    // Without this listener one invalid frame would be an uncaught 'error' and kill the process;
    // ws has already answered the peer with the right close code (1002, 1007, 1009).
    ws.on('error', (error: Error & { code?: string }) => {
      context.logger.debug('connection error', { id: this.id, error: error.code ?? error.message });
    });
    context.logger.info('connection open', { id: this.id, protocol, remote: remoteAddress });
  }

  isWritable(): boolean {
    return this.ws.readyState === WebSocket.OPEN && !this.closeSent;
  }

  deliver(frame: Buffer): void {
    this.context.outbox.enqueue(this, frame);
  }

  onOverflow(): void {
    this.context.logger.warn('slow consumer dropped', { id: this.id, remote: this.remoteAddress });
    this.close(CloseCode.TryAgainLater, 'too slow: messages were piling up');
  }

  /** Sends what is queued, then the close frame. Safe to call more than once. */
  close(code: number, reason: string): void {
    if (this.closeSent) return;
    this.context.outbox.flush(this);
    this.closeSent = true;
    this.ws.close(code, reason);
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    // ws hands us a Buffer because binaryType is left at 'nodebuffer'.
    const bytes = data as Buffer;
    this.messagesIn++;
    this.bytesIn += bytes.length;
    try {
      const room = this.context.hub.room(this.context.defaultRoom);
      if (!room) return;
      const except = this.context.options.excludeSender ? this : undefined;
      this.context.hub.publish(room, new PlainMessage(bytes, isBinary), except);
    } catch (error) {
      // A bug while handling one message must cost only this connection, never the process.
      this.context.logger.error('message handler failed', { id: this.id, error: String(error) });
      this.close(CloseCode.InternalError, 'internal error');
    }
  }

  private onClose(code: number): void {
    this.context.hub.leaveAll(this);
    this.context.connections.delete(this);
    this.pending = [];
    this.pendingBytes = 0;
    this.context.logger.info('connection closed', {
      id: this.id,
      code,
      ms: Date.now() - this.openedAt,
      messagesIn: this.messagesIn,
      bytesIn: this.bytesIn,
    });
  }
}
