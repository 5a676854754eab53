/**
 * node/ — a Plaza node without sockets: the hub, the broker over the Backplane it is given, the
 * outbox, history and its journal, metrics, the application's events, publishing as the server,
 * and start and close in one order (lifecycle.ts). Transports (the WebSocket side, later SSE) are
 * mounted beside it by plaza.ts and add their sessions to `sessions`; the node never knows them.
 * It may import rooms/, engine/, hooks/, webhooks/, app-events, src/shared, config and logger.
 *
 * This file: `createNode(options, parts)`.
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { ErrorCode } from '../../shared/protocol.js';
import { createAppEvents, type AppEvents } from '../app-events.js';
import { resolveOptions, type PlazaOptions } from '../config.js';
import { Hub } from '../engine/hub.js';
import { Metrics } from '../engine/metrics.js';
import { Outbox } from '../engine/outbox.js';
import type { RoomHooks } from '../hooks/room-hooks.js';
import { createLogger, type Logger } from '../logger.js';
import { BackplaneError, type Backplane } from '../rooms/backplane/types.js';
import { Broker, type Publisher } from '../rooms/broker.js';
import { HistoryStore } from '../rooms/history.js';
import { Journal } from '../rooms/journal.js';
import { PublishWindow } from '../rooms/publish-window.js';
import { createLocalNode } from '../rooms/local-node.js';
import { publishProblem, PublishError } from '../rooms/publish-check.js';
import { withReservedRooms } from '../rooms/reserved-rooms.js';
import { WebhookSender } from '../webhooks/sender.js';
import { backplaneFor, type BackplaneFactory } from './backplanes.js';
import { Lifecycle, type Closing } from './lifecycle.js';
import { SessionRegistry } from './sessions.js';

/** What the node is built from besides its options; each has a default. */
export interface NodeParts {
  /** Where log lines go. @default a logger on stdout built from logLevel and logFormat */
  logger?: Logger;
  /** Builds the rooms' backplane. @default Redis when the `redis` option is set, else local (backplanes.ts) */
  backplane?: BackplaneFactory;
  /** The application's room hooks (onJoin, onLeave, onPublish), already bounded. @default none */
  roomHooks?: RoomHooks;
  /** Called on every sweep (each SWEEP_INTERVAL), e.g. to look at readiness. @default nothing */
  onSweep?: () => void;
}

/** `running`: started and not yet closing. */
export type NodeState = 'new' | 'starting' | 'running' | 'closing' | 'closed';

/** What `publish()` resolves with. */
export interface PublishResult {
  room: string;
  offset: number;
  epoch: string;
  /** Members of this server that were handed the message. */
  delivered: number;
}

/** What `publish(room, data, { ephemeral: true })` resolves with: it has no place in the room. */
export interface EphemeralResult {
  room: string;
  ephemeral: true;
  /** Members of this server that were handed the message. */
  delivered: number;
}

/** How the server publishes: `ephemeral` goes to the members there now only (no offset, no history, no replay). */
export interface ServerPublishOptions {
  ephemeral?: boolean;
}

/** Why the node is not ready (the codes of /readyz this node knows about). */
export interface NodeProblem {
  code: 'data_dir_unwritable' | 'backplane_down';
  detail: string;
}

