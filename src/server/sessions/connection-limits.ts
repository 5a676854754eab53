/** How many connections are open, in all and per address: the caps checked at the door. */
import type { PlazaOptions } from '../config.js';

/** Counts open connections in all and per IP; the upgrade checks it before ws does any work. */
export class ConnectionLimits {
  private total = 0;
  private readonly perIp = new Map<string, number>();
  /**
   * Connections are counted per address only when that count has a cap: without one, nothing
   * reads it, and a connection need not even read its address (a getpeername(2) call) for it.
   */
  readonly countsAddresses: boolean;

  constructor(private readonly options: Pick<PlazaOptions, 'maxConnections' | 'maxConnectionsPerIp'>) {
    this.countsAddresses = options.maxConnectionsPerIp > 0;
  }

  /** The HTTP status that refuses one more connection from `ip`, or 0 when it may come in. */
  refusal(ip: string | undefined): number {
    if (this.total >= this.options.maxConnections) return 503;
    const max = this.options.maxConnectionsPerIp;
    if (max > 0 && (this.perIp.get(ip!) ?? 0) >= max) return 429;
    return 0;
  }

  /** Addresses with at least one open connection: the map never holds any other. */
  get trackedAddresses(): number {
    return this.perIp.size;
  }

  /** One more connection; `ip` may be left out when `countsAddresses` is false. */
  add(ip: string | undefined): void {
    this.total++;
    if (!this.countsAddresses || ip === undefined) return;
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
  }

  /** One connection fewer: the same `ip` (or none) that add() was given. */
  remove(ip: string | undefined): void {
    this.total--;
    if (!this.countsAddresses || ip === undefined) return;
    const count = (this.perIp.get(ip) ?? 1) - 1;
    // Deleting at zero keeps the map bounded by the IPs connected right now.
    if (count <= 0) this.perIp.delete(ip);
    else this.perIp.set(ip, count);
  }
}
