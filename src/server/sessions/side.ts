/**
 * A side: one transport by which clients reach a node (WebSocket today; an SSE stream with
 * POSTed requests is the next). plaza.ts makes every side from the same SideParts
 * (side-parts.ts, apart so that this public type pulls no internals into the package's types)
 * and mounts it on the HTTP server beside the node's routes; the node never knows which sides
 * there are. A side turns its frames into the requests of this folder (requests.ts,
 * commands.ts) and adds its sessions to the node's registry.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';

export interface Side {
  /** For logs: `websocket`, `sse`. */
  readonly name: string;
  /** Its open sessions. */
  readonly size: number;
  /**
   * Starts taking clients on `server`. `othersListen` is true while something besides Plaza
   * also listens there (Plaza attached to an application's server): what is not this side's is
   * then left to it instead of being answered.
   */
  attach(server: Server | HttpsServer, othersListen: () => boolean): void;
  /**
   * Says goodbye to its clients (a WebSocket gets 1001), waits up to `graceMs` for them to go,
   * cuts off the rest, and stops listening on the server. Idempotent.
   */
  detach(graceMs: number): Promise<void>;
  /** Reads every open session's address now, while its socket can still tell it (late-address.ts). */
  keepAddresses?(): void;
  /** Takes a plain HTTP request that is this side's (an SSE stream, a POSTed request); false if not. */
  handle?(request: IncomingMessage, response: ServerResponse): boolean;
}