export interface PlazaNode {
  /** This node among a cluster's nodes, in its webhooks. */
  readonly id: string;
  readonly options: Readonly<PlazaOptions>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly hub: Hub;
  readonly outbox: Outbox;
  readonly history: HistoryStore;
  readonly broker: Broker;
  /** Its status is the cluster's health; the rest belongs to the broker. */
  readonly backplane: Backplane;
  /** Every client session, whatever side it came through. */
  readonly sessions: SessionRegistry;
  /** The application's `on(…)` events and the webhook sender behind them. */
  readonly app: AppEvents;
  readonly webhooks: WebhookSender | undefined;
  readonly state: NodeState;
  /**
   * Publishes `data` (any JSON value) to `room` as the server; rejects with a PublishError.
   * With `{ ephemeral: true }` it goes to the members of the moment only (issue #22, item 8).
   */
  publish(room: string, data: unknown, options: ServerPublishOptions & { ephemeral: true }): Promise<EphemeralResult>;
  publish(room: string, data: unknown, options?: ServerPublishOptions & { ephemeral?: false }): Promise<PublishResult>;
  publish(room: string, data: unknown, options?: ServerPublishOptions): Promise<PublishResult | EphemeralResult>;
  /** Writes this turn's history records (--data-dir): before any reply that reveals their offsets. */
  flushJournal(): void;
  /** Why this node is not ready; empty when it is. */
  problems(): NodeProblem[];
  /** Opens the journal, starts the sweep and the backplane; a failure leaves nothing running. */
  start(): Promise<void>;
  /** Undoes start() in reverse, waiting up to `graceMs` for queued webhooks. Idempotent. */
  close(closing?: Closing): Promise<void>;
}

/** The sender of messages the application publishes with publish(), as v1 clients see it in `from`. */
const SERVER_PUBLISHER: Publisher = { fromJson: '{"session":"server","name":"server"}' };

/** How often expired history is dropped and idle rooms forgotten: one timer per node. */
const SWEEP_INTERVAL = 5_000;

/** Fewer bytes than this per write are worth copying together; more go out as writev. */
const MAX_WRITE_BYTES = 256 * 1024;

