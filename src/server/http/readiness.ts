/**
 * Why the server is or is not ready. Anyone may ask /readyz, so the answer to anonymous callers
 * is a list of stable codes; the details (folder paths, the Redis host, the I/O error) go to
 * callers with the API key and to the log.
 */
import type { Logger } from '../logger.js';

/** Stable reason codes, listed in docs/operations.md. */
export type NotReadyCode = 'starting' | 'shutting_down' | 'data_dir_unwritable' | 'backplane_down' | 'auth_keys_unavailable';

export interface NotReady {
  code: NotReadyCode;
  /** For operators only: may name paths and hosts. */
  detail: string;
}

export interface Readiness {
  ready: boolean;
  reasons: NotReady[];
}

/**
 * Logs readiness when it changes, with the details, so they are in the log even if nobody with
 * the key asks; a probe asking every few seconds adds no lines.
 */
export class ReadinessLog {
  private last = '';

  constructor(private readonly logger: Logger) {}

  observe(readiness: Readiness): void {
    // Keyed by codes: a Redis error whose text changes with every reconnect attempt is one outage.
    const key = readiness.reasons.map((reason) => reason.code).join(',');
    if (key === this.last) return;
    const wasReady = this.last === '';
    this.last = key;
    if (!readiness.ready) {
      this.logger.warn('not ready', { reasons: key, details: readiness.reasons.map((r) => r.detail).join('; ') });
    } else if (!wasReady) {
      this.logger.info('ready again');
    }
  }
}

/** The server's state as a readiness source: ready only while it serves. */
export function stateProblems(state: string): NotReady[] {
  if (state === 'new' || state === 'starting') return [{ code: 'starting', detail: `server is ${state}` }];
  return state === 'closing' || state === 'closed' ? [{ code: 'shutting_down', detail: `server is ${state}` }] : [];
}

/** The identity provider's keys as a readiness source: not ready while they cannot be had. */
export function keyProblems(tokens: { problem(): string | undefined } | undefined): NotReady[] {
  const detail = tokens?.problem();
  return detail ? [{ code: 'auth_keys_unavailable', detail }] : [];
}

/** One readiness check from every source (server state, node, keys), logged when it changes. */
export function createReadiness(logger: Logger, sources: ReadonlyArray<() => readonly NotReady[]>): () => Readiness {
  const log = new ReadinessLog(logger);
  return () => {
    const reasons = sources.flatMap((source) => source());
    const result = { ready: reasons.length === 0, reasons };
    log.observe(result);
    return result;
  };
}
