/** How many connections are open, in all and per address: the caps checked at the door. */
import type { PlazaOptions } from '../config.js';

/** Counts open connections in all and per IP; the upgrade checks it before ws does any work. */
export class ConnectionLimits {
  private total = 0;
  private readonly perIp = new Map<string, number>();

  constructor(private readonly options: Pick<PlazaOptions, 'maxConnections' | 'maxConnectionsPerIp'>) {}

  /** The HTTP status that refuses one more connection from `ip`, or 0 when it may come in. */
  refusal(ip: string): number {
    if (this.total >= this.options.maxConnections) return 503;
    const max = this.options.maxConnectionsPerIp;
    if (max > 0 && (this.perIp.get(ip) ?? 0) >= max) return 429;
    return 0;
  }

  /** Addresses with at least one open connection: the map never holds any other. */
  get trackedAddresses(): number {
    return this.perIp.size;
  }

  add(ip: string): void {
    this.total++;
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
  }

  remove(ip: string): void {
    this.total--;
    const count = (this.perIp.get(ip) ?? 1) - 1;
    // Deleting at zero keeps the map bounded by the IPs connected right now.
    if (count <= 0) this.perIp.delete(ip);
    else this.perIp.set(ip, count);
  }
}
