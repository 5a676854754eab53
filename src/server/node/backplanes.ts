/**
 * The Backplane a node is given, as a factory: the node builds its local fan-out and history
 * first and hands them over. Local (one process) unless the options name a Redis.
 */
import type { PlazaOptions } from '../config.js';
import type { Logger } from '../logger.js';
import { LocalBackplane } from '../rooms/backplane/local.js';
import { RedisBackplane } from '../rooms/backplane/redis/backplane.js';
import type { Backplane, LocalNode } from '../rooms/backplane/types.js';
import type { HistoryStore } from '../rooms/history.js';
import type { PublishWindow } from '../rooms/publish-window.js';

/** What a node hands its backplane factory. */
export interface BackplaneParts {
  /** This node's fan-out to its own members. */
  readonly local: LocalNode;
  readonly history: HistoryStore;
  readonly options: Readonly<PlazaOptions>;
  readonly logger: Logger;
  /** The node's publish ids (issue #22): the window of one server, a cluster node's own for Redis outages. */
  readonly publishIds?: PublishWindow;
}

export type BackplaneFactory = (parts: BackplaneParts) => Backplane;

/** One process: rooms, presence and history live here. */
export const localBackplane: BackplaneFactory = ({ local, history, publishIds }) => new LocalBackplane(local, history, undefined, publishIds);

/** A cluster through the Redis at `options.redis`. */
export const redisBackplane: BackplaneFactory = ({ local, history, options, logger, publishIds }) => {
  if (!options.redis) throw new TypeError('redisBackplane needs the redis option (a redis:// URL); or use localBackplane');
  return new RedisBackplane(
    {
      url: options.redis,
      historySize: options.historySize,
      historyTtl: options.historyTtl,
      presenceTtl: options.presenceTtl,
      maxInflight: options.redisMaxInflight,
      maxInflightBytes: options.redisMaxInflightBytes,
      publishIdWindow: options.publishIdWindow,
      publishIdTtl: options.publishIdTtl,
      ...(publishIds && { localIds: publishIds }),
    },
    local,
    history,
    logger,
  );
};

/** What the options ask for: Redis when `redis` is set, else local. */
export function backplaneFor(options: Readonly<PlazaOptions>): BackplaneFactory {
  return options.redis ? redisBackplane : localBackplane;
}
