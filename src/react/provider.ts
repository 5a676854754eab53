/**
 * <PlazaProvider>: one Plaza connection for everything below it, and the hooks that read it.
 * The connection is made by the first component that needs it (in an effect, never during a
 * render), kept while any does, and closed when the provider unmounts.
 */
import { createContext, createElement, useContext, useEffect, useMemo, useRef, useSyncExternalStore, type ReactNode } from 'react';
import type { ClientOptions, PlazaClient, PlazaError, Status } from '../client/index.js';
import { createConnection, type Connection } from './connection.js';

export interface PlazaProviderProps {
  /**
   * The server: `ws(s)://` or `http(s)://`, absolute or relative to the page.
   * @default the page's own origin
   */
  url?: string | URL;
  /**
   * The client's options (docs/client.md); `rooms` is always on. A new connection is made only
   * when `url` or an option other than `name` changes value (an inline object is fine); a new
   * `name` is sent on the open connection.
   * @default {}
   */
  options?: Omit<ClientOptions, 'rooms'>;
  /**
   * A client the application made itself with `connect(url, { rooms: true })`, instead of
   * `url` and `options`. The provider then never closes it; unmounting still leaves its rooms.
   */
  client?: PlazaClient;
  children?: ReactNode;
}

const PlazaContext = createContext<Connection | undefined>(undefined);

/** Keeps the same options object while no option but `name` changed value. */
function useStableOptions(options: PlazaProviderProps['options']): PlazaProviderProps['options'] {
  const previous = useRef(options);
  const same = (a: PlazaProviderProps['options'], b: PlazaProviderProps['options']) => {
    const keys = new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})]);
    keys.delete('name');
    const value = (o: PlazaProviderProps['options'], key: string) => (o as Record<string, unknown> | undefined)?.[key];
    return [...keys].every((key) => {
      const [x, y] = [value(a, key), value(b, key)];
      return Object.is(x, y) || (Array.isArray(x) && Array.isArray(y) && JSON.stringify(x) == JSON.stringify(y));
    });
  };
  if (!same(previous.current, options)) previous.current = options;
  return previous.current;
}

/** Shares one Plaza connection with every hook below it. */
export function PlazaProvider({ url, options, client, children }: PlazaProviderProps): ReactNode {
  if (client && (url !== undefined || options !== undefined)) {
    throw new TypeError('PlazaProvider: pass either client, or url and options, not both');
  }
  const stable = useStableOptions(options);
  const href = url === undefined ? undefined : String(url);
  // Made during render, which has no effect outside it (nothing connects before a hold), so a
  // render React throws away, or a server render, leaves nothing behind.
  const connection = useMemo(() => createConnection(client ? { client } : { url: href, options: stable }), [client, href, stable]);
  useEffect(() => {
    connection.hold();
    return () => connection.letGo();
  }, [connection]);
  const name = options?.name;
  useEffect(() => {
    if (name !== undefined) connection.setName(name);
  }, [connection, name]);
  return createElement(PlazaContext.Provider, { value: connection }, children);
}

/** The provider's connection; throws, saying what to do, outside one. */
export function useConnection(hook: string): Connection {
  const connection = useContext(PlazaContext);
  if (!connection) throw new Error(`${hook} needs a <PlazaProvider> above it: wrap your app in <PlazaProvider url="wss://…">`);
  return connection;
}

export interface PlazaState {
  /** 'connecting' → 'open' ⇄ 'reconnecting' → 'closed'. */
  status: Status;
  /** Why the client stopped for good: `unauthorized` or `token_expired` (see docs/client.md, Tokens). */
  error: PlazaError | undefined;
}

/** The connection's status and the error that stopped it, re-rendering when either changes. */
export function usePlazaStatus(): PlazaState {
  const connection = useConnection('usePlazaStatus()');
  const status = useSyncExternalStore(connection.watch, connection.status, serverStatus);
  const error = useSyncExternalStore(connection.watch, connection.error, noError);
  return useMemo(() => ({ status, error }), [status, error]);
}

const serverStatus = (): Status => 'connecting';
const noError = () => undefined;
