/**
 * Plaza for React apps (`plaza-realtime/react`): a provider that shares one connection, and
 * hooks that join rooms for as long as a component is mounted. React is a peer dependency of
 * this entry only; Plaza's client is imported from the package's own plaza.mjs, not copied in.
 * Reference: docs/react.md.
 *
 * ```tsx
 * <PlazaProvider url="wss://plaza.example.com" options={{ name: 'Ada' }}><Chat /></PlazaProvider>
 * function Chat() {
 *   const { messages, members, publish } = useRoom<string>('lobby', { history: 50, presence: true });
 *   …
 * }
 * ```
 */
export { PlazaProvider, usePlazaStatus, type PlazaProviderProps, type PlazaState } from './provider.js';
export { usePresence, useRoom, type PresenceView, type RoomView, type UseRoomOptions } from './use-room.js';
export type { ReceivedMessage, ResetInfo } from './room-entry.js';