export function createNode(options: Partial<PlazaOptions> = {}, parts: NodeParts = {}): PlazaNode {
  const config = resolveOptions(options);
  const logger = parts.logger ?? createLogger({ level: config.logLevel, format: config.logFormat });
  const id = randomBytes(6).toString('base64url');
  const webhooks = config.webhookUrl
    ? new WebhookSender(
        {
          url: config.webhookUrl,
          secret: config.webhookSecret,
          events: config.webhookEvents,
          maxQueueBytes: config.webhookMaxQueue,
          timeout: config.webhookTimeout,
          retries: config.webhookRetries,
          node: id,
        },
        logger,
      )
    : undefined;
  const app = createAppEvents(logger, webhooks);
  const sessions = new SessionRegistry();
  const metrics = new Metrics();
  let journal: Journal | undefined;
  const history = new HistoryStore(
    { size: config.historySize, ttl: config.historyTtl, maxBytes: config.historyMaxBytes, maxRooms: config.maxRooms },
    { append: (record) => journal?.append(record) },
  );
  function flushJournal(): void {
    if (journal && journal.pendingRecords > 0) journal.flush();
  }
  const outbox = new Outbox({
    maxBuffered: config.maxBuffered,
    maxWriteBytes: MAX_WRITE_BYTES,
    writeDelay: config.writeDelay,
    compressMinBytes: config.compressMinBytes,
    metrics,
    beforeFlush: flushJournal,
  });
  const hub = new Hub(outbox);
  const local = createLocalNode(hub, metrics, sessions);
  // This node's publish ids (issue #22): one server's window; in a cluster, what it published, for Redis outages.
  const publishIds = new PublishWindow({ size: config.publishIdWindow, ttl: config.publishIdTtl, maxEntries: config.publishIdMaxEntries });
  const makeBackplane = parts.backplane ?? backplaneFor(config);
  const backplane = withReservedRooms(makeBackplane({ local, history, options: config, logger, publishIds }), local, history);
  const broker = new Broker(hub, history, backplane, {
    maxRoomsPerConnection: config.maxRoomsPerConnection,
    maxPresence: config.maxPresence,
  }, metrics, { ...(parts.roomHooks && { hooks: parts.roomHooks }), observer: app.observer });

  let state: NodeState = 'new';
  const lifecycle = new Lifecycle((name, error) => logger.error(`closing ${name} failed`, { error: String(error) }));
  // Registered in start order; they close in reverse: the backplane first, queued webhooks last.
  lifecycle.add({ name: 'webhooks', close: ({ graceMs }) => webhooks?.close(graceMs) });
  if (config.dataDir) {
    lifecycle.add({
      name: 'journal',
      start() {
        const opened = Journal.open({ dir: resolve(config.dataDir), maxBytes: config.dataMaxBytes, retainMs: config.historyTtl });
        const now = Date.now();
        for (const record of opened.records) {
          history.restore(record, now);
          // The window survives a restart with the journal: a retry after it is still answered once.
          publishIds.landed(record.room, record.publishId, record);
        }
        journal = opened.journal;
        if (opened.skipped > 0) logger.warn('skipped unreadable history records', { skipped: opened.skipped, dir: config.dataDir });
        logger.info('history restored', { records: opened.records.length, rooms: history.roomCount, dir: config.dataDir });
      },
      close: () => journal?.close(),
    });
  }
  let sweepTimer: NodeJS.Timeout | undefined;
  lifecycle.add({
    name: 'sweep',
    start() {
      sweepTimer = setInterval(() => {
        history.sweep(Date.now());
        publishIds.sweep();
        // Looked at on the sweep too, so a failing disk reaches the log even if nobody probes.
        parts.onSweep?.();
      }, SWEEP_INTERVAL);
      sweepTimer.unref();
    },
    close: () => clearInterval(sweepTimer),
  });
  lifecycle.add({ name: 'backplane', start: () => backplane.start(), close: () => backplane.close() });

  async function start(): Promise<void> {
    if (state !== 'new') throw new Error(`start() called on a node that is ${state}; create a new one instead`);
    state = 'starting';
    try {
      await lifecycle.start();
    } catch (error) {
      state = 'closed';
      throw error;
    }
    if (state === 'starting') state = 'running';
  }

  async function close(closing: Closing = { graceMs: config.shutdownTimeout }): Promise<void> {
    if (state === 'closed') return;
    if (state !== 'closing') state = 'closing';
    await lifecycle.close(closing);
    state = 'closed';
  }

  async function publish(room: string, data: unknown, options: ServerPublishOptions = {}): Promise<PublishResult | EphemeralResult> {
    if (state !== 'running') throw new PublishError(ErrorCode.Unavailable, `this Plaza node is ${state}: publish() works after start() and before close()`);
    if (options === null || typeof options !== 'object' || (options.ephemeral !== undefined && typeof options.ephemeral !== 'boolean')) {
      throw new PublishError(ErrorCode.BadRequest, 'publish() options must be an object like { ephemeral: true }');
    }
    const problem = publishProblem(room, data, config);
    if (problem) throw problem;
    try {
      if (options.ephemeral) {
        const delivered = await broker.publishEphemeral(room, { kind: 'json', data }, SERVER_PUBLISHER);
        return { room, ephemeral: true, delivered };
      }
      const published = await broker.publish(room, { kind: 'json', data }, SERVER_PUBLISHER);
      // Written ahead: the offset this reveals is on disk first (--data-dir), as for every reply.
      flushJournal();
      return { room, offset: published.offset, epoch: published.epoch, delivered: published.delivered };
    } catch (error) {
      if (error instanceof BackplaneError) throw new PublishError(error.code, error.message);
      throw error;
    }
  }

  function problems(): NodeProblem[] {
    const found: NodeProblem[] = [];
    if (journal && !journal.healthy) {
      found.push({ code: 'data_dir_unwritable', detail: `history files in ${config.dataDir} cannot be written: ${journal.lastError}` });
    }
    const status = backplane.status;
    if (!status.up) found.push({ code: 'backplane_down', detail: status.reason ?? 'the cluster backplane is down' });
    return found;
  }

  return {
    id, options: config, logger, metrics, hub, outbox, history, broker, backplane, sessions, app, webhooks,
    get state() {
      return state;
    },
    // One implementation behind the two overloads: the options decide which result it is.
    publish: publish as PlazaNode['publish'], flushJournal, problems, start, close,
  };
}
