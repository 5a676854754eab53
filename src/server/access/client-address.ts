/**
 * The client's address, for per-IP limits, the auth failure limiter and logs.
 *
 * Without --trust-proxy it is the TCP peer, always: X-Forwarded-For and Forwarded are written
 * by whoever sends the request, so trusting them by default would let any client pick the
 * address its limits are counted against. With --trust-proxy, a request whose TCP peer is one
 * of the listed proxies is read from the header that proxy appends to (--trust-proxy-header),
 * right to left, skipping the hops that are trusted proxies themselves: the first untrusted
 * hop is the client (the "rightmost untrusted" rule). Hops left of it were written by the
 * client and are ignored, so a forged header cannot move the client anywhere.
 *
 * Only one header is read, the one the operator names: a proxy appends to one of them and
 * passes the other through untouched, so reading both would let a client forge the other.
 */
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP, isIPv4 } from 'node:net';

export type ForwardedHeader = 'x-forwarded-for' | 'forwarded';

export const FORWARDED_HEADERS: readonly ForwardedHeader[] = ['x-forwarded-for', 'forwarded'];

/** `::ffff:192.0.2.1` (an IPv4 peer of a dual-stack socket) is 192.0.2.1; IPv6 in lower case. */
function normalizeAddress(address: string): string {
  const lower = address.toLowerCase();
  if (lower.startsWith('::ffff:') && isIPv4(lower.slice(7))) return lower.slice(7);
  return lower;
}

/**
 * Adds one --trust-proxy entry (an address or a CIDR block, IPv4 or IPv6) to `list`.
 * @throws Error saying what is wrong with the entry.
 */
function addEntry(list: BlockList, entry: string): void {
  const slash = entry.indexOf('/');
  const address = slash === -1 ? entry : entry.slice(0, slash);
  const version = isIP(address);
  if (version === 0) throw new Error(`${JSON.stringify(entry)} is not an IP address or CIDR block (e.g. 10.0.0.5, 10.0.0.0/8, fd00::/8)`);
  if (slash === -1) {
    const normalized = normalizeAddress(address);
    return list.addAddress(normalized, isIPv4(normalized) ? 'ipv4' : 'ipv6');
  }
  const prefixText = entry.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  const bits = version === 4 ? 32 : 128;
  if (!(prefix >= 0 && prefix <= bits)) throw new Error(`${JSON.stringify(entry)} has a prefix length outside 0–${bits}`);
  list.addSubnet(address, prefix, version === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Checks the --trust-proxy list and returns a matcher for it.
 * @throws Error naming the first bad entry.
 */
export function parseTrustedProxies(entries: readonly string[]): (address: string) => boolean {
  const list = new BlockList();
  for (const entry of entries) addEntry(list, entry.trim());
  return (address) => {
    const normalized = normalizeAddress(address);
    const version = isIP(normalized);
    return version !== 0 && list.check(normalized, version === 4 ? 'ipv4' : 'ipv6');
  };
}

/** An address as a proxy writes it: maybe quoted, `[v6]:port`, `v4:port`; undefined when not an IP ("unknown", "_hidden"). */
function hopAddress(text: string): string | undefined {
  let hop = text.trim();
  if (hop.startsWith('"') && hop.endsWith('"') && hop.length >= 2) hop = hop.slice(1, -1);
  if (hop.startsWith('[')) hop = hop.slice(1, hop.indexOf(']') === -1 ? undefined : hop.indexOf(']'));
  else if (/^[\d.]+:\d+$/.test(hop)) hop = hop.slice(0, hop.indexOf(':'));
  return isIP(hop) === 0 ? undefined : normalizeAddress(hop);
}

/** The `for=` values of a Forwarded header (RFC 7239 §4), in order; `undefined` for an element without one. */
function forwardedHops(value: string): Array<string | undefined> {
  const hops: Array<string | undefined> = [];
  let element: string | undefined;
  let start = 0;
  let quoted = false;
  const endPair = (end: number) => {
    const pair = value.slice(start, end);
    const eq = pair.indexOf('=');
    if (eq !== -1 && pair.slice(0, eq).trim().toLowerCase() === 'for') element = pair.slice(eq + 1);
    start = end + 1;
  };
  for (let i = 0; i < value.length; i++) {
    const char = value[i];
    if (char === '"') quoted = !quoted;
    else if (char === '\\' && quoted) i++;
    else if (!quoted && char === ';') endPair(i);
    else if (!quoted && char === ',') {
      endPair(i);
      hops.push(element);
      element = undefined;
    }
  }
  endPair(value.length);
  hops.push(element);
  return hops;
}

/**
 * The client address of a request that came from `peer` carrying `header` (undefined when it
 * carries none), walking right to left past trusted proxies.
 */
export function clientAddressOf(
  peer: string,
  header: string | undefined,
  kind: ForwardedHeader,
  isTrusted: (address: string) => boolean,
): string {
  let client = normalizeAddress(peer);
  if (header === undefined || !isTrusted(client)) return client;
  const hops = kind === 'forwarded' ? forwardedHops(header) : header.split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] === undefined ? undefined : hopAddress(hops[i]!);
    // A hop that is not an address ("unknown", an obfuscated name) ends the walk: the last
    // address we could vouch for, a trusted proxy's, is the best we know.
    if (hop === undefined) return client;
    client = hop;
    if (!isTrusted(hop)) return hop;
  }
  return client;
}

/**
 * The address of the TCP peer of `socket`: the client's when no proxy is trusted. Node reads it
 * with a getpeername(2) call the first time and keeps it; once the socket is closed it can no
 * longer be read ('unknown').
 */
export function peerAddress(socket: { readonly remoteAddress?: string | undefined }): string {
  return normalizeAddress(socket.remoteAddress ?? 'unknown');
}

/** Returns the function that tells a request's client address under these options. */
export function createClientAddress(trustProxy: readonly string[], kind: ForwardedHeader): (req: IncomingMessage) => string {
  if (trustProxy.length === 0) return (req) => peerAddress(req.socket);
  const isTrusted = parseTrustedProxies(trustProxy);
  return (req) => {
    const header = req.headers[kind];
    return clientAddressOf(req.socket.remoteAddress ?? 'unknown', Array.isArray(header) ? header.join(',') : header, kind, isTrusted);
  };
}
